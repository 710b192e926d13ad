"""Small synthetic artifacts for tests that need data but not the environment."""

from __future__ import annotations

import numpy as np

from worldmodels.data.episode import Episode
from worldmodels.data.latent_stats import LatentEpisode, write_latents


def synthetic_episode(length: int = 12, seed: int = 0) -> Episode:
    rng = np.random.default_rng(seed)
    observations = rng.integers(0, 256, size=(length, 64, 64, 3), dtype=np.uint8)
    actions = rng.uniform(-1, 1, size=(length, 3)).astype(np.float32)
    rewards = rng.normal(size=length).astype(np.float32)
    dones = np.zeros(length, bool)
    dones[-1] = True
    return Episode(observations, actions, rewards, dones)


def write_synthetic_latents(tree, lengths, latent_dim=32, vae_id="none", dataset="random") -> None:
    """Smooth latent trajectories (sin waves) of the given lengths, as sample_latent_stats.py writes them."""
    rng = np.random.default_rng(0)
    for index, length in enumerate(lengths):
        t = np.arange(length, dtype=np.float32)[:, None]
        mu = np.sin(t / 5 + np.arange(latent_dim)).astype(np.float32)
        write_latents(tree.latent_stats / dataset / f"episode_{index:06d}.npz", LatentEpisode(
            mu, np.full_like(mu, -4.0), rng.uniform(-1, 1, (length, 3)).astype(np.float32),
            np.zeros(length, np.float32), np.zeros(length, bool), vae_id))


def save_tiny_agent(tree, hidden_units: int = 16, reward_done: bool = False) -> None:
    """An untrained V and a small M in the artifact tree: enough to drive the real environment (and, with
    `reward_done`, to dream)."""
    import keras

    from worldmodels.memory.mdn_rnn import MDNRNNConfig, build_mdn_rnn, save_dream_starts, save_mdn_rnn
    from worldmodels.vision.vae import build_vae, save_vae

    keras.utils.set_random_seed(0)
    save_vae(build_vae(), tree.vae_models)
    save_mdn_rnn(build_mdn_rnn(MDNRNNConfig(hidden_units=hidden_units, reward_done=reward_done)), tree.memory_models)
    if reward_done:
        starts = np.random.default_rng(0).normal(size=(3, 32)).astype(np.float32)
        save_dream_starts(tree.memory_models, starts, np.full_like(starts, -2.0))


def train_tiny_controller(tree, generations: int = 1) -> None:
    """A tiny agent plus `generations` CMA-ES generations: what pretrained archives and the notebook need."""
    from worldmodels.control.training import ControllerTrainingConfig, train_controller

    save_tiny_agent(tree)
    train_controller(ControllerTrainingConfig(generations=generations, popsize=4, rollouts=1, episode_length=15,
                                              num_process=1, eval_every=1, eval_episodes=1), tree)
