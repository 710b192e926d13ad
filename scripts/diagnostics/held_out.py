"""Score controller parameters on the CMA-ES run's held-out tracks (or a test seed's), with the V and M of
$WORLD_MODELS_HOME; several `--params` are scored on the same tracks, paired against the first, and
`--gas_shifts` also scores the first with more (or less) gas.

The same tracks and episode rules as `train_controller.py`'s held-out evaluations, so a figure from here
pairs episode for episode with the run's own (docs/agent-recipe.md: the same C with a refreshed M; does more
gas make the car faster or crash it?).

    WORLD_MODELS_HOME=~/wm-agent python scripts/diagnostics/held_out.py --params phase2-best-params.npy
    WORLD_MODELS_HOME=~/wm-recovery python scripts/diagnostics/held_out.py --params control/best/best-params.npy \\
        --seed 7 --gas_shifts 0.3,0.6,1.0
    WORLD_MODELS_HOME=~/wm-dash1 python scripts/diagnostics/held_out.py --seed 7 --episodes 100 \\
        --params base-params.npy control/best/best-params.npy
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from worldmodels.control.agent import Agent
from worldmodels.control.backends import open_rollouts
from worldmodels.control.evaluation import final_test_jobs
from worldmodels.control.rollout import EpisodeJob
from worldmodels.control.training import held_out_jobs
from worldmodels.data.env import DEFAULT_ENV_ID
from worldmodels.paths import ArtifactTree, default_root

GAS_BIAS = -2  # the bias of C's gas output: the last three parameters are steer, gas and brake's biases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, nargs="+", required=True,
                        help="controller parameters (.npy; a relative path not found here is read from "
                             "$WORLD_MODELS_HOME); [z, h] ones are widened (zero gauge weights: the same driver) "
                             "when another reads the dashboard")
    parser.add_argument("--episodes", type=int, default=32, help="tracks 0 .. episodes - 1")
    parser.add_argument("--seed", type=int, help="the test tracks of this seed (evaluate_controller.py --seed), "
                                                 "not the held-out ones")
    parser.add_argument("--gas_shifts", type=lambda text: [float(x) for x in text.split(",")], default=[],
                        help="comma-separated amounts added to gas's bias, each scored as a variant")
    parser.add_argument("--num_process", type=int, default=2)
    parser.add_argument("--output", type=Path, help="write the per-track scores here (.npy, a row per variant)")
    args = parser.parse_args()
    tree = ArtifactTree(default_root())
    args.params = [path if path.is_file() else tree.root / path for path in args.params]
    missing = [str(path) for path in args.params if not path.is_file()]
    if missing:
        parser.error(f"--params {missing[0]}: no such file")
    agent = Agent.load(tree)
    controllers = [agent.controller.check_layout(np.load(path), str(path)) for path in args.params]
    wide = agent.controller.with_dashboard(True)
    if any(len(params) == wide.num_params for params in controllers):
        controllers = [params if len(params) == wide.num_params else wide.widen(params) for params in controllers]
    shifts = np.asarray(args.gas_shifts, np.float32)
    variants = np.concatenate([np.stack(controllers), np.repeat(controllers[0][None], len(shifts), axis=0)])
    variants[len(controllers):, GAS_BIAS] += shifts
    names = [str(path) for path in args.params] + [f"gas bias {shift:+.2f}" for shift in args.gas_shifts]
    track_jobs = held_out_jobs(args.episodes) if args.seed is None else final_test_jobs(args.seed, args.episodes)
    seeds = [job.seed for job in track_jobs]
    jobs = [EpisodeJob(seed, variant) for variant in range(len(variants)) for seed in seeds]
    with open_rollouts(agent, tree, args.num_process, 1000, DEFAULT_ENV_ID) as engine:
        results = engine.run(variants, jobs)
    scores = np.array([result.total_reward for result in results]).reshape(len(variants), args.episodes)
    if args.output:
        np.save(args.output, scores if len(variants) > 1 else scores[0])
    tracks = "held-out tracks" if args.seed is None else f"tracks of --seed {args.seed}"
    print(f"{tree.root}, {args.episodes} {tracks}:")
    for index, (name, row) in enumerate(zip(names, scores)):
        paired = row - scores[0]
        versus = f", paired {paired.mean():+.1f} +- {paired.std() / np.sqrt(len(paired)):.1f}" if index else ""
        print(f"  {name}: {row.mean():.1f} +- {row.std():.1f}, {(row < 600).sum()} tracks below 600{versus}")


if __name__ == "__main__":
    main()
