import csv

import numpy as np

from conftest import error_line, run_script
from helpers import write_synthetic_latents
from worldmodels.memory.training import LatentDataset, make_batch
from worldmodels.vision.vae import build_vae, save_vae


def test_batches_mask_episodes_of_different_lengths():
    lengths = np.array([5, 3])
    mu = np.arange(2 * 5 * 2, dtype=np.float32).reshape(2, 5, 2)
    data = LatentDataset(mu, np.full_like(mu, -30.0), np.ones((2, 5, 3), np.float32), lengths)
    inputs, targets, mask = make_batch(data, np.array([0, 1]), seq_length=0, rng=np.random.default_rng(0))
    assert inputs.shape == (2, 4, 5) and targets.shape == (2, 4, 2)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 1], [1, 1, 0, 0]])
    np.testing.assert_allclose(targets[0], mu[0, 1:], atol=1e-4)  # logvar -30: z is mu
    np.testing.assert_allclose(inputs[1, :2, :2], mu[1, :2], atol=1e-4)
    _, _, windowed = make_batch(data, np.array([0, 1]), seq_length=3, rng=np.random.default_rng(0))
    assert windowed.shape == (2, 3) and windowed[0].all()


def test_z_is_resampled_every_batch():
    mu = np.zeros((1, 4, 2), np.float32)
    data = LatentDataset(mu, np.zeros_like(mu), np.zeros((1, 4, 3), np.float32), np.array([4]))
    rng = np.random.default_rng(0)
    first, second = (make_batch(data, np.array([0]), 0, rng)[1] for _ in range(2))
    assert not np.allclose(first, second)


def test_train_memory_script_resumes_and_logs(tree):
    write_synthetic_latents(tree, [30, 22, 41])
    args = ("--batch_size", "2", "--hidden_units", "16", "--log_every", "1")
    result = run_script("memory/train_memory.py", "--load_model", "0", "--epochs", "3", *args, root=tree.root)
    assert "trained MDN-RNN: 3 epochs, 6 steps on 3 episodes" in result.stdout
    rows = list(csv.DictReader(tree.memory_log.open()))
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    resumed = run_script("memory/train_memory.py", "--load_model", "1", "--epochs", "4", *args, root=tree.root)
    assert "4 epochs, 8 steps" in resumed.stdout
    mismatch = run_script("memory/train_memory.py", "--load_model", "1", "--epochs", "5", "--hidden_units", "8",
                          root=tree.root, check=False)
    assert "does not match" in error_line(mismatch)


def test_latent_stats_that_do_not_match_the_vae(tree):
    assert "no latent stats found" in error_line(run_script("memory/train_memory.py", root=tree.root, check=False))
    save_vae(build_vae(), tree.vae_models)
    write_synthetic_latents(tree, [10, 10], latent_dim=16)
    result = run_script("memory/train_memory.py", root=tree.root, check=False)
    assert "latents have 16 dimensions but the VAE" in error_line(result)
    write_synthetic_latents(tree, [10, 10], latent_dim=32, vae_id="someoldvae")
    result = run_script("memory/train_memory.py", root=tree.root, check=False)
    assert "made by another VAE" in error_line(result)
