"""CarRacing-v3 vs FastCarRacing-v3 side by side in one process: same seeds, same actions.

    python benchmarks/bench_env.py --episodes 4 --episode_length 1000

Episodes alternate between the two environments so that both see the same machine state; every
frame is also compared, so a speed-up can never come from drawing something else.
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np

import worldmodels  # noqa: F401  (registers FastCarRacing-v3)
from worldmodels.data.fast_car_racing import FAST_ENV_ID, STOCK_ENV_ID
from worldmodels.data.policies import BrownianPolicy


def run_episode(env: gym.Env, seed: int, actions: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    frames = [env.reset(seed=seed)[0]]
    start = time.perf_counter()
    for action in actions:
        frame, _, terminated, truncated, _ = env.step(action)
        frames.append(frame)
        if terminated or truncated:
            break
    return time.perf_counter() - start, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--episode_length", type=int, default=1000)
    args = parser.parse_args()
    envs = {name: gym.make(name, max_episode_steps=args.episode_length) for name in (STOCK_ENV_ID, FAST_ENV_ID)}
    seconds = {name: 0.0 for name in envs}
    steps = {name: 0 for name in envs}
    for episode in range(args.episodes):
        policy = BrownianPolicy(np.random.default_rng(episode))
        actions = [policy() for _ in range(args.episode_length)]
        frames = {}
        for name, env in envs.items():
            elapsed, frames[name] = run_episode(env, 1000 + episode, actions)
            seconds[name] += elapsed
            steps[name] += len(frames[name]) - 1
        assert all(np.array_equal(a, b) for a, b in zip(frames[STOCK_ENV_ID], frames[FAST_ENV_ID])), "frames differ"
    rates = {name: steps[name] / seconds[name] for name in envs}
    print(f"{STOCK_ENV_ID:18s} {rates[STOCK_ENV_ID]:8.1f} steps/s ({steps[STOCK_ENV_ID]} steps)")
    print(f"{FAST_ENV_ID:18s} {rates[FAST_ENV_ID]:8.1f} steps/s ({steps[FAST_ENV_ID]} steps, identical frames)")
    print(f"ratio fast / stock: {rates[FAST_ENV_ID] / rates[STOCK_ENV_ID]:.2f}x")


if __name__ == "__main__":
    main()
