"""One run per stage per artifact tree: a second run is refused naming the holder; a killed run leaves no lock."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys

import pytest

from conftest import REPO, error_line, run_script
from worldmodels.errors import WorldModelsError
from worldmodels.locks import INSTALL_STAGE, stage_lock

# Holds a lock in another process, exactly as a running stage does, until it is killed.
HOLDER = """
import sys, time
from pathlib import Path
from worldmodels.locks import stage_lock
from worldmodels.paths import ArtifactTree
episodes = range(int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) > 3 else None
with stage_lock(ArtifactTree(Path(sys.argv[1])), sys.argv[2], episodes):
    print("held", flush=True)
    time.sleep(300)
"""


@pytest.fixture
def hold():
    """`hold(tree, stage[, episodes])`: a process holding that lock until the test ends (or kills it)."""
    holders = []

    def start(tree, stage: str, episodes: range | None = None) -> subprocess.Popen:
        span = [str(episodes.start), str(episodes.stop)] if episodes else []
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tree.root), stage, *span], cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        holders.append(holder)
        line = holder.stdout.readline()
        assert line == "held\n", holder.stderr.read()
        return holder

    yield start
    for holder in holders:
        if holder.poll() is None:
            holder.kill()
        holder.wait()


def test_second_run_of_a_stage_is_refused_with_one_line_naming_the_holder(tree, hold):
    holder = hold(tree, "train_vae")
    result = run_script("vision/train_vae.py", "--epochs", "1", root=tree.root, check=False)
    line = error_line(result)
    assert "train_vae is already running" in line
    assert f"PID {holder.pid} on {socket.gethostname()}" in line
    assert str(tree.lock("train_vae")) in line
    assert not tree.vae_training.exists()  # refused before anything was written


def test_stage_functions_take_the_lock_so_the_quickstart_is_covered(tree, hold):
    from worldmodels.memory.training import MemoryTrainingConfig, train_memory

    holder = hold(tree, "train_memory")
    with pytest.raises(WorldModelsError, match=f"train_memory is already running.*PID {holder.pid}"):
        train_memory(MemoryTrainingConfig(epochs=1), tree)


def test_killed_holder_leaves_no_stale_lock(tree, hold):
    holder = hold(tree, "train_controller")
    with pytest.raises(WorldModelsError, match=f"PID {holder.pid}"):
        with stage_lock(tree, "train_controller"):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with stage_lock(tree, "train_controller") as path:
        assert f'"pid": {os.getpid()}' in path.read_text()


def test_lock_is_reentrant_in_one_process_and_released_on_exit(tree):
    with stage_lock(tree, "train_vae") as path:
        with stage_lock(tree, "train_vae"), stage_lock(tree, "train_memory"):  # the entry script, then its function
            pass
        other = os.open(path, os.O_RDONLY)
        with pytest.raises(BlockingIOError):  # still held after the inner exit
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the outer block ends
    os.close(other)


def test_samplers_of_disjoint_ranges_share_a_folder_and_overlapping_ones_are_refused(tree, hold):
    holder = hold(tree, "sample_policy/random-rollouts", range(0, 2))  # as `--start_episode 0 --episodes 2` holds
    in_flight = tree.random_rollouts / ".tmp-0123abcd-episode_000000.tfrecord"  # the holder's half-written episode
    in_flight.parent.mkdir(parents=True)
    in_flight.write_bytes(b"partial")
    tiny = ["--episode_length", "10", "--num_process", "1"]
    result = run_script("data/sample_policy.py", "--start_episode", "2", "--episodes", "2", *tiny, root=tree.root)
    assert "sampled 2 episodes" in result.stdout
    assert sorted(path.name for path in tree.random_rollouts.iterdir()) == [
        in_flight.name, "episode_000002.tfrecord", "episode_000003.tfrecord"]  # the other range's file untouched
    same = run_script("data/sample_policy.py", "--start_episode", "0", "--episodes", "2", *tiny, root=tree.root,
                      check=False)
    assert "sample_policy/random-rollouts episodes 0-1 is already running" in error_line(same)
    assert f"PID {holder.pid}" in error_line(same)
    overlapping = run_script("data/sample_policy.py", "--start_episode", "1", "--episodes", "3", *tiny,
                             root=tree.root, check=False)
    assert "episodes 1-3 overlap episodes 0-1" in error_line(overlapping)
    assert f"PID {holder.pid}" in error_line(overlapping)
    assert in_flight.exists()


def test_a_stage_refuses_to_start_in_the_middle_of_an_install(tree, hold):
    holder = hold(tree, INSTALL_STAGE)
    with stage_lock(tree, "train_vae"):  # an install that has staged nothing yet is no obstacle
        pass
    (tree.install_staging / "files").mkdir(parents=True)  # the running install has begun staging its files
    with pytest.raises(WorldModelsError, match=f"{INSTALL_STAGE} is already running.*PID {holder.pid}"):
        with stage_lock(tree, "train_vae"):
            pass
    holder.kill()
    holder.wait()
    with stage_lock(tree, "train_vae"):  # the install was killed before its journal: rolled back
        assert not tree.install_staging.exists()
