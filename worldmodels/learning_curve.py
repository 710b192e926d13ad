"""Plot a CMA-ES run's held-out score against wall time and env steps, beside the original run's anchors.

    python -m worldmodels.learning_curve --root ~/world-models-experiments --output docs/learning-curve.png

Reads only the run's own logs: `control/rewards.log` (seconds and env steps of every generation,
held-out evaluations included) and, when present, `stages.csv` at the root (seconds and env steps of
the stages before CMA-ES: sampling, V, latent stats, M), which shifts the curve by what they cost.
A run in phases (a CMA-ES run warm-started from an earlier one, which moved to `control-archive/`)
is followed through each archived run, oldest first, then `control/`; generations count on across them.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from worldmodels.errors import WorldModelsError, report_errors
from worldmodels.paths import ArtifactTree

STAGES_NAME = "stages.csv"
STAGE_COLUMNS = ("stage", "seconds", "env_steps")
# The original run (hardmaru/WorldModelsExperiments, carracing log): held-out mean of the CMA-ES mean.
ANCHORS = ({"label": "original (64 CPUs), gen 25", "score": 822.9, "env_steps": 25.6e6, "hours": 15.0},
           {"label": "original (64 CPUs), gen 200", "score": 880.4, "env_steps": 201e6, "hours": 4.8 * 24})


def read_curve(tree: ArtifactTree) -> list[dict]:
    """One point per held-out evaluation: generation, score, cumulative hours and env steps."""
    if not tree.rewards_log.is_file():
        raise WorldModelsError(f"{tree.rewards_log}: no CMA-ES log; run train_controller.py first")
    seconds, steps = 0.0, 0
    stages = tree.root / STAGES_NAME
    if stages.is_file():
        with stages.open() as handle:
            for row in csv.DictReader(handle):
                seconds += float(row["seconds"])
                steps += int(row["env_steps"] or 0)
    points, offset = [], 0
    archived = sorted(tree.root.glob("control-archive/*/rewards.log"))
    for log in [*archived, tree.rewards_log]:
        with log.open() as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            seconds += float(row["seconds"])
            steps += int(row.get("env_steps") or 0)
            if row["evaluation"]:
                points.append({"generation": offset + int(row["generation"]), "score": float(row["evaluation"]),
                               "hours": seconds / 3600, "env_steps": steps})
        offset += len(rows)
    return points


def plot_curve(points: list[dict], output: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for axis, key, label in ((axes[0], "hours", "wall time (hours)"), (axes[1], "env_steps", "env steps")):
        axis.plot([p[key] for p in points], [p["score"] for p in points], "o-", label="this run (held-out mean)")
        for anchor in ANCHORS:
            axis.scatter([anchor[key]], [anchor["score"]], marker="*", s=120, color="tab:red")
            axis.annotate(anchor["label"], (anchor[key], anchor["score"]), textcoords="offset points", xytext=(5, -12))
        axis.set_xscale("log")
        axis.set_xlabel(label)
        axis.axhline(900, color="grey", linewidth=0.5, linestyle="--")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("mean score over held-out tracks")
    axes[0].legend(loc="lower right")
    figure.suptitle(title)
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=110)
    return output


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.paths import default_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(default_root()), help="artifact tree of the run")
    parser.add_argument("--output", default="learning-curve.png")
    parser.add_argument("--title", default="CMA-ES held-out score")
    args = parser.parse_args(argv)
    points = read_curve(ArtifactTree(Path(args.root).expanduser()))
    if not points:
        raise WorldModelsError(f"{args.root}: no held-out evaluation logged yet")
    path = plot_curve(points, Path(args.output), args.title)
    best = max(points, key=lambda p: p["score"])
    print(f"{len(points)} evaluations; best {best['score']:.1f} at generation {best['generation']} "
          f"({best['hours']:.2f} h, {best['env_steps'] / 1e6:.2f}M env steps) -> {path}")


if __name__ == "__main__":
    main()
