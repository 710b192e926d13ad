"""Encode every frame of every episode with V into (mu, logvar): the training data of M.

One `.npz` per episode in `latent-stats/<dataset>/`, holding mu, logvar, actions, rewards,
dones and the id of the VAE that made it, so stats from an older V are re-encoded rather
than silently mixed with new ones.
"""

from __future__ import annotations

import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from worldmodels.cli import flag, require_at_least
from worldmodels.data.episode import Episode, episode_filename, episode_index, list_episodes, read_tfrecord
from worldmodels.errors import WorldModelsError
from worldmodels.files import TEMP_PREFIX, atomic_path, file_fingerprint, remove_stale_temporaries
from worldmodels.paths import DATASETS, ArtifactTree
from worldmodels.progress import progress
from worldmodels.stages import stage
from worldmodels.workers import (LazyItems, Recipe, address_flag, backend_flag, model_files, open_workers,
                                 pin_worker_threads, run_items, unpack_files)

LATENT_SUFFIX = ".npz"


@dataclass(frozen=True)
class LatentStatsConfig:
    """Flags of `sample_latent_stats.py` (upstream names)."""

    episode_start: int = flag(0, "index of the first episode to encode")
    episodes: int = flag(10000, "how many episodes (from episode_start) to encode, when present")
    data: str = flag("local", "where the VAE and episodes come from", choices=("local", "s3"))
    dataset: str = flag("random", "which rollouts to encode", choices=DATASETS)
    batch_size: int = flag(1000, "frames per encoder call")
    num_process: int = flag(0, "encoder processes (or Ray actors), one CPU thread each; 0: one process on a "
                            "GPU box (it uses the GPU), the CPU count otherwise")
    backend: str = backend_flag()
    address: str = address_flag()

    def validate(self) -> "LatentStatsConfig":
        require_at_least(self, 0, "episode_start")
        require_at_least(self, 1, "episodes", "batch_size")
        require_at_least(self, 0, "num_process")
        return self


class LatentEpisode(NamedTuple):
    """V's statistics of one episode, aligned with its actions."""

    mu: np.ndarray  # (T, latent_dim) float32
    logvar: np.ndarray  # (T, latent_dim) float32
    actions: np.ndarray  # (T, 3) float32
    rewards: np.ndarray  # (T,) float32
    dones: np.ndarray  # (T,) bool
    vae_id: str  # fingerprint of the VAE weights that produced mu and logvar


def write_latents(path: Path, latents: LatentEpisode) -> None:
    with atomic_path(path) as temp:
        with temp.open("wb") as handle:
            np.savez(handle, **latents._asdict())


def read_latents(path: Path) -> LatentEpisode:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            latents = LatentEpisode(*(arrays[key] for key in LatentEpisode._fields[:-1]), str(arrays["vae_id"]))
    except FileNotFoundError:
        raise WorldModelsError(f"{path}: latent stats file not found") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise WorldModelsError(f"{path}: corrupt latent stats file ({error})") from None
    length = len(latents.actions)
    if latents.mu.shape != latents.logvar.shape or latents.mu.ndim != 2 or len(latents.mu) != length:
        raise WorldModelsError(f"{path}: mu {latents.mu.shape}, logvar {latents.logvar.shape} and "
                               f"actions {latents.actions.shape} do not line up")
    return latents


def list_latents(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted((path for path in folder.glob(f"episode_*{LATENT_SUFFIX}") if not path.name.startswith(TEMP_PREFIX)),
                  key=episode_index)


def _is_current(path: Path, vae_id: str) -> bool:
    try:
        with np.load(path, allow_pickle=False) as arrays:
            return str(arrays["vae_id"]) == vae_id
    except Exception:  # a damaged file is simply re-encoded
        return False


def default_encoders() -> int:
    import tensorflow as tf

    return 1 if tf.config.list_physical_devices("GPU") else os.cpu_count() or 1


def build_encoder(files: dict[str, bytes], batch_size: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """An encoding worker: V from `files`, answering an episode's frames with their (mu, logvar)."""
    from worldmodels.vision.vae import encode_frames, load_vae

    pin_worker_threads()
    model = load_vae(unpack_files(files) / "vae-training/models")
    return lambda frames: encode_frames(model, frames, batch_size)


@stage("sample_latent_stats", inputs=lambda config, tree: [tree.vae_models, tree.rollouts(config.dataset)])
def sample_latent_stats(config: LatentStatsConfig, tree: ArtifactTree) -> dict:
    """Encode the chosen episodes; files already encoded by the same VAE are skipped (resume)."""
    from worldmodels.vision.vae import WEIGHTS_NAME, load_vae

    config.validate()
    pin_worker_threads()
    load_vae(tree.vae_models)  # a missing or damaged V is named here, before any worker starts
    vae_id = file_fingerprint(tree.vae_models / WEIGHTS_NAME)
    wanted = range(config.episode_start, config.episode_start + config.episodes)
    episodes = [path for path in list_episodes(tree.rollouts(config.dataset)) if episode_index(path) in wanted]
    if not episodes:
        raise WorldModelsError(f"{tree.rollouts(config.dataset)}: no episodes with index in "
                               f"[{wanted.start}, {wanted.stop}) found; sample some with sample_policy.py")
    output = tree.latent_stats / config.dataset
    output.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output)
    pending = [path for path in episodes
               if not _is_current(output / episode_filename(episode_index(path), LATENT_SUFFIX), vae_id)]
    start, frames = time.monotonic(), 0
    bar = progress(len(pending), "encoding episodes", unit="episode")
    episodes_read: dict[int, Episode] = {}

    def read(key: int) -> np.ndarray:  # each episode is read once, here, and its frames sent to a worker
        episodes_read[key] = read_tfrecord(pending[key])
        return episodes_read[key].observations

    def save(key: int, stats: tuple[np.ndarray, np.ndarray]) -> None:
        nonlocal frames
        episode = episodes_read.pop(key)
        write_latents(output / episode_filename(episode_index(pending[key]), LATENT_SUFFIX),
                      LatentEpisode(*stats, episode.actions, episode.rewards, episode.dones, vae_id))
        frames += episode.length
        bar.update(1)

    if pending:
        recipe = Recipe(build_encoder, (model_files(tree.vae_models), config.batch_size))
        workers = open_workers(recipe, min(config.num_process or default_encoders(), len(pending)), config.backend,
                               config.address)
        try:
            run_items(workers, LazyItems(len(pending), read), save)
        finally:
            workers.close()
    bar.close()
    seconds = time.monotonic() - start
    return {"encoded": len(pending), "skipped": len(episodes) - len(pending), "frames": frames,
            "seconds": seconds, "folder": str(output), "vae_id": vae_id}
