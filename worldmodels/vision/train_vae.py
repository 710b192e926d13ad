"""Entry script: train the VAE (V) on sampled episodes.

    python worldmodels/vision/train_vae.py --load_model 0 --data local --epochs 10 --dataset random
"""

from __future__ import annotations

from worldmodels.cli import parse_config
from worldmodels.errors import report_errors
from worldmodels.paths import ArtifactTree


@report_errors
def main(argv: list[str] | None = None) -> None:
    from worldmodels.vision.training import VAETrainingConfig, train_vae

    config = parse_config(VAETrainingConfig, __doc__, argv)
    tree = ArtifactTree.from_env()
    summary = train_vae(config, tree)
    print(f"trained VAE: {summary['epochs']} epochs, {summary['steps']} steps on {summary['episodes']} episodes, "
          f"{summary['images_per_second']:.0f} images/s, loss {summary.get('loss', float('nan')):.2f} -> {summary['model']}")


if __name__ == "__main__":
    main()
