"""The artifact tree: the one place that knows where every stage reads and writes.

The layout mirrors the upstream project so `aws s3 sync` commands and `tail -f` habits keep
working.  The root is `$HOME/world-models-experiments`, or `$WORLD_MODELS_HOME` when set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_VARIABLE = "WORLD_MODELS_HOME"
DATASETS = ("random", "controller")


def default_root() -> Path:
    """The artifact root, resolved at call time so tests can point HOME elsewhere."""
    override = os.environ.get(HOME_VARIABLE)
    if override:
        return Path(override).expanduser()
    return Path.home() / "world-models-experiments"


@dataclass(frozen=True)
class ArtifactTree:
    """Paths of every artifact the pipeline produces, below one root folder."""

    root: Path

    @classmethod
    def from_env(cls) -> "ArtifactTree":
        return cls(default_root())

    # data
    @property
    def random_rollouts(self) -> Path:
        return self.root / "random-rollouts"

    @property
    def controller_rollouts(self) -> Path:
        return self.root / "controller-rollouts"

    def rollouts(self, dataset: str) -> Path:
        """Episode folder of a dataset: `random` or `controller`."""
        if dataset not in DATASETS:
            raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")
        return self.random_rollouts if dataset == "random" else self.controller_rollouts

    def rollout_folders(self, dataset: str) -> list[Path]:
        """Episode folders of `dataset`, or of every dataset for `all` (a second data generation mixes them)."""
        return [self.rollouts(name) for name in DATASETS] if dataset == "all" else [self.rollouts(dataset)]

    @property
    def controller_samples_root(self) -> Path:
        return self.root / "controller-samples"

    def controller_samples(self, seed: int | str) -> Path:
        return self.controller_samples_root / str(seed)

    # vision
    @property
    def vae_training(self) -> Path:
        return self.root / "vae-training"

    @property
    def vae_models(self) -> Path:
        return self.vae_training / "models"

    @property
    def vae_images(self) -> Path:
        return self.vae_training / "images"

    @property
    def vae_log(self) -> Path:
        return self.vae_training / "training.csv"

    @property
    def latent_stats(self) -> Path:
        return self.root / "latent-stats"

    # memory
    @property
    def memory_training(self) -> Path:
        return self.root / "memory-training"

    @property
    def memory_models(self) -> Path:
        return self.memory_training / "models"

    @property
    def memory_log(self) -> Path:
        return self.memory_training / "training.csv"

    # control
    @property
    def control(self) -> Path:
        return self.root / "control"

    @property
    def generations(self) -> Path:
        return self.control / "generations"

    def generation(self, number: int) -> Path:
        return self.generations / f"generation_{number}"

    @property
    def rewards_log(self) -> Path:
        return self.control / "rewards.log"

    @property
    def evaluations(self) -> Path:
        return self.control / "evaluations"

    @property
    def best_controller(self) -> Path:
        return self.control / "best"

    def control_archive(self, name: str) -> Path:
        """Where an earlier CMA-ES run is moved when V or M changed under it (the next generation)."""
        return self.root / "control-archive" / name

    # coordination between runs
    @property
    def locks(self) -> Path:
        """Lock files: at most one run of a stage (or one sampler per episode range) per tree."""
        return self.root / "locks"

    def lock(self, name: str) -> Path:
        return self.locks / f"{name}.lock"

    @property
    def install_staging(self) -> Path:
        """Where a pretrained install unpacks before it moves its files into place all together."""
        return self.root / ".pretrained-install"
