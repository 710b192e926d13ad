"""Entry script: fit a controller for this tree's V and M that drives like a trained agent of another tree.

    python worldmodels/control/distill_controller.py --teacher ~/wm-agent --teacher_params best
    python worldmodels/control/train_controller.py --init_from distilled-params.npy --sigma 0.05 ...
"""

from __future__ import annotations

from worldmodels.cli import parse_config
from worldmodels.errors import report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.control.distillation import DistillationConfig, distill

    config = parse_config(DistillationConfig, __doc__, argv)
    report = distill(config, ArtifactTree.from_env())
    errors = ", ".join(f"{name} {value:.3f}" for name, value in report["held_out_action_error"].items())
    print(f"distilled {report['teacher_params']} over {report['episodes']} episodes ({report['steps']} steps, "
          f"ridge {report['ridge']:g}); mean action error on held-out episodes: {errors} -> {report['output']}")


if __name__ == "__main__":
    main()
