"""Stages on a full disk: a one-line error naming the path, earlier artifacts intact, no partial file, and the
same command resumes once space is free. On a real small filesystem (a tmpfs mounted by the test, where the
machine allows it), and by injecting ENOSPC at the write calls everywhere."""

import csv
import errno
import functools
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import error_line, run_script as run_in_process
from helpers import save_tiny_agent, synthetic_episode
from worldmodels.control.generations import finished_generations
from worldmodels.data.episode import list_episodes, read_tfrecord, write_tfrecord
from worldmodels.errors import failed_write
from worldmodels.files import TEMP_PREFIX, CsvLog
from worldmodels.paths import ArtifactTree

# Each stage in its own interpreter: a failed write ends it with os._exit.
run_script = functools.partial(run_in_process, isolated=True)

TINY_CMA = ("--popsize", "4", "--rollouts", "1", "--episode_length", "20", "--num_process", "1",
            "--eval_every", "100")
FULL = "No space left on device"


@pytest.fixture
def small_disk(tmp_path):
    """A 192 MiB tmpfs (room for V's checkpoints); the test fills it with `fill` and frees it with `free`."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if shutil.which("mount") is None or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192m", "tmpfs", str(mount)],
                                                       capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root); the ENOSPC injection tests cover this machine")
    yield ArtifactTree(mount / "experiments")
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(tree: ArtifactTree, leave: int = 0) -> None:
    """Fill the filesystem of `tree` until at most `leave` bytes are free."""
    import os

    statistics = os.statvfs(tree.root)
    free = statistics.f_bavail * statistics.f_frsize
    with (tree.root.parent / "filler").open("wb") as handle:
        try:
            handle.write(b"\0" * max(free - leave, 0))
        except OSError as error:
            assert error.errno == errno.ENOSPC


def free(tree: ArtifactTree) -> None:
    (tree.root.parent / "filler").unlink()


def no_temporaries(root) -> bool:
    return not [path for path in root.rglob(f"{TEMP_PREFIX}*")]


def test_sampling_on_a_full_disk_keeps_finished_episodes_and_resumes(small_disk):
    tree = small_disk
    tree.root.mkdir(parents=True)
    fill(tree, leave=700_000)  # room for a few 150-step episodes, not for all 12
    sample = ("--policy", "random", "--total_episodes", "12", "--episode_length", "150", "--num_process", "1")
    result = run_script("data/sample_policy.py", *sample, root=tree.root, check=False)
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith("error: cannot write ") and str(tree.random_rollouts) in line and FULL in line
    kept = list_episodes(tree.random_rollouts)
    assert 0 < len(kept) < 12 and no_temporaries(tree.root)
    assert all(read_tfrecord(path).length == 150 for path in kept)
    free(tree)
    result = run_script("data/sample_policy.py", *sample, root=tree.root)
    assert f"{len(kept)} already complete" in result.stdout
    assert [read_tfrecord(path).length for path in list_episodes(tree.random_rollouts)] == [150] * 12


def test_cma_es_on_a_full_disk_keeps_every_generation_and_resumes(small_disk):
    tree = small_disk
    save_tiny_agent(tree)
    run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, root=tree.root)
    fill(tree)
    result = run_script("control/train_controller.py", "--generations", "4", *TINY_CMA, root=tree.root, check=False)
    assert result.returncode == 2 and FULL in error_line(result) and str(tree.control) in error_line(result)
    assert finished_generations(tree) == [0, 1] and no_temporaries(tree.root)
    rows = list(csv.DictReader(tree.rewards_log.open()))
    assert [row["generation"] for row in rows] == ["0", "1"] and all(None not in row.values() for row in rows)
    free(tree)
    run_script("control/train_controller.py", "--generations", "4", *TINY_CMA, root=tree.root)
    assert finished_generations(tree) == [0, 1, 2, 3]
    assert [row["generation"] for row in csv.DictReader(tree.rewards_log.open())] == ["0", "1", "2", "3"]


def test_vae_checkpoint_on_a_full_disk_leaves_no_partial_model_and_resumes(small_disk):
    tree = small_disk
    for index in range(2):
        write_tfrecord(tree.random_rollouts / f"episode_{index:06d}.tfrecord", synthetic_episode(60, index))
    train = ("--epochs", "1", "--batch_size", "20", "--log_every", "1", "--save_every", "2", "--shuffle_buffer", "50")
    fill(tree, leave=1_000_000)  # less than one checkpoint of the full-size V
    result = run_script("vision/train_vae.py", *train, root=tree.root, check=False)
    assert result.returncode == 2 and FULL in error_line(result), result.stderr[-2000:]
    assert not (tree.vae_models / "vae.weights.h5").exists() and no_temporaries(tree.root)
    assert len(list_episodes(tree.random_rollouts)) == 2
    free(tree)
    run_script("vision/train_vae.py", *train, root=tree.root)
    assert (tree.vae_models / "vae.weights.h5").is_file()


INJECT_ENOSPC = """
import errno, sys
import numpy as np
real_save = np.save
def save_on_a_full_disk(path, *args, **kwargs):
    if "generation_1" in str(path):
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write on an open handle: no file name
    return real_save(path, *args, **kwargs)
np.save = save_on_a_full_disk
from worldmodels.control import train_controller
train_controller.main(sys.argv[1:])
"""


def test_injected_enospc_in_a_generation_is_one_line_and_loses_nothing(tree):
    """Where no small filesystem can be mounted: the write of generation 1's arrays fails with ENOSPC."""
    import os
    import sys

    from worldmodels.paths import HOME_VARIABLE

    save_tiny_agent(tree)
    run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, root=tree.root)
    result = subprocess.run([sys.executable, "-c", INJECT_ENOSPC, "--generations", "2", *TINY_CMA],
                            env={**os.environ, HOME_VARIABLE: str(tree.root)}, capture_output=True, text=True)
    assert result.returncode == 2
    line = error_line(result)
    assert line.startswith(f"error: cannot write {tree.generation(1)}: {FULL}") and "re-run" in line
    assert finished_generations(tree) == [0] and no_temporaries(tree.root)
    run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, root=tree.root)
    assert finished_generations(tree) == [0, 1]


def test_a_failed_log_append_leaves_no_half_row(tmp_path, monkeypatch):
    log = CsvLog(tmp_path / "rewards.log", ("generation", "mean"))
    log.append({"generation": 0, "mean": 1.5})
    before = log.path.read_bytes()
    real_open = Path.open

    class FillingUp:
        """The real handle, whose writes store 3 bytes and then find the disk full."""

        def __init__(self, handle):
            self.handle, self.calls = handle, 0

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.calls += 1
            if self.calls == 1:
                return self.handle.write(bytes(data[:3]))
            raise OSError(errno.ENOSPC, FULL)

    monkeypatch.setattr(Path, "open", lambda self, *args, **kwargs: FillingUp(real_open(self, *args, **kwargs)))
    with pytest.raises(OSError):
        log.append({"generation": 1, "mean": 2.5})
    monkeypatch.undo()
    assert log.path.read_bytes() == before
    assert failed_write(OSError(errno.ENOSPC, FULL, "/x/y")) == f"/x/y: {FULL}"
    assert failed_write(RuntimeError(f"Unable to create file (file write failed: {FULL})")) is not None
    assert failed_write(ValueError("bad value")) is None


@pytest.mark.slow
def test_latent_stats_and_m_on_a_full_disk_lose_nothing_and_resume(small_disk):
    from worldmodels.data.latent_stats import list_latents, read_latents

    tree = small_disk
    save_tiny_agent(tree)  # V (full size) and a small M; M is retrained below
    for index in range(3):
        write_tfrecord(tree.random_rollouts / f"episode_{index:06d}.tfrecord", synthetic_episode(60, index))
    fill(tree, leave=30_000)  # about one episode's latent stats
    encode = ("--episodes", "3", "--data", "local", "--dataset", "random")
    result = run_script("data/sample_latent_stats.py", *encode, root=tree.root, check=False)
    assert result.returncode == 2 and FULL in error_line(result) and str(tree.latent_stats) in error_line(result)
    kept = list_latents(tree.latent_stats / "random")
    assert len(kept) < 3 and no_temporaries(tree.root)
    assert all(read_latents(path).mu.shape == (60, 32) for path in kept)
    free(tree)
    run_script("data/sample_latent_stats.py", *encode, root=tree.root)
    assert len(list_latents(tree.latent_stats / "random")) == 3

    memory = ("--epochs", "2", "--batch_size", "2", "--hidden_units", "16", "--log_every", "1", "--dataset", "random")
    saved_before = (tree.memory_models / "mdn_rnn.weights.h5").read_bytes()
    fill(tree)
    result = run_script("memory/train_memory.py", *memory, root=tree.root, check=False)
    assert result.returncode == 2 and FULL in error_line(result), result.stderr[-2000:]
    assert (tree.memory_models / "mdn_rnn.weights.h5").read_bytes() == saved_before and no_temporaries(tree.root)
    free(tree)
    run_script("memory/train_memory.py", *memory, root=tree.root)
    assert (tree.memory_models / "mdn_rnn.weights.h5").read_bytes() != saved_before
