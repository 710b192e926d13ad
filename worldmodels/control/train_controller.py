"""Entry script: train the linear controller (C) with CMA-ES in the real environment (or in M's dream).

    python worldmodels/control/train_controller.py --popsize 64 --rollouts 16 --num_process 64
"""

from __future__ import annotations

from worldmodels.cli import parse_config
from worldmodels.errors import report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.control.training import ControllerTrainingConfig, train_controller

    config = parse_config(ControllerTrainingConfig, __doc__, argv)
    tree = ArtifactTree.from_env()
    summaries = train_controller(config, tree)
    if not summaries:
        print(f"nothing to do: {config.generations} generations already finished in {tree.generations}")
    else:
        print(f"finished generation {summaries[-1]['generation']} -> {tree.generations}; log: {tree.rewards_log}")


if __name__ == "__main__":
    main()
