"""How well do C's inputs carry the car's speed?  Drives a controller, records the true speed (never shown
to the agent) with z and h, and reports the R^2 of a ridge regression of speed on each, fitted on all
episodes but one and tested on that one.  `--memory` steps a second M beside the agent on the same
trajectory, to compare what its h carries.  A diagnostic (docs/agent-recipe.md), not part of the pipeline.

    python scripts/diagnostics/speed_probe.py --params ~/wm-agent/phase2-best-params.npy --episodes 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import tensorflow as tf

from worldmodels.control.agent import Agent
from worldmodels.data.dashboard import read_dashboard
from worldmodels.data.env import make_env, preprocess
from worldmodels.memory.mdn_rnn import load_mdn_rnn
from worldmodels.paths import ArtifactTree, default_root


def held_out_r2(features: np.ndarray, speed: np.ndarray, episode: np.ndarray, ridge: float = 1e-2) -> list[float]:
    """R^2 on each episode of a ridge regression fitted on the others."""
    design = np.c_[features, np.ones(len(features))]
    scores = []
    for held in np.unique(episode):
        train, test = episode != held, episode == held
        weights = np.linalg.solve(design[train].T @ design[train] + ridge * np.eye(design.shape[1]),
                                  design[train].T @ speed[train])
        error = speed[test] - design[test] @ weights
        scores.append(float(1 - (error ** 2).sum() / ((speed[test] - speed[test].mean()) ** 2).sum()))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, required=True, help="controller parameters (.npy)")
    parser.add_argument("--episodes", type=int, default=6)
    parser.add_argument("--memory", type=Path, help="models folder of a second M to compare")
    parser.add_argument("--first_seed", type=int, default=90000, help="track seeds first_seed, first_seed + 1, ...")
    args = parser.parse_args()
    agent = Agent.load(ArtifactTree(default_root()))
    params = agent.controller.check_layout(np.load(args.params), str(args.params))[None]
    other = load_mdn_rnn(args.memory) if args.memory else None
    rows: dict[str, list] = {"episode": [], "speed": [], "action": [], "z": [], "h": [], "other_h": []}
    for episode in range(args.episodes):
        env = make_env(1000)
        observation, _ = env.reset(seed=args.first_seed + episode)
        h = c = other_h = other_c = np.zeros((1, agent.hidden_units), np.float32)
        total, done = 0.0, False
        while not done:
            action, next_h, next_c, record = agent.act(preprocess(observation)[None], h, c, params, record=True,
                                                                   dashboards=read_dashboard(observation)[None])
            for key, value in (("episode", episode), ("speed", np.linalg.norm(env.unwrapped.car.hull.linearVelocity)),
                               ("action", action[0]), ("z", record.mu[0]), ("h", h[0]), ("other_h", other_h[0])):
                rows[key].append(value)
            if other is not None:
                _, other_h, other_c = (tensor.numpy() for tensor in other.step(
                    tf.constant(record.mu), tf.constant(action), tf.constant(other_h), tf.constant(other_c)))
            h, c = next_h, next_c
            observation, reward, terminated, truncated, _ = env.step(action[0])
            total, done = total + reward, terminated or truncated
        print(f"episode {episode}: reward {total:.1f}, {rows['episode'].count(episode)} steps", flush=True)
    data = {key: np.asarray(value) for key, value in rows.items()}
    action = data["action"]
    print(f"speed mean {data['speed'].mean():.1f} max {data['speed'].max():.1f}; gas {action[:, 1].mean():.3f}, "
          f"brake on {np.mean(action[:, 2] > 0):.3f} of steps, |steer| {np.abs(action[:, 0]).mean():.3f}")
    inputs = {"z": data["z"], "h": data["h"], "[z, h]": np.c_[data["z"], data["h"]]}
    if other is not None:
        inputs["h of --memory"] = data["other_h"]
    for name, features in inputs.items():
        scores = held_out_r2(features, data["speed"], data["episode"])
        print(f"R^2 of speed from {name}: mean {np.mean(scores):.2f}, per episode {np.round(scores, 2).tolist()}")


if __name__ == "__main__":
    main()
