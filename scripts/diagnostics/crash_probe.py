"""Where does a controller lose its points?  Drives it on the CMA-ES run's held-out tracks and reports, per
track, the score, the tiles visited, how it drives (mean speed and gas, how often it brakes or steers
fully), and each stretch with no wheel on the road: how fast the car went and how
hard it braked in the 15 steps before, and whether it came back (new tiles after the stretch).  A diagnostic
(docs/agent-recipe.md, "Recovery phase"), not part of the pipeline.

    WORLD_MODELS_HOME=~/wm-agent python scripts/diagnostics/crash_probe.py --params phase2-best-params.npy \
        --tracks 0-63
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from worldmodels.control.agent import Agent
from worldmodels.control.training import held_out_jobs
from worldmodels.data.dashboard import read_dashboard
from worldmodels.data.env import make_env, preprocess
from worldmodels.paths import ArtifactTree, default_root

STUCK_STEPS = 100  # an off-road stretch this long, or longer, counts as a crash the car did not recover from


def parse_tracks(text: str) -> list[int]:
    """'0-3,7' -> [0, 1, 2, 3, 7]"""
    tracks: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        tracks.extend(range(int(first), int(last or first) + 1))
    return tracks


def drive(agent: Agent, params: np.ndarray, seed: int) -> tuple[float, int, int, np.ndarray]:
    """One full episode: (score, tiles visited, tiles, rows of [speed, wheels on road, tiles so far, brake,
    gas, steering])."""
    env = make_env(1000)
    observation, _ = env.reset(seed=seed)
    car_racing = env.unwrapped
    h = c = np.zeros((1, agent.hidden_units), np.float32)
    total, done, rows = 0.0, False, []
    while not done:
        action, h, c = agent.act(preprocess(observation)[None], h, c, params,
                                 dashboards=read_dashboard(observation)[None])[:3]
        car = car_racing.car
        rows.append((np.linalg.norm(car.hull.linearVelocity), sum(len(wheel.tiles) > 0 for wheel in car.wheels),
                     car_racing.tile_visited_count, action[0][2], action[0][1], action[0][0]))
        observation, reward, terminated, truncated, _ = env.step(action[0])
        total, done = total + reward, terminated or truncated
    env.close()
    return total, car_racing.tile_visited_count, len(car_racing.track), np.asarray(rows)


def off_road_stretches(on_road: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of steps with no wheel on the road."""
    edges = np.diff(np.r_[0, (on_road == 0).astype(int), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, required=True, help="controller parameters (.npy)")
    parser.add_argument("--tracks", type=parse_tracks, default=parse_tracks("0-31"), help="held-out tracks, e.g. 0-63")
    args = parser.parse_args()
    agent = Agent.load(ArtifactTree(default_root()))
    params = agent.controller.check_layout(np.load(args.params), str(args.params))[None]
    seeds = [job.seed for job in held_out_jobs(max(args.tracks) + 1)]
    scores, stuck = [], []
    for track in args.tracks:
        score, visited, tiles, rows = drive(agent, params, seeds[track])
        stretches = off_road_stretches(rows[:, 1])
        longest = max((end - start for start, end in stretches), default=0)
        scores.append(score)
        stuck.append(longest >= STUCK_STEPS)
        speed, brake, gas, steering = rows[:, 0], rows[:, 3], rows[:, 4], rows[:, 5]
        print(f"track {track}: {score:.1f}, tiles {visited}/{tiles}, {int((rows[:, 1] == 0).sum())} steps off road, "
              f"longest stretch {longest}; speed {speed.mean():.1f}, gas {gas.mean():.2f}, brake on "
              f"{(brake > 0).mean():.0%} of steps, steering beyond +-0.9 on {(np.abs(steering) > 0.9).mean():.0%}",
              flush=True)
        for start, end in stretches:
            if end - start < 10:
                continue
            before = rows[max(0, start - 15):start]
            after = rows[-1, 2] - rows[min(end, len(rows) - 1), 2]
            print(f"    steps {start}-{end}: speed before {before[:, 0].mean():.1f}, brake before "
                  f"{before[:, 3].mean():.2f}, speed off road {rows[start:end, 0].mean():.1f}, "
                  f"{after:.0f} new tiles after it")
    scores, stuck = np.asarray(scores), np.asarray(stuck)
    print(f"{len(scores)} tracks: {scores.mean():.1f} +- {scores.std():.1f}; {stuck.sum()} with {STUCK_STEPS}+ steps off "
          f"road in a row (mean score {scores[stuck].mean() if stuck.any() else float('nan'):.1f}), the rest "
          f"{scores[~stuck].mean() if (~stuck).any() else float('nan'):.1f}")


if __name__ == "__main__":
    main()
