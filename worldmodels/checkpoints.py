"""Saving V and M: exported weights + config for the next stage, and resumable training checkpoints."""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable, TypeVar

import keras
import tensorflow as tf

from worldmodels.errors import WorldModelsError
from worldmodels.files import atomic_path, read_json, write_json_atomic

Model = TypeVar("Model", bound=keras.Model)


def export_model(model: keras.Model, folder: Path, weights_name: str, config_name: str) -> Path:
    """Write weights, then the config: a config beside the weights marks a complete model."""
    folder = Path(folder)
    with atomic_path(folder / weights_name) as temp:
        model.save_weights(str(temp))
    write_json_atomic(folder / config_name, asdict(model.config))
    return folder / weights_name


def import_model(folder: Path, weights_name: str, config_name: str, config_cls: type, build: Callable[..., Model],
                 label: str, producer: str, legacy_build: Callable[..., keras.Model] | None = None) -> Model:
    """Rebuild a model from its saved config and weights; anything missing or damaged is a one-line error.

    `legacy_build` makes the model as earlier releases did (same variables, other layer classes):
    weights saved by them are read into it and copied over, so old files keep loading.
    """
    folder = Path(folder)
    weights, config_path = folder / weights_name, folder / config_name
    if not weights.is_file() or not config_path.is_file():
        raise WorldModelsError(f"{folder}: no trained {label} found ({weights_name} + {config_name}); run {producer} first")
    try:
        config = config_cls(**read_json(config_path))
    except TypeError as error:
        raise WorldModelsError(f"{config_path}: not a {label} config ({error})") from None
    model = build(config)
    try:
        model.load_weights(str(weights))
    except Exception as error:  # h5py and Keras raise many types for a damaged file
        if legacy_build is None or not _load_legacy(model, legacy_build(config), weights):
            raise WorldModelsError(f"{weights}: cannot load {label} weights "
                                   f"({str(error).splitlines()[0][:200]})") from None
    return model


def _load_legacy(model: keras.Model, legacy: keras.Model, weights: Path) -> bool:
    try:
        legacy.load_weights(str(weights))
    except Exception:
        return False
    model.set_weights(legacy.get_weights())
    return True


class CheckpointedTrainer:
    """A model, its optimizer and step/epoch counters in one checkpoint, so `--load_model 1` resumes."""

    label = "model"
    config_name = ""

    def __init__(self, model: keras.Model, optimizer: keras.optimizers.Optimizer, models_folder: Path):
        self.model, self.optimizer, self.models_folder = model, optimizer, Path(models_folder)
        optimizer.build(model.trainable_variables)
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
        checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=self.step, epoch=self.epoch)
        self.checkpoints = tf.train.CheckpointManager(checkpoint, str(self.models_folder / "checkpoints"), max_to_keep=2)

    def restore(self) -> None:
        """Resume from the newest checkpoint; refuse one whose architecture differs from the flags."""
        latest = self.checkpoints.latest_checkpoint
        if latest is None:
            raise WorldModelsError(f"{self.models_folder}: no saved {self.label} checkpoint to resume; use --load_model 0")
        saved = self.models_folder / self.config_name
        if saved.is_file() and read_json(saved) != asdict(self.model.config):
            raise WorldModelsError(f"{saved}: saved {self.label} {read_json(saved)} does not match the flags and data "
                                   f"({asdict(self.model.config)}); use --load_model 0")
        try:
            self.checkpoints.checkpoint.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as error:
            raise WorldModelsError(f"{latest}: cannot restore {self.label} checkpoint "
                                   f"({str(error).splitlines()[0][:200]})") from None

    def start_fresh(self) -> None:
        """Drop an earlier run's resume checkpoints; its exported model stays until this run saves one."""
        shutil.rmtree(self.models_folder / "checkpoints", ignore_errors=True)

    def export(self) -> Path:
        raise NotImplementedError

    def save(self) -> None:
        self.checkpoints.save(checkpoint_number=int(self.step.numpy()))
        self.export()
