"""Entry script: sample CarRacing episodes with the random policy or a trained controller.

    python worldmodels/data/sample_policy.py --policy random --num_process 8 --total_episodes 10000
"""

from __future__ import annotations

from worldmodels.cli import parse_config
from worldmodels.data.sampling import SamplingConfig, sample_random, summary_line
from worldmodels.errors import report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    config = parse_config(SamplingConfig, __doc__, argv)
    tree = ArtifactTree.from_env()
    if config.policy == "random":
        print(summary_line(sample_random(config, tree)))
    else:
        from worldmodels.control.sampling import sample_controller

        print(sample_controller(config, tree))


if __name__ == "__main__":
    main()
