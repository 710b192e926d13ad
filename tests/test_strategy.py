"""`--strategy mirrored`: V and M trained by tf.distribute.MirroredStrategy on two logical CPUs have the losses,
updates and checkpoints of the default strategy.

TensorFlow splits a CPU into logical devices only before it sets its devices up, so every mirrored run is a
fresh process with $WORLD_MODELS_CPU_DEVICES=2, as a user without GPUs would run it.
"""

import csv
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_script as run_in_process
from helpers import synthetic_episode, write_synthetic_latents
from worldmodels.checkpoints import CPU_DEVICES_VARIABLE, split_cpu, training_strategy
from worldmodels.data.episode import episode_filename, write_tfrecord
from worldmodels.errors import WorldModelsError
from worldmodels.memory.mdn_rnn import load_mdn_rnn
from worldmodels.paths import ArtifactTree

run_script = functools.partial(run_in_process, isolated=True)  # the CPU splits only in a fresh process

TWO_CPUS = {CPU_DEVICES_VARIABLE: "2"}
# 16 frames in batches of 5: the last batch is one frame, so one replica's share of it is empty.
TINY_VAE = ("--batch_size", "5", "--log_every", "1", "--shuffle_buffer", "50")
# 3 episodes in batches of 2: a batch split 1 + 1, then a batch of one, again with an empty share.
TINY_MEMORY = ("--batch_size", "2", "--hidden_units", "16", "--log_every", "1", "--gradient_clip", "0.0005")


def logged(path, column="loss") -> list[float]:
    return [float(row[column]) for row in csv.DictReader(path.open())]


def test_vae_trains_mirrored_and_resumes_under_default(tree):
    for index in range(2):
        write_tfrecord(tree.random_rollouts / episode_filename(index), synthetic_episode(8, seed=index))
    mirrored = run_script("vision/train_vae.py", "--strategy", "mirrored", "--epochs", "1", *TINY_VAE,
                          root=tree.root, extra_env=TWO_CPUS)
    assert "strategy mirrored: 2 replicas on" in mirrored.stdout and "device:CPU:1" in mirrored.stdout
    assert "trained VAE: 1 epochs, 4 steps on 2 episodes" in mirrored.stdout
    assert len(logged(tree.vae_log)) == 4 and np.isfinite(logged(tree.vae_log)).all()
    assert (tree.vae_models / "vae.weights.h5").is_file() and sorted(tree.vae_images.iterdir())

    resumed = run_script("vision/train_vae.py", "--load_model", "1", "--epochs", "2", *TINY_VAE, root=tree.root)
    assert "strategy mirrored" not in resumed.stdout
    assert "trained VAE: 2 epochs, 8 steps" in resumed.stdout
    assert [int(row["step"]) for row in csv.DictReader(tree.vae_log.open())] == list(range(1, 9))


@pytest.mark.slow
def test_memory_mirrored_matches_default_and_checkpoints_resume_across_strategies(tmp_path):
    default, mirrored = ArtifactTree(tmp_path / "default"), ArtifactTree(tmp_path / "mirrored")
    for tree in (default, mirrored):
        write_synthetic_latents(tree, [30, 22, 41])
    run_script("memory/train_memory.py", "--epochs", "2", *TINY_MEMORY, root=default.root)
    result = run_script("memory/train_memory.py", "--epochs", "2", "--strategy", "mirrored", *TINY_MEMORY,
                        root=mirrored.root, extra_env=TWO_CPUS)
    assert "strategy mirrored: 2 replicas on" in result.stdout
    assert "trained MDN-RNN: 2 epochs, 4 steps" in result.stdout
    # Same batches, same z samples, same initial weights: the whole batch's loss, and after it each update
    # (gradients summed over the replicas, then clipped), match one device's.
    np.testing.assert_allclose(logged(mirrored.memory_log), logged(default.memory_log), rtol=1e-5)
    weights = [load_mdn_rnn(tree.memory_models).get_weights() for tree in (mirrored, default)]
    for mirrored_weights, default_weights in zip(*weights):
        np.testing.assert_allclose(mirrored_weights, default_weights, atol=1e-6)

    # Each run's checkpoint resumes under the other strategy, optimizer state included.
    run_script("memory/train_memory.py", "--load_model", "1", "--epochs", "3", *TINY_MEMORY, root=mirrored.root)
    result = run_script("memory/train_memory.py", "--load_model", "1", "--epochs", "3", "--strategy", "mirrored",
                        *TINY_MEMORY, root=default.root, extra_env=TWO_CPUS)
    assert "trained MDN-RNN: 3 epochs, 6 steps" in result.stdout
    np.testing.assert_allclose(logged(mirrored.memory_log), logged(default.memory_log), rtol=1e-5)
    assert [int(row["step"]) for row in csv.DictReader(mirrored.memory_log.open())] == list(range(1, 7))


def vae_steps_under_both_strategies(root: str) -> dict:
    """V's first steps on the same batches from the same weights under each strategy, in this process (which
    must have two logical CPUs).  z is made noise-free (z = mu): each replica draws its own noise, and only
    without it can the two losses be equal."""
    import tensorflow as tf

    from worldmodels.vision.training import VAETrainer, VAETrainingConfig
    from worldmodels.vision.vae import ConvVAE

    def noise_free(self, images, training=False):
        mu, logvar = self.encode(images)
        return self.decode(mu), mu, logvar

    ConvVAE.call = noise_free
    # The mirrored trainer first: it splits the CPU, which must happen before TensorFlow sets up its devices.
    mirrored = VAETrainer(VAETrainingConfig(strategy="mirrored", learning_rate=1e-3), ArtifactTree(Path(root) / "a"))
    default = VAETrainer(VAETrainingConfig(strategy="default", learning_rate=1e-3), ArtifactTree(Path(root) / "b"))
    report = {"replicas": mirrored.strategy.num_replicas_in_sync, "steps": [],
              "same_initial_weights": all(np.array_equal(a, b) for a, b in
                                          zip(mirrored.model.get_weights(), default.model.get_weights()))}
    images = np.random.default_rng(0).uniform(size=(11, 64, 64, 3)).astype(np.float32)
    for batch in (images[:5], images[5:6], images[6:]):  # shares 3 + 2, 1 + 0 (empty), 3 + 2
        shares = next(iter(mirrored.distribute(tf.data.Dataset.from_tensor_slices(batch).batch(len(batch)))))
        losses = mirrored.train_step(shares)
        expected = default.train_step(tf.constant(batch))
        copies = mirrored.model.trainable_variables[0].value.values
        report["steps"].append({
            "shares": [int(part.shape[0]) for part in mirrored.strategy.experimental_local_results(shares)],
            "losses": {name: float(value) for name, value in losses.items()},
            "expected": {name: float(value) for name, value in expected.items()},
            "weight_difference": max(float(np.abs(a - b).max()) for a, b in
                                     zip(mirrored.model.get_weights(), default.model.get_weights())),
            "copies_in_sync": all(np.array_equal(copy.numpy(), copies[0].numpy()) for copy in copies)})
    return report


def test_vae_steps_under_mirrored_equal_the_default_strategy(tmp_path):
    code = ("import json, sys; sys.path.insert(0, 'tests'); from test_strategy import vae_steps_under_both_strategies; "
            f"print(json.dumps(vae_steps_under_both_strategies({str(tmp_path)!r})))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **TWO_CPUS})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["replicas"] == 2 and report["same_initial_weights"]
    assert [step["shares"] for step in report["steps"]] == [[3, 2], [1, 0], [3, 2]]
    for step in report["steps"]:
        # The loss of the whole batch (each replica's sum / the global batch size, summed), not 2x or 1/2 of it.
        for name, value in step["expected"].items():
            assert step["losses"][name] == pytest.approx(value, rel=1e-5, abs=1e-5), (name, step)
        # The same update from the fused Adam kernel on each replica's copy, through V's custom gradients.
        assert step["weight_difference"] < 1e-5 and step["copies_in_sync"], step


def test_strategy_errors():
    with pytest.raises(WorldModelsError, match="--strategy must be one of default, mirrored"):
        training_strategy("parameter_server")
    with pytest.raises(WorldModelsError, match=f"\\${CPU_DEVICES_VARIABLE} must be a whole number >= 1, got 'two'"):
        split_cpu("two")
