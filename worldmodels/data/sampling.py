"""Sample episodes with the random policy, in parallel, resumable, one file per episode."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from worldmodels.cli import flag, require_at_least
from worldmodels.data.env import DEFAULT_ENV_ID, make_env, preprocess
from worldmodels.data.episode import (NUMPY_SUFFIX, TFRECORD_SUFFIX, Episode, episode_filename, write_numpy,
                                      write_tfrecord)
from worldmodels.data.policies import BrownianPolicy
from worldmodels.files import remove_stale_temporaries
from worldmodels.locks import stage_lock
from worldmodels.paths import ArtifactTree
from worldmodels.progress import progress
from worldmodels.seeds import SAMPLING, derive_seed
from worldmodels.workers import Recipe, address_flag, backend_flag, open_workers, run_items

STAGE = "sample_policy"  # its locks: one per output folder and episode range


@dataclass(frozen=True)
class SamplingConfig:
    """Flags of `sample_policy.py`; names follow the upstream command lines."""

    policy: str = flag("random", "who drives: a smoothed random walk, or a trained controller",
                       choices=("random", "controller"))
    num_process: int = flag(os.cpu_count() or 1, "worker processes, each with its own environment")
    total_episodes: int = flag(10000, "episodes to sample (indices start_episode .. start_episode + N - 1)",
                               aliases=("--episodes",))
    episode_length: int = flag(1000, "maximum steps per episode")
    start_episode: int = flag(0, "global index of the first episode")
    dtype: str = flag("tfrecord", "file format of each episode", choices=("tfrecord", "numpy"))
    seed: int = flag(0, "dataset seed; episode i uses a seed derived from (seed, i) only")
    env_id: str = flag(DEFAULT_ENV_ID, "gymnasium environment id")
    generation: str = flag("max", "controller generation: a number, 'max' (newest) or 'best' (best evaluated)")
    backend: str = backend_flag()
    address: str = address_flag()

    def validate(self) -> "SamplingConfig":
        require_at_least(self, 1, "num_process", "total_episodes", "episode_length")
        require_at_least(self, 0, "start_episode")
        return self

    @property
    def suffix(self) -> str:
        return TFRECORD_SUFFIX if self.dtype == "tfrecord" else NUMPY_SUFFIX

    @property
    def indices(self) -> range:
        return range(self.start_episode, self.start_episode + self.total_episodes)


def episode_seed(index: int, dataset_seed: int = 0) -> int:
    """The environment and policy seed of episode `index`: a function of the index (and dataset) only."""
    return derive_seed(SAMPLING, dataset_seed, index)


def run_random_episode(env, seed: int, episode_length: int) -> Episode:
    """Drive one episode with the random-walk policy; the same seed gives the same episode."""
    policy = BrownianPolicy(np.random.default_rng(seed))
    frame, _ = env.reset(seed=seed)
    observations, actions, rewards, dones = [], [], [], []
    for _ in range(episode_length):
        observation = preprocess(frame)
        action = policy(observation)
        frame, reward, terminated, truncated, _ = env.step(action)
        observations.append(observation)
        actions.append(action)
        rewards.append(reward)
        dones.append(terminated)
        if terminated or truncated:
            break
    return Episode(np.stack(observations), np.stack(actions).astype(np.float32),
                   np.asarray(rewards, np.float32), np.asarray(dones, bool))


def write_episode(path: Path, episode: Episode) -> None:
    (write_tfrecord if path.suffix == TFRECORD_SUFFIX else write_numpy)(path, episode)


def build_random_sampler(episode_length: int, env_id: str, dataset_seed: int) -> Callable[[int], Episode]:
    """A sampling worker: one environment, answering an episode index with that episode."""
    env = make_env(episode_length, env_id)
    return lambda index: run_random_episode(env, episode_seed(index, dataset_seed), episode_length)


def sample_random(config: SamplingConfig, tree: ArtifactTree,
                  on_episode: Callable[[int, int], None] | None = None) -> dict:
    """Sample every missing episode of `config.indices` into `random-rollouts/`; returns a summary.

    Runs under the lock of its episode range: samplers of disjoint ranges share the folder.
    """
    config.validate()
    folder = tree.random_rollouts
    with stage_lock(tree, f"{STAGE}/{folder.name}", config.indices):
        return _sample_random(config, folder, on_episode)


def _sample_random(config: SamplingConfig, folder: Path, on_episode: Callable[[int, int], None] | None) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    names = {index: episode_filename(index, config.suffix) for index in config.indices}
    remove_stale_temporaries(folder, set(names.values()))  # only this range's: other samplers write the rest
    pending = [index for index, name in names.items() if not (folder / name).exists()]
    skipped = config.total_episodes - len(pending)
    start, frames = time.monotonic(), 0
    bar = progress(len(pending), "sampling episodes", unit="episode")

    def save(key: int, episode: Episode) -> None:
        nonlocal frames
        write_episode(folder / names[pending[key]], episode)
        frames += episode.length
        bar.set_postfix(frames=frames)
        bar.update(1)
        if on_episode:
            on_episode(pending[key], episode.length)

    if pending:  # workers send episodes back and this process writes them: the same files on any backend
        recipe = Recipe(build_random_sampler, (config.episode_length, config.env_id, config.seed))
        workers = open_workers(recipe, min(config.num_process, len(pending)), config.backend, config.address)
        try:
            run_items(workers, pending, save)
        finally:
            workers.close()
    bar.close()
    seconds = time.monotonic() - start
    return {"folder": str(folder), "episodes": len(pending), "skipped": skipped, "frames": frames,
            "seconds": seconds, "steps_per_second": frames / seconds if seconds > 0 else 0.0}


def summary_line(summary: dict) -> str:
    return (f"sampled {summary['episodes']} episodes ({summary['skipped']} already complete), "
            f"{summary['frames']} frames in {summary['seconds']:.1f} s, "
            f"{summary['steps_per_second']:.1f} steps/s -> {summary['folder']}")
