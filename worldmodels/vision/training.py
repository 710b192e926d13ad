"""Training loop of V: streamed batches, CSV log, checkpoints to resume, comparison images."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image

from worldmodels.checkpoints import (STRATEGIES, STRATEGY_HELP, CheckpointedTrainer, global_count, nonempty,
                                     training_strategy)
from worldmodels.optimizers import FusedAdam
from worldmodels.cli import flag, require_at_least
from worldmodels.data.episode import list_episodes, read_tfrecord
from worldmodels.errors import WorldModelsError
from worldmodels.files import CsvLog, atomic_path
from worldmodels.paths import DATASETS, ArtifactTree
from worldmodels.progress import progress
from worldmodels.seeds import VAE_BATCHES, derive_seed
from worldmodels.stages import stage
from worldmodels.vision.dataset import first_frames, frame_dataset
from worldmodels.vision.vae import CONFIG_NAME, VAEConfig, build_vae, save_vae, vae_losses

LOG_COLUMNS = ("time", "epoch", "step", "loss", "reconstruction", "kl", "kl_unclamped", "images_per_second")
COMPARISON_IMAGES = 8


@dataclass(frozen=True)
class VAETrainingConfig:
    """Flags of `train_vae.py` (upstream names), with the paper's defaults."""

    load_model: int = flag(0, "1 resumes from the saved model and optimizer, 0 starts afresh", choices=(0, 1))
    epochs: int = flag(10, "passes over the dataset (the paper used 1, its code 10)")
    data: str = flag("local", "where episodes come from: local disk, or fetched from S3 first", choices=("local", "s3"))
    dataset: str = flag("random", "which rollouts to train on: one dataset, or all of them (random and "
                        "controller episodes mixed)", choices=("all", *DATASETS))
    batch_size: int = flag(100, "frames per batch")
    learning_rate: float = flag(1e-4, "Adam learning rate")
    latent_dim: int = flag(32, "size of z")
    kl_tolerance: float = flag(0.5, "KL floor per latent dimension, in nats")
    shuffle_buffer: int = flag(20000, "frames held in the shuffle buffer (uint8, 12 KB each)")
    log_every: int = flag(100, "steps between rows of training.csv")
    save_every: int = flag(1000, "steps between checkpoints (one is also written at every epoch end)")
    max_episodes: int = flag(0, "train on at most this many episodes (0: all)")
    seed: int = flag(0, "seed of weights and shuffling")
    layers: str = flag("fast", "fast: V's CPU-friendly layers; reference: the same network from stock Keras layers "
                       "(slow without AVX-512; for comparisons)", choices=("fast", "reference"))
    xla: int = flag(1, "1 compiles each step's loss and gradients with XLA (kernels that do not depend on the CPU's "
                    "vector extensions: 1.3x the images/s of 0 on the Xeon measured), 0 runs TensorFlow's own",
                    choices=(0, 1))
    strategy: str = flag("default", STRATEGY_HELP, choices=STRATEGIES)

    def validate(self) -> "VAETrainingConfig":
        require_at_least(self, 1, "epochs", "batch_size", "latent_dim", "shuffle_buffer", "log_every", "save_every")
        if self.learning_rate <= 0:
            raise WorldModelsError(f"--learning_rate must be > 0, got {self.learning_rate}")
        return self


def episode_files(folders: list[Path], max_episodes: int = 0) -> list[Path]:
    """Episode files to train on, with empty files refused up front; of several folders, those that exist."""
    present = [folder for folder in folders if folder.is_dir()] if len(folders) > 1 else folders
    files = [path for folder in present for path in list_episodes(folder)]
    if not files:
        names = " or ".join(str(folder) for folder in folders)
        raise WorldModelsError(f"{names}: no episodes found (episode_*.tfrecord); sample some with sample_policy.py")
    for path in files:
        if path.stat().st_size == 0:
            raise WorldModelsError(f"{path}: empty episode file; delete it and re-run sample_policy.py to resample it")
    return files[:max_episodes] if max_episodes > 0 else files


def find_bad_episode(files: list[Path]) -> WorldModelsError:
    """After tf.data reported damage, read files one by one to name the culprit."""
    for path in files:
        try:
            read_tfrecord(path)
        except WorldModelsError as error:
            return error
    return WorldModelsError(f"{files[0].parent}: an episode file could not be read")


class VAETrainer(CheckpointedTrainer):
    """V with its optimizer and the checkpoint that lets `--load_model 1` resume."""

    label, config_name = "VAE", CONFIG_NAME

    def __init__(self, config: VAETrainingConfig, tree: ArtifactTree):
        self.config, self.tree = config.validate(), tree
        strategy = training_strategy(config.strategy)
        keras.utils.set_random_seed(config.seed)
        vae_config, reference = VAEConfig(config.latent_dim, config.kl_tolerance), config.layers == "reference"
        super().__init__(lambda: (build_vae(vae_config, reference), FusedAdam(config.learning_rate)),
                         tree.vae_models, strategy)
        # Only the per-replica computation is compiled: the count's all-reduce stays outside, where XLA
        # need not know about the strategy.
        self._losses_and_gradients = tf.function(self._compute, jit_compile=bool(config.xla))

    def export(self) -> Path:
        return save_vae(self.model, self.tree.vae_models)

    def replica_gradients(self, images: tf.Tensor) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
        count = global_count(tf.shape(images)[0])
        images, weight = nonempty(images)
        return self._losses_and_gradients(images, weight, count)

    def _compute(self, images: tf.Tensor, weight: tf.Tensor, count: tf.Tensor) -> tuple[dict, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            losses = {name: weight * loss for name, loss in vae_losses(self.model, images, count).items()}
        return losses, tape.gradient(losses["loss"], self.model.trainable_variables)

    def save_comparison(self, images: tf.Tensor) -> Path:
        """Originals on the top row, reconstructions (from mu) below, as one PNG."""
        mu, _ = self.model.encode(images)
        reconstructions = self.model.decode(mu)
        rows = [np.concatenate(list(batch.numpy()), axis=1) for batch in (images, reconstructions)]
        grid = (np.concatenate(rows, axis=0) * 255).round().clip(0, 255).astype(np.uint8)
        path = self.tree.vae_images / f"epoch_{int(self.epoch.numpy()):03d}_step_{int(self.step.numpy()):07d}.png"
        with atomic_path(path) as temp:
            Image.fromarray(grid).save(temp, format="PNG")
        return path


@stage("train_vae", inputs=lambda config, tree: tree.rollout_folders(config.dataset))
def train_vae(config: VAETrainingConfig, tree: ArtifactTree) -> dict:
    """Train V on `<dataset>-rollouts/`, resuming when asked; returns a summary of the run."""
    config.validate()
    files = episode_files(tree.rollout_folders(config.dataset), config.max_episodes)
    trainer = VAETrainer(config, tree)
    if config.load_model:
        trainer.restore()
    else:
        trainer.start_fresh()
    tree.vae_images.mkdir(parents=True, exist_ok=True)
    log = CsvLog(tree.vae_log, LOG_COLUMNS)
    try:
        fixed_batch = first_frames(files, COMPARISON_IMAGES)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
        raise find_bad_episode(files) from None
    start_time, images_seen, last_losses = time.monotonic(), 0, {}
    while int(trainer.epoch.numpy()) < config.epochs:
        # Each epoch's order is fixed by (seed, epoch): a run resumed mid-epoch skips the batches it trained on.
        epoch_seed = derive_seed(VAE_BATCHES, config.seed, int(trainer.epoch.numpy()))
        done = trainer.steps_into_epoch()
        dataset = trainer.distribute(frame_dataset(files, config.batch_size, config.shuffle_buffer, seed=epoch_seed,
                                                   skip_batches=done))
        bar = progress(None, f"VAE epoch {int(trainer.epoch.numpy()) + 1}/{config.epochs}", unit="batch")
        window_start, window_images, losses = time.monotonic(), 0, None
        try:
            for images in dataset:
                losses = trainer.train_step(images)
                batch = trainer.batch_size(images)
                images_seen += batch
                window_images += batch
                bar.update(1)
                step = int(trainer.step.numpy())
                if step % config.log_every == 0:
                    last_losses = {key: float(value) for key, value in losses.items()}
                    rate = window_images / max(time.monotonic() - window_start, 1e-9)
                    log.append({"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "epoch": int(trainer.epoch.numpy()),
                                "step": step, **last_losses, "images_per_second": rate})
                    bar.set_postfix(loss=last_losses["loss"])
                    window_start, window_images = time.monotonic(), 0
                if step % config.save_every == 0:
                    trainer.save()
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError):
            raise find_bad_episode(files) from None
        finally:
            bar.close()
        if losses is not None:  # None when a resumed epoch had no batch left
            last_losses = {key: float(value) for key, value in losses.items()}
        trainer.end_epoch()
        trainer.save()
        trainer.save_comparison(fixed_batch)
    seconds = time.monotonic() - start_time
    return {"episodes": len(files), "steps": int(trainer.step.numpy()), "epochs": int(trainer.epoch.numpy()),
            "images_per_second": images_seen / seconds if seconds > 0 else 0.0, **last_losses,
            "model": str(tree.vae_models)}
