"""Entry script: train the MDN-RNN (M) on the latent statistics.

    python worldmodels/memory/train_memory.py --load_model 0 --epochs 40
"""

from __future__ import annotations

from worldmodels.cli import parse_config
from worldmodels.errors import report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.memory.training import MemoryTrainingConfig, train_memory

    config = parse_config(MemoryTrainingConfig, __doc__, argv)
    tree = ArtifactTree.from_env()
    summary = train_memory(config, tree)
    print(f"trained MDN-RNN: {summary['epochs']} epochs, {summary['steps']} steps on {summary['episodes']} episodes, "
          f"{summary['sequences_per_second']:.1f} sequences/s, loss {summary['loss']:.3f} -> {summary['model']}")


if __name__ == "__main__":
    main()
