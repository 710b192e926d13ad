"""Full-agent rollouts vs random-action sampling, side by side, same worker processes and episodes.

    python benchmarks/bench_rollout.py --num_process 2 --episodes 16 --episode_length 300

The bar (issue 3): full-agent env steps/s >= 85% of random sampling's.  Both timings include
starting the worker processes, and the models are full size (V 32-d, M LSTM 256).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from worldmodels.control.agent import Agent
from worldmodels.control.rollout import EpisodeJob, RolloutEngine
from worldmodels.data.env import DEFAULT_ENV_ID
from worldmodels.data.sampling import SamplingConfig, episode_seed, sample_random
from worldmodels.memory.mdn_rnn import build_mdn_rnn
from worldmodels.paths import ArtifactTree
from worldmodels.vision.vae import build_vae


def agent_steps_per_second(agent: Agent, args: argparse.Namespace) -> tuple[float, int]:
    params = np.random.default_rng(0).normal(0, 0.1, (1, agent.controller.num_params)).astype(np.float32)
    # A warm-up episode traces the compiled step outside the timing, as any real run amortises it.
    with RolloutEngine(agent, args.num_process, 5, args.env_id) as engine:
        engine.run(params, [EpisodeJob(0, 0)])
    jobs = [EpisodeJob(episode_seed(i), 0) for i in range(args.episodes)]
    start = time.perf_counter()
    with RolloutEngine(agent, args.num_process, args.episode_length, args.env_id, args.envs_per_process) as engine:
        results = engine.run(params, jobs)
    steps = sum(result.length for result in results)
    return steps / (time.perf_counter() - start), steps


def random_steps_per_second(args: argparse.Namespace) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as folder:
        config = SamplingConfig(num_process=args.num_process, total_episodes=args.episodes,
                                episode_length=args.episode_length, env_id=args.env_id)
        start = time.perf_counter()
        summary = sample_random(config, ArtifactTree(Path(folder)))
        return summary["frames"] / (time.perf_counter() - start), summary["frames"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_process", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=16)
    parser.add_argument("--episode_length", type=int, default=300)
    parser.add_argument("--envs_per_process", type=int, default=8)
    parser.add_argument("--env_id", default=DEFAULT_ENV_ID)
    args = parser.parse_args()
    agent = Agent(build_vae(), build_mdn_rnn())
    random_rate, random_steps = random_steps_per_second(args)
    agent_rate, agent_steps = agent_steps_per_second(agent, args)
    print(f"random-action sampling: {random_rate:8.1f} env steps/s ({random_steps} steps, {args.num_process} processes)")
    print(f"full agent (V+M+C):     {agent_rate:8.1f} env steps/s ({agent_steps} steps, {args.num_process} processes)")
    print(f"ratio agent / random:   {agent_rate / random_rate:8.3f}  (bar: >= 0.85)")


if __name__ == "__main__":
    main()
