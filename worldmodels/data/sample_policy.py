"""Entry script: sample CarRacing episodes with the random policy or a trained controller.

    python worldmodels/data/sample_policy.py --policy random --num_process 8 --total_episodes 10000
"""

from __future__ import annotations

import argparse

from worldmodels.cli import add_config_arguments, config_from_args
from worldmodels.data.sampling import SamplingConfig, sample_random, summary_line
from worldmodels.errors import WorldModelsError, report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_arguments(parser, SamplingConfig)
    config = config_from_args(SamplingConfig, parser.parse_args(argv)).validate()
    tree = ArtifactTree.from_env()
    if config.policy == "random":
        print(summary_line(sample_random(config, tree)))
    else:
        try:
            from worldmodels.control.sampling import sample_controller
        except ImportError:
            raise WorldModelsError("--policy controller needs the control stage, which is not installed") from None
        print(sample_controller(config, tree))


if __name__ == "__main__":
    main()
