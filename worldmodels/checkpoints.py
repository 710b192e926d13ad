"""Saving V and M: exported weights + config for the next stage, resumable training checkpoints, and the
`tf.distribute` strategy (`--strategy`) their training steps run under."""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, TypeVar

import keras
import tensorflow as tf

from worldmodels.errors import WorldModelsError
from worldmodels.files import atomic_path, read_json, write_json_atomic

Model = TypeVar("Model", bound=keras.Model)
STRATEGIES = ("default", "mirrored")
STRATEGY_HELP = ("default: one device; mirrored: tf.distribute.MirroredStrategy, a replica per visible GPU (without "
                 "one, per logical CPU: $WORLD_MODELS_CPU_DEVICES), each on its share of every batch; same losses, "
                 "same checkpoints")
# Logical devices to split the CPU into under `--strategy mirrored`, for boxes without a GPU (and for tests).
CPU_DEVICES_VARIABLE = "WORLD_MODELS_CPU_DEVICES"


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


def training_strategy(name: str) -> tf.distribute.Strategy:
    """`default`: TensorFlow's one-device placement.  `mirrored`: a replica on every visible GPU (on a box
    without one, on every logical CPU: see $WORLD_MODELS_CPU_DEVICES), each on its slice of the batch."""
    if name not in STRATEGIES:
        raise WorldModelsError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    strategy = _mirrored_strategy()
    print(f"strategy mirrored: {strategy.num_replicas_in_sync} replicas on "
          f"{', '.join(strategy.extended.worker_devices)}", flush=True)
    return strategy


@functools.cache
def _mirrored_strategy() -> tf.distribute.MirroredStrategy:
    # One per process: two MirroredStrategy objects over the same devices reuse collective keys, and the
    # second one's all-reduces then fail (V then M in one process, as the quickstart trains them).
    split_cpu(os.environ.get(CPU_DEVICES_VARIABLE, ""))
    return tf.distribute.MirroredStrategy()


def split_cpu(count: str) -> None:
    """Make the CPU `count` logical devices (nothing when empty); only possible before TensorFlow sets them up."""
    if not count:
        return
    if not count.isdigit() or int(count) < 1:
        raise WorldModelsError(f"${CPU_DEVICES_VARIABLE} must be a whole number >= 1, got {count!r}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration()] * int(count)
    if (tf.config.get_logical_device_configuration(cpu) or [wanted[0]]) == wanted:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise WorldModelsError(f"${CPU_DEVICES_VARIABLE}={count}: TensorFlow set up its devices before the CPU "
                               "could be split; set it for a fresh process") from None


def global_count(local: tf.Tensor) -> tf.Tensor:
    """A count (examples, valid steps) summed over the replicas: what each replica divides its summed loss by,
    so that the replicas' losses and gradients add up to those of one device on the whole batch."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, tf.cast(local, tf.float32))


def nonempty(batch: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """`batch` and weight 1; or, for an empty one (a replica's share of a last batch smaller than the replica
    count), one all-zero example and weight 0.  On an empty batch TensorFlow's oneDNN Conv2D returns its input
    and Keras' LSTM fails, so no replica computes on one."""
    if batch.shape[0]:  # known and non-zero: one device, or a batch that splits evenly
        return batch, tf.constant(1.0)
    size = tf.shape(batch)[0]
    stand_in = tf.zeros(tf.concat([[1], tf.shape(batch)[1:]], axis=0), batch.dtype)
    return tf.cond(size > 0, lambda: batch, lambda: stand_in), tf.cast(size > 0, tf.float32)


class CheckpointedTrainer:
    """A model, its optimizer and step/epoch counters in one checkpoint, so `--load_model 1` resumes.

    Built under `strategy.scope()`, so that each replica holds a copy of every variable; the checkpoint saves
    one copy, and a checkpoint written under one strategy resumes under any other.  Subclasses say how a
    replica computes its losses and gradients (`replica_gradients`); `train_step` runs that on every replica.
    """

    label = "model"
    config_name = ""

    def __init__(self, build: Callable[[], tuple[keras.Model, keras.optimizers.Optimizer]], models_folder: Path,
                 strategy: tf.distribute.Strategy | None = None):
        self.strategy = strategy or tf.distribute.get_strategy()
        self.models_folder = Path(models_folder)
        with self.strategy.scope():
            self.model, self.optimizer = build()
            self.optimizer.build(self.model.trainable_variables)
            self.step = tf.Variable(0, dtype=tf.int64, name="step")
            self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
            # The step the current epoch began at; -1 in checkpoints of older versions (epoch restarts whole).
            self.epoch_start = tf.Variable(-1, dtype=tf.int64, name="epoch_start")
            checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step,
                                             epoch=self.epoch, epoch_start=self.epoch_start)
        self.checkpoints = tf.train.CheckpointManager(checkpoint, str(self.models_folder / "checkpoints"), max_to_keep=2)

    def distribute(self, dataset: tf.data.Dataset) -> Any:
        """`dataset`'s batches, each split across the replicas (the dataset itself under the default strategy)."""
        return self.strategy.experimental_distribute_dataset(dataset)

    def batch_size(self, batch: Any) -> int:
        """Examples in a (possibly distributed) batch, over all replicas."""
        return sum(int(part.shape[0]) for part in self.strategy.experimental_local_results(batch))

    @tf.function(reduce_retracing=True)
    def train_step(self, *batch: Any) -> Any:
        """One optimizer step on a batch from `distribute` (or a plain one); returns the whole batch's losses."""
        losses = self.strategy.run(self.replica_step, args=batch)
        self.step.assign_add(1)
        return tf.nest.map_structure(lambda loss: self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None),
                                     losses)

    def replica_step(self, *batch: tf.Tensor) -> Any:
        losses, gradients = self.replica_gradients(*batch)
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables))  # summed over replicas
        return losses

    def replica_gradients(self, *batch: tf.Tensor) -> tuple[Any, list[tf.Tensor]]:
        """This replica's share of the losses (sums over its examples / `global_count`) and their gradients."""
        raise NotImplementedError

    def restore(self) -> None:
        """Resume from the newest checkpoint; refuse one whose architecture differs from the flags."""
        latest = self.checkpoints.latest_checkpoint
        if latest is None:
            raise WorldModelsError(f"{self.models_folder}: no saved {self.label} checkpoint to resume; use --load_model 0")
        saved = self.models_folder / self.config_name
        # Fields added since an older version wrote the file take their defaults, as loading the model does.
        saved_config = {**asdict(type(self.model.config)()), **read_json(saved)} if saved.is_file() else None
        if saved_config is not None and saved_config != asdict(self.model.config):
            raise WorldModelsError(f"{saved}: saved {self.label} {saved_config} does not match the flags and data "
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

    def steps_into_epoch(self) -> int:
        """Batches of the current epoch already trained on (0 at an epoch's start); marks the start if unknown."""
        if int(self.epoch_start.numpy()) < 0:
            self.epoch_start.assign(self.step)
        return int(self.step.numpy() - self.epoch_start.numpy())

    def end_epoch(self) -> None:
        self.epoch.assign_add(1)
        self.epoch_start.assign(self.step)

    def save(self) -> None:
        self.checkpoints.save(checkpoint_number=int(self.step.numpy()))
        self.export()
