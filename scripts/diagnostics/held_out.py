"""Score controller parameters on the CMA-ES run's held-out tracks, with the V and M of $WORLD_MODELS_HOME.

The same tracks and episode rules as `train_controller.py`'s held-out evaluations, so a figure from here
pairs episode for episode with the run's own (docs/agent-recipe.md: the same C with a refreshed M).

    WORLD_MODELS_HOME=~/wm-agent python scripts/diagnostics/held_out.py --params phase2-best-params.npy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from worldmodels.control.agent import Agent
from worldmodels.control.backends import open_rollouts
from worldmodels.control.training import held_out_jobs
from worldmodels.data.env import DEFAULT_ENV_ID
from worldmodels.paths import ArtifactTree, default_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, required=True, help="controller parameters (.npy)")
    parser.add_argument("--episodes", type=int, default=32, help="held-out tracks 0 .. episodes - 1")
    parser.add_argument("--num_process", type=int, default=2)
    parser.add_argument("--output", type=Path, help="write the per-track scores here (.npy)")
    args = parser.parse_args()
    tree = ArtifactTree(default_root())
    agent = Agent.load(tree)
    params = agent.controller.check_layout(np.load(args.params), str(args.params))
    jobs = held_out_jobs(args.episodes)
    with open_rollouts(agent, tree, args.num_process, 1000, DEFAULT_ENV_ID) as engine:
        scores = np.array([result.total_reward for result in engine.run(params[None], jobs)])
    if args.output:
        np.save(args.output, scores)
    print(f"{tree.root}: {args.params} on {args.episodes} held-out tracks: {scores.mean():.1f} +- {scores.std():.1f}")


if __name__ == "__main__":
    main()
