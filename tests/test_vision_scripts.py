"""The three foundation entry scripts, end to end as a user runs them, and their bad-input errors."""

import csv
import shutil

import numpy as np
import pytest

from conftest import error_line, run_script
from worldmodels.data.episode import list_episodes, read_tfrecord
from worldmodels.data.latent_stats import read_latents
from worldmodels.paths import ArtifactTree

TINY_VAE = ("--epochs", "2", "--batch_size", "16", "--log_every", "2", "--shuffle_buffer", "200")


@pytest.fixture(scope="module")
def sampled(tmp_path_factory) -> ArtifactTree:
    """Two short random episodes, sampled once through the real script and copied per test."""
    tree = ArtifactTree(tmp_path_factory.mktemp("sampled") / "experiments")
    result = run_script("data/sample_policy.py", "--policy", "random", "--num_process", "2", "--total_episodes", "2",
                        "--episode_length", "40", "--dtype", "tfrecord", root=tree.root)
    assert "sampled 2 episodes" in result.stdout and "steps/s" in result.stdout
    # Not a terminal: plain progress lines for logs and nohup, no carriage-return bar.
    assert "sampling episodes: 2/2 episode" in result.stderr and "\r" not in result.stderr
    return tree


@pytest.fixture
def work(sampled, tree) -> ArtifactTree:
    shutil.copytree(sampled.root, tree.root)
    return tree


def test_pipeline_sample_train_encode_and_resume(work):
    episodes = list_episodes(work.random_rollouts)
    assert len(episodes) == 2 and all(read_tfrecord(p).length == 40 for p in episodes)

    result = run_script("vision/train_vae.py", "--load_model", "0", "--data", "local", "--dataset", "random",
                        *TINY_VAE, root=work.root)
    assert "trained VAE: 2 epochs" in result.stdout
    rows = list(csv.DictReader(work.vae_log.open()))
    assert rows and {"epoch", "step", "loss", "reconstruction", "kl"} <= set(rows[0])
    assert all(np.isfinite(float(row["loss"])) for row in rows)
    assert sorted(p.name for p in work.vae_images.iterdir())  # comparison images written
    steps_before = int(rows[-1]["step"])

    resumed = run_script("vision/train_vae.py", "--load_model", "1", "--epochs", "3", "--batch_size", "16",
                         "--log_every", "2", root=work.root)
    assert "trained VAE: 3 epochs" in resumed.stdout
    rows = list(csv.DictReader(work.vae_log.open()))
    assert int(rows[-1]["step"]) > steps_before and int(rows[-1]["epoch"]) == 2

    encoded = run_script("data/sample_latent_stats.py", "--episode_start", "0", "--episodes", "2", "--data", "local",
                         "--dataset", "random", root=work.root)
    assert "encoded 2 episodes" in encoded.stdout
    latents = read_latents(work.latent_stats / "random" / "episode_000000.npz")
    assert latents.mu.shape == (40, 32) and latents.logvar.shape == (40, 32) and latents.actions.shape == (40, 3)
    np.testing.assert_array_equal(latents.actions, read_tfrecord(episodes[0]).actions)
    again = run_script("data/sample_latent_stats.py", "--episodes", "2", root=work.root)
    assert "encoded 0 episodes (2 already current)" in again.stdout


def test_run_killed_mid_epoch_resumes_without_repeating_the_epoch(work):
    """80 frames in batches of 8: 10 steps per epoch. Killed after a mid-epoch checkpoint, the resumed run
    trains only the rest of that epoch, on the batches the killed run had not reached."""
    import os
    import re
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO
    from worldmodels.paths import HOME_VARIABLE

    flags = ("--epochs", "1", "--batch_size", "8", "--log_every", "1", "--save_every", "2", "--shuffle_buffer", "200")
    process = subprocess.Popen([sys.executable, str(REPO / "worldmodels/vision/train_vae.py"), *flags],
                               env={**os.environ, HOME_VARIABLE: str(work.root)},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = work.vae_models / "checkpoints" / "checkpoint"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not state.exists() and process.poll() is None:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed_at = int(re.search(r'model_checkpoint_path: "ckpt-(\d+)"', state.read_text())[1])
    assert 0 < killed_at < 10  # the premise: a checkpoint inside the epoch
    run_script("vision/train_vae.py", "--load_model", "1", *flags, root=work.root)
    steps = [int(row["step"]) for row in csv.DictReader(work.vae_log.open())]
    assert steps[-1] == 10  # not 10 + killed_at: the epoch was not started over
    assert [step for step in steps if step > killed_at] == list(range(killed_at + 1, 11))


@pytest.mark.parametrize("damage", ["truncate", pytest.param("flip", marks=pytest.mark.slow)])
def test_damaged_episode_stops_training_with_its_name(work, damage):
    run_script("vision/train_vae.py", *TINY_VAE, root=work.root)
    saved = (work.vae_models / "vae.weights.h5").read_bytes()
    path = work.random_rollouts / "episode_000001.tfrecord"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) * 2 // 3]
    else:
        data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    result = run_script("vision/train_vae.py", "--load_model", "1", "--epochs", "4", "--batch_size", "16",
                        root=work.root, check=False)
    assert "episode_000001.tfrecord: corrupt or truncated" in error_line(result)
    assert (work.vae_models / "vae.weights.h5").read_bytes() == saved  # nothing saved was damaged
    result = run_script("data/sample_latent_stats.py", "--episodes", "2", root=work.root, check=False)
    assert "episode_000001.tfrecord" in error_line(result)


def test_bad_inputs_give_one_line_errors(tree, work):
    empty = ArtifactTree(tree.root.parent / "empty")
    cases = [
        (("vision/train_vae.py",), empty, "random-rollouts: folder not found"),
        (("vision/train_vae.py", "--load_model", "1"), work, "no saved VAE checkpoint"),
        (("vision/train_vae.py", "--dataset", "controller"), work, "controller-rollouts: folder not found"),
        (("vision/train_vae.py", "--epochs", "0"), work, "--epochs must be >= 1"),
        (("data/sample_latent_stats.py",), work, "no trained VAE found"),
        (("data/sample_policy.py", "--total_episodes", "0"), work, "--total_episodes must be >= 1"),
    ]
    for args, where, message in cases:
        assert message in error_line(run_script(*args, root=where.root, check=False)), args
    (work.random_rollouts / "episode_000000.tfrecord").write_bytes(b"")
    assert "episode_000000.tfrecord: empty episode file" in error_line(
        run_script("vision/train_vae.py", root=work.root, check=False))
    for path in work.random_rollouts.iterdir():
        path.unlink()
    assert "no episodes found" in error_line(run_script("vision/train_vae.py", root=work.root, check=False))


def test_dataset_all_trains_on_random_and_controller_episodes(work):
    """A second data generation: V trains on both folders; with neither present the error names both."""
    from worldmodels.vision.training import episode_files

    assert episode_files(work.rollout_folders("all")) == list_episodes(work.random_rollouts)  # no controller folder yet
    work.controller_rollouts.mkdir()
    shutil.copy(work.random_rollouts / "episode_000000.tfrecord", work.controller_rollouts / "episode_000007.tfrecord")
    files = episode_files(work.rollout_folders("all"))
    assert [path.parent.name for path in files] == ["random-rollouts", "random-rollouts", "controller-rollouts"]
    result = run_script("vision/train_vae.py", "--dataset", "all", "--epochs", "1", "--batch_size", "40",
                        "--shuffle_buffer", "200", root=work.root)
    assert "trained VAE: 1 epochs" in result.stdout and "3 episodes" in result.stdout
    shutil.rmtree(work.random_rollouts)
    shutil.rmtree(work.controller_rollouts)
    message = error_line(run_script("vision/train_vae.py", "--dataset", "all", root=work.root, check=False))
    assert "random-rollouts or" in message and "controller-rollouts: no episodes found" in message


def test_numpy_dtype_writes_npz(tree):
    result = run_script("data/sample_policy.py", "--total_episodes", "1", "--episode_length", "10", "--dtype", "numpy",
                        "--num_process", "1", root=tree.root)
    assert "sampled 1 episodes" in result.stdout
    assert [p.name for p in tree.random_rollouts.iterdir()] == ["episode_000000.npz"]
