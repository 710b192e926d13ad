"""Full-agent rollouts vs random-action sampling, side by side, same worker processes and episodes.

    python benchmarks/bench_rollout.py --num_process 2 --episodes 32 --episode_length 250

The bar (issue 3): full-agent env steps/s >= 85% of random-action sampling's.  The baseline drives
the same rollout engine (same worker processes, same environments, same tracks) with the
random-walk policy and no models, so the ratio is exactly the price of V + M + C.  Timings are
steady state: worker start-up and the one-off tracing of the compiled step are excluded from both.
The data stage's own sampler (`sample_policy.py --policy random`, which also compresses and writes
every frame, start-up included) is printed beside them for reference.
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
from worldmodels.data.policies import ACTION_HIGH, ACTION_LOW
from worldmodels.data.sampling import SamplingConfig, episode_seed, sample_random
from worldmodels.memory.mdn_rnn import build_mdn_rnn
from worldmodels.paths import ArtifactTree
from worldmodels.vision.vae import build_vae


class RandomActionDriver:
    """Stands in for the agent in the engine: uniformly random actions, no models."""

    def __init__(self, agent: Agent):
        self.controller, self.hidden_units = agent.controller, agent.hidden_units
        self.rng = np.random.default_rng(0)

    def act(self, frames, h, c, params, record=False, dashboards=None):
        actions = self.rng.uniform(ACTION_LOW, ACTION_HIGH, (len(frames), 3)).astype(np.float32)
        return actions, h, c, None


def engine_steps_per_second(driver, args: argparse.Namespace) -> tuple[float, int]:
    params = np.zeros((1, driver.controller.num_params), np.float32)
    jobs = [EpisodeJob(episode_seed(i), 0) for i in range(args.episodes)]
    with RolloutEngine(driver, args.num_process, args.episode_length, args.env_id, args.envs_per_process) as engine:
        engine.run(params, jobs[:1])  # start the workers and trace the compiled step outside the timing
        start = time.perf_counter()
        results = engine.run(params, jobs)
        seconds = time.perf_counter() - start
    steps = sum(result.length for result in results)
    return steps / seconds, steps


def data_stage_steps_per_second(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = SamplingConfig(num_process=args.num_process, total_episodes=args.episodes,
                                episode_length=args.episode_length, env_id=args.env_id)
        start = time.perf_counter()
        summary = sample_random(config, ArtifactTree(Path(folder)))
        return summary["frames"] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_process", type=int, default=2)
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--episode_length", type=int, default=250)
    parser.add_argument("--envs_per_process", type=int, default=16)
    parser.add_argument("--env_id", default=DEFAULT_ENV_ID)
    args = parser.parse_args()
    agent = Agent(build_vae(), build_mdn_rnn())  # full size: V 32-d, M LSTM 256, C 867 parameters
    random_rate, random_steps = engine_steps_per_second(RandomActionDriver(agent), args)
    agent_rate, agent_steps = engine_steps_per_second(agent, args)
    stage_rate = data_stage_steps_per_second(args)
    print(f"random-action sampling: {random_rate:8.1f} env steps/s ({random_steps} steps, {args.num_process} processes)")
    print(f"full agent (V+M+C):     {agent_rate:8.1f} env steps/s ({agent_steps} steps, {args.num_process} processes)")
    print(f"ratio agent / random:   {agent_rate / random_rate:8.3f}  (bar: >= 0.85)")
    print(f"for reference, sample_policy.py --policy random (writes TFRecords, start-up included): "
          f"{stage_rate:.1f} env steps/s")


if __name__ == "__main__":
    main()
