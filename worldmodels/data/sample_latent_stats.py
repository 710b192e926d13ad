"""Entry script: encode episodes with the trained VAE into per-episode latent statistics.

    python worldmodels/data/sample_latent_stats.py --episode_start 0 --episodes 10000 --data local --dataset random
"""

from __future__ import annotations

from worldmodels.cli import parse_config
from worldmodels.errors import report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.data.latent_stats import LatentStatsConfig, sample_latent_stats

    config = parse_config(LatentStatsConfig, __doc__, argv)
    tree = ArtifactTree.from_env()
    summary = sample_latent_stats(config, tree)
    rate = summary["frames"] / summary["seconds"] if summary["seconds"] > 0 else 0.0
    print(f"encoded {summary['encoded']} episodes ({summary['skipped']} already current), {summary['frames']} frames "
          f"in {summary['seconds']:.1f} s ({rate:.0f} frames/s) -> {summary['folder']}")


if __name__ == "__main__":
    main()
