import io
import sys

from worldmodels.progress import PlainProgress, progress


def test_plain_lines_when_not_a_terminal(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress(3, "sampling episodes", unit="episode")
    assert isinstance(bar, PlainProgress)
    bar.set_postfix(frames=30)
    for _ in range(3):
        bar.update(1)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1  # throttled, but the final count is always printed
    assert "sampling episodes: 3/3 episode" in lines[0] and "[frames=30]" in lines[0]
    assert "\r" not in stream.getvalue()


def test_plain_lines_are_throttled_by_time(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = PlainProgress(None, "VAE epoch 1/1", "batch", interval=0.0)
    bar.update(1)
    bar.update(1)
    assert [line.split(" ", 1)[1].split(" (")[0] for line in stream.getvalue().splitlines()] == \
        ["VAE epoch 1/1: 1 batch", "VAE epoch 1/1: 2 batch"]
