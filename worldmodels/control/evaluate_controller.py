"""Entry script: evaluate a controller generation on new tracks, as the paper did (100 episodes).

    python worldmodels/control/evaluate_controller.py --generation best --episodes 100
"""

from __future__ import annotations

from worldmodels.cli import parse_config
from worldmodels.errors import report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.control.evaluation import EvaluationConfig, evaluate_generation

    config = parse_config(EvaluationConfig, __doc__, argv)
    tree = ArtifactTree.from_env()
    summary = evaluate_generation(config, tree)
    print(f"generation {summary['generation']}: {summary['mean']:.1f} +- {summary['std']:.1f} over "
          f"{summary['episodes']} episodes -> {summary['file']}")


if __name__ == "__main__":
    main()
