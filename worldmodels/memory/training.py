"""Training loop of M on the latent statistics: whole episodes, masked, z re-sampled every batch."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import keras
import numpy as np
import tensorflow as tf

from worldmodels.checkpoints import (STRATEGIES, STRATEGY_HELP, CheckpointedTrainer, global_count, nonempty,
                                     training_strategy)
from worldmodels.optimizers import FusedAdam
from worldmodels.cli import flag, require_at_least
from worldmodels.data.latent_stats import LatentEpisode, list_latents, read_latents
from worldmodels.errors import WorldModelsError
from worldmodels.files import CsvLog, file_fingerprint, read_json
from worldmodels.paths import DATASETS, ArtifactTree
from worldmodels.progress import progress
from worldmodels.stages import stage
from worldmodels.memory.mdn_rnn import (CONFIG_NAME, MDNRNNConfig, build_mdn_rnn, mdn_loss_sum, reward_done_loss_sum,
                                        save_dream_starts, save_mdn_rnn)

LOG_COLUMNS = ("time", "epoch", "step", "loss", "sequences_per_second")


@dataclass(frozen=True)
class MemoryTrainingConfig:
    """Flags of `train_memory.py`, with the paper's defaults."""

    load_model: int = flag(0, "1 resumes from the saved model and optimizer, 0 starts afresh", choices=(0, 1))
    epochs: int = flag(40, "passes over the episodes (the paper: about 4,000 steps of batch 100 on 10k episodes)")
    data: str = flag("local", "where the latent stats come from", choices=("local", "s3"))
    dataset: str = flag("all", "latent stats to train on: all those of the current VAE, or one dataset",
                        choices=("all", *DATASETS))
    batch_size: int = flag(100, "episodes per batch")
    learning_rate: float = flag(1e-3, "Adam learning rate")
    seq_length: int = flag(0, "time steps per training sequence; 0 trains on whole episodes")
    hidden_units: int = flag(256, "LSTM size")
    mixtures: int = flag(5, "Gaussians per latent dimension")
    reward_done: int = flag(0, "1: M also predicts each step's reward and whether the episode ends, which training "
                            "C in its dream needs (train_controller.py --dream 1)", choices=(0, 1))
    gradient_clip: float = flag(1.0, "clip each gradient element to +- this value")
    log_every: int = flag(10, "steps between rows of training.csv")
    seed: int = flag(0, "seed of weights, batches and z re-sampling")
    strategy: str = flag("default", STRATEGY_HELP, choices=STRATEGIES)

    def validate(self) -> "MemoryTrainingConfig":
        require_at_least(self, 1, "epochs", "batch_size", "hidden_units", "mixtures", "log_every")
        if self.seq_length < 0 or self.seq_length == 1:
            raise WorldModelsError(f"--seq_length must be 0 (whole episodes) or >= 2, got {self.seq_length}")
        if self.learning_rate <= 0 or self.gradient_clip <= 0:
            raise WorldModelsError("--learning_rate and --gradient_clip must be > 0")
        return self


class LatentDataset(NamedTuple):
    """All episodes padded to the longest: (episodes, time, ...) arrays and each episode's length."""

    mu: np.ndarray
    logvar: np.ndarray
    actions: np.ndarray
    lengths: np.ndarray
    rewards: np.ndarray | None = None  # (episodes, time): what M's reward and done outputs learn
    dones: np.ndarray | None = None

    @property
    def latent_dim(self) -> int:
        return self.mu.shape[-1]


def load_latent_dataset(tree: ArtifactTree, dataset: str) -> LatentDataset:
    """Latent stats made by the current VAE, checked against it, padded into arrays."""
    from worldmodels.vision.vae import CONFIG_NAME as VAE_CONFIG, WEIGHTS_NAME as VAE_WEIGHTS

    folders = [tree.latent_stats / name for name in (DATASETS if dataset == "all" else (dataset,))]
    files = [path for folder in folders for path in list_latents(folder)]
    if not files:
        raise WorldModelsError(f"{tree.latent_stats}: no latent stats found; run sample_latent_stats.py first")
    weights = tree.vae_models / VAE_WEIGHTS
    current = file_fingerprint(weights) if weights.is_file() else None
    vae_latent_dim = read_json(tree.vae_models / VAE_CONFIG)["latent_dim"] if current else None
    episodes: list[LatentEpisode] = []
    stale = 0
    for path in files:
        latents = read_latents(path)
        if vae_latent_dim is not None and latents.mu.shape[1] != vae_latent_dim:
            raise WorldModelsError(f"{path}: latents have {latents.mu.shape[1]} dimensions but the VAE in "
                                   f"{tree.vae_models} has {vae_latent_dim}; re-run sample_latent_stats.py")
        if current is not None and latents.vae_id != current:
            stale += 1
            continue
        if len(latents.actions) < 2:
            continue  # no transition to learn from
        episodes.append(latents)
    if not episodes:
        raise WorldModelsError(f"{tree.latent_stats}: all {stale} latent stats files were made by another VAE; "
                               "re-run sample_latent_stats.py with the current one")
    if stale:
        print(f"note: skipping {stale} latent stats files made by an earlier VAE", flush=True)
    dims = {latents.mu.shape[1] for latents in episodes}
    if len(dims) > 1:
        raise WorldModelsError(f"{tree.latent_stats}: latent stats disagree on the latent size {sorted(dims)}")
    lengths = np.array([len(latents.actions) for latents in episodes])
    longest, latent_dim = lengths.max(), dims.pop()
    mu = np.zeros((len(episodes), longest, latent_dim), np.float32)
    logvar = np.zeros_like(mu)
    actions = np.zeros((len(episodes), longest, episodes[0].actions.shape[1]), np.float32)
    rewards, dones = np.zeros((len(episodes), longest), np.float32), np.zeros((len(episodes), longest), np.float32)
    for row, latents in enumerate(episodes):
        mu[row, : lengths[row]] = latents.mu
        logvar[row, : lengths[row]] = latents.logvar
        actions[row, : lengths[row]] = latents.actions
        rewards[row, : lengths[row]] = latents.rewards
        dones[row, : lengths[row]] = latents.dones
    return LatentDataset(mu, logvar, actions, lengths, rewards, dones)


def make_batch(data: LatentDataset, rows: np.ndarray, seq_length: int, rng: np.random.Generator,
               reward_done: bool = False) -> tuple[np.ndarray, ...]:
    """Inputs [z_t, a_t], targets z_{t+1} and the valid-step mask of a batch, with z freshly sampled.

    With `reward_done`, also each input step's reward, done flag and mask: one step longer, since the
    episode's last action has a reward and (when it ended the episode) a done flag but no next z.
    """
    transitions = data.lengths[rows] - 1
    window = int(transitions.max()) if seq_length == 0 else seq_length
    if seq_length == 0:
        starts = np.zeros(len(rows), int)
    else:
        starts = np.array([rng.integers(0, max(count - window, 0) + 1) for count in transitions])
    steps = starts[:, None] + np.arange(window + 1 + int(reward_done))[None, :]
    steps_clipped = np.minimum(steps, data.mu.shape[1] - 1)
    mu = data.mu[rows[:, None], steps_clipped]
    sigma = np.exp(0.5 * data.logvar[rows[:, None], steps_clipped])
    z = mu + sigma * rng.standard_normal(mu.shape).astype(np.float32)
    actions = data.actions[rows[:, None], steps_clipped[:, :-1]]
    inputs = np.concatenate([z[:, :-1], actions], axis=-1)
    mask = (steps[:, 1:] <= transitions[:, None]).astype(np.float32)
    batch = (inputs.astype(np.float32), z[:, 1:].astype(np.float32), mask)
    if not reward_done:
        return batch
    if data.rewards is None or data.dones is None:
        raise ValueError("reward_done needs a dataset with rewards and dones")
    inputs_at = rows[:, None], steps_clipped[:, :-1]
    step_mask = (steps[:, :-1] <= transitions[:, None]).astype(np.float32)
    return (*batch, data.rewards[inputs_at] * step_mask, data.dones[inputs_at] * step_mask, step_mask)


def epoch_dataset(data: LatentDataset, batches: list[np.ndarray], seq_length: int,
                  rng: np.random.Generator, reward_done: bool = False) -> tf.data.Dataset:
    """`make_batch` of each of `batches` in order, as a dataset that a strategy can split across replicas."""
    inputs_dim, latent_dim = data.latent_dim + data.actions.shape[-1], data.latent_dim

    def generate():
        for rows in batches:
            yield make_batch(data, rows, seq_length, rng, reward_done)

    per_step = tf.TensorSpec((None, None), tf.float32)
    signature = (tf.TensorSpec((None, None, inputs_dim), tf.float32),
                 tf.TensorSpec((None, None, latent_dim), tf.float32), per_step) + (per_step,) * 3 * reward_done
    return tf.data.Dataset.from_generator(generate, output_signature=signature)


class MemoryTrainer(CheckpointedTrainer):
    """M with its optimizer and the checkpoint that lets `--load_model 1` resume."""

    label, config_name = "MDN-RNN", CONFIG_NAME

    def __init__(self, config: MemoryTrainingConfig, tree: ArtifactTree, latent_dim: int, action_dim: int = 3):
        self.config, self.tree = config.validate(), tree
        strategy = training_strategy(config.strategy)
        keras.utils.set_random_seed(config.seed)
        model_config = MDNRNNConfig(latent_dim, action_dim, config.hidden_units, config.mixtures,
                                    bool(config.reward_done))
        super().__init__(lambda: (build_mdn_rnn(model_config),
                                  FusedAdam(config.learning_rate, clipvalue=config.gradient_clip)),
                         tree.memory_models, strategy)

    def export(self) -> Path:
        return save_mdn_rnn(self.model, self.tree.memory_models)

    def replica_gradients(self, inputs: tf.Tensor, targets: tf.Tensor, mask: tf.Tensor,
                          *reward_done: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """The loss is the mean NLL per latent dimension, plus (with reward and done outputs) the mean per
        step of their squared error and cross-entropy."""
        config = self.model.config
        count = tf.maximum(global_count(tf.reduce_sum(mask) * config.latent_dim), 1.0)
        (inputs, weight), (targets, _), (mask, _) = nonempty(inputs), nonempty(targets), nonempty(mask)
        with tf.GradientTape() as tape:
            params, _, _ = self.model(inputs, training=True)
            loss = weight * mdn_loss_sum(params, targets, mask, config)[0] / count
            if reward_done:
                rewards, dones, step_mask = (nonempty(tensor)[0] for tensor in reward_done)
                loss += weight * reward_done_loss_sum(params, rewards, dones, step_mask, config) * (
                    config.latent_dim / count)
        return loss, tape.gradient(loss, self.model.trainable_variables)


@stage("train_memory", inputs=lambda config, tree: [tree.latent_stats, tree.vae_models])
def train_memory(config: MemoryTrainingConfig, tree: ArtifactTree) -> dict:
    """Train M on `latent-stats/`, resuming when asked; returns a summary."""
    config.validate()
    data = load_latent_dataset(tree, config.dataset)
    trainer = MemoryTrainer(config, tree, data.latent_dim, data.actions.shape[-1])
    if config.load_model:
        trainer.restore()
    else:
        trainer.start_fresh()
    if config.reward_done:
        save_dream_starts(tree.memory_models, data.mu[:, 0], data.logvar[:, 0])
    log = CsvLog(tree.memory_log, LOG_COLUMNS)
    episodes = len(data.lengths)
    batch_size = min(config.batch_size, episodes)
    start, sequences, loss = time.monotonic(), 0, float("nan")
    while int(trainer.epoch.numpy()) < config.epochs:
        epoch = int(trainer.epoch.numpy())
        rng = np.random.default_rng([config.seed, epoch])  # batches depend on the epoch only: resumable
        order = rng.permutation(episodes)
        batches = [order[i: i + batch_size] for i in range(0, episodes, batch_size)]
        bar = progress(len(batches), f"MDN-RNN epoch {epoch + 1}/{config.epochs}", unit="batch")
        window_start, window_sequences = time.monotonic(), 0
        dataset = epoch_dataset(data, batches, config.seq_length, rng, bool(config.reward_done))
        for rows, batch in zip(batches, trainer.distribute(dataset)):
            loss = float(trainer.train_step(*batch))
            if not np.isfinite(loss):
                raise WorldModelsError(f"MDN-RNN loss became {loss} at step {int(trainer.step.numpy())}; "
                                       "lower --learning_rate (the last good model is kept)")
            sequences += len(rows)
            window_sequences += len(rows)
            bar.update(1)
            bar.set_postfix(loss=loss)
            step = int(trainer.step.numpy())
            if step % config.log_every == 0:
                rate = window_sequences / max(time.monotonic() - window_start, 1e-9)
                log.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": epoch, "step": step, "loss": loss,
                            "sequences_per_second": rate})
                window_start, window_sequences = time.monotonic(), 0
        bar.close()
        trainer.end_epoch()
        trainer.save()
    seconds = time.monotonic() - start
    return {"episodes": episodes, "steps": int(trainer.step.numpy()), "epochs": int(trainer.epoch.numpy()),
            "loss": loss, "sequences_per_second": sequences / seconds if seconds > 0 else 0.0,
            "model": str(tree.memory_models)}
