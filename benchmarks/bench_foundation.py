"""Foundation benchmarks: sampling vs raw env steps/s, VAE training images/s, bytes per stored frame.

    python benchmarks/bench_foundation.py --episodes 4 --episode_length 300 --num_process 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from worldmodels.data.env import DEFAULT_ENV_ID, make_env
from worldmodels.data.sampling import SamplingConfig, sample_random
from worldmodels.paths import ArtifactTree


def raw_env_steps_per_second(env_id: str, steps: int) -> float:
    """Bare env.step with constant gas, no preprocessing or writing: the ceiling for sampling."""
    env = make_env(steps + 1, env_id)
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(np.array([0.0, 0.3, 0.0], np.float32))
    return steps / (time.perf_counter() - start)


def vae_images_per_second(tree: ArtifactTree, batch_size: int, steps: int) -> float:

    from worldmodels.vision.dataset import frame_dataset
    from worldmodels.vision.training import VAETrainer, VAETrainingConfig, episode_files

    trainer = VAETrainer(VAETrainingConfig(batch_size=batch_size), tree)
    dataset = frame_dataset(episode_files([tree.random_rollouts]), batch_size, shuffle_buffer=2000).repeat()
    iterator = iter(dataset)
    trainer.train_step(next(iterator))  # trace once outside the timing
    start = time.perf_counter()
    for _ in range(steps):
        losses = trainer.train_step(next(iterator))
    float(losses["loss"])
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--episode_length", type=int, default=300)
    parser.add_argument("--num_process", type=int, default=2)
    parser.add_argument("--vae_steps", type=int, default=20)
    parser.add_argument("--batch_size", type=int, default=100)
    parser.add_argument("--env_id", default=DEFAULT_ENV_ID)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tree = ArtifactTree(Path(folder))
        raw = raw_env_steps_per_second(args.env_id, args.episode_length)
        summary = sample_random(SamplingConfig(num_process=args.num_process, total_episodes=args.episodes,
                                               episode_length=args.episode_length, env_id=args.env_id), tree)
        stored = sum(path.stat().st_size for path in tree.random_rollouts.iterdir())
        images = vae_images_per_second(tree, args.batch_size, args.vae_steps)
    print(f"raw env steps/s (1 process):                 {raw:8.1f}")
    print(f"sampling env steps/s ({args.num_process} processes, incl. start-up): "
          f"{summary['steps_per_second']:8.1f}  ({summary['frames']} frames)")
    print(f"bytes per stored frame:                       {stored / summary['frames']:8.1f}")
    print(f"VAE training images/s (batch {args.batch_size}):          {images:8.1f}")


if __name__ == "__main__":
    main()
