"""The work-item dispatcher: results in order, dead workers replaced and their items re-run, errors named."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worldmodels.errors import WorldModelsError
from worldmodels.workers import MAX_ATTEMPTS, Recipe, open_workers, run_items


def build_squarer(marker_folder: str):
    """A worker that squares numbers, dies (the whole process) on its first try at -1 and on every try
    at -2, and raises on -3."""
    def answer(number: int) -> int:
        if number == -1 and not (Path(marker_folder) / "died-once").exists():
            (Path(marker_folder) / "died-once").touch()
            os._exit(9)
        if number == -2:
            os._exit(9)
        if number == -3:
            raise ValueError("no square for -3")
        return number * number
    return answer


def test_results_come_back_in_order_and_a_dead_worker_is_replaced(tmp_path, capsys):
    items = [3, 1, -1, 4, 1, 5, 9, 2, 6]
    seen = []
    with_workers = open_workers(Recipe(build_squarer, (str(tmp_path),)), 2)
    try:
        results = run_items(with_workers, items, lambda key, result: seen.append(key))
    finally:
        with_workers.close()
    assert results == [n * n for n in items]
    assert sorted(seen) == list(range(len(items)))
    assert (tmp_path / "died-once").exists()
    assert "worker process died (exit code 9)" in capsys.readouterr().err


def build_doubler():
    """A worker that answers each payload with one twice its size."""
    return lambda payload: payload * 2


def test_items_and_results_larger_than_a_pipe_do_not_deadlock():
    # An episode's frames go out and its latents come back, each more than a pipe's buffer; the driver sends a
    # worker's next item while the worker sends its last result.  In a subprocess: a deadlock fails, not hangs.
    code = ("from test_workers import build_doubler; from worldmodels.workers import Recipe, open_workers, run_items\n"
            "workers = open_workers(Recipe(build_doubler), 2)\n"
            "results = run_items(workers, [bytes([i]) * 3_000_000 for i in range(8)])\n"
            "workers.close()\n"
            "assert [(r[:1], len(r)) for r in results] == [(bytes([i]), 6_000_000) for i in range(8)]\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "ok", result.stderr[-500:]


def test_an_item_that_kills_every_worker_ends_the_stage(tmp_path):
    workers = open_workers(Recipe(build_squarer, (str(tmp_path),)), 2)
    try:
        with pytest.raises(WorldModelsError, match=f"item 1 was running on {MAX_ATTEMPTS} workers that died"):
            run_items(workers, [2, -2, 3])
    finally:
        workers.close()


def test_an_item_that_raises_is_reported_not_retried(tmp_path):
    workers = open_workers(Recipe(build_squarer, (str(tmp_path),)), 2)
    try:
        with pytest.raises(WorldModelsError, match="ValueError: no square for -3"):
            run_items(workers, [2, -3])
    finally:
        workers.close()


def test_bad_settings_are_named():
    with pytest.raises(WorldModelsError, match="--backend must be one of local, ray"):
        open_workers(Recipe(build_squarer, ("",)), 1, backend="spark")
    with pytest.raises(WorldModelsError, match="--num_process must be >= 1"):
        open_workers(Recipe(build_squarer, ("",)), 0)


def test_the_local_backend_never_imports_ray():
    code = ("import sys, worldmodels.control.training, worldmodels.control.evaluation, worldmodels.control.sampling, "
            "worldmodels.data.sampling, worldmodels.data.latent_stats, worldmodels.control.backends; "
            "assert 'ray' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
