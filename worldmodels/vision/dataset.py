"""The tf.data input pipeline of V: streams frames from episode TFRecords, never the whole dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import tensorflow as tf

from worldmodels.data.episode import parse_episode, tfrecord_dataset
from worldmodels.vision.vae import to_unit_float

FILES_READ_AT_ONCE = 8  # episodes interleaved into the shuffle buffer at a time


def frame_dataset(files: Sequence[Path], batch_size: int, shuffle_buffer: int, seed: int | None = None,
                  skip_batches: int = 0) -> tf.data.Dataset:
    """Shuffled batches of float frames in [0, 1], interleaved across episode files.

    With a seed, one pass yields the same batches in the same order every time it is built, so a run
    resumed mid-pass skips exactly the `skip_batches` it had already trained on.
    """
    paths = tf.data.Dataset.from_tensor_slices([str(path) for path in files])
    paths = paths.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)

    def frames_of(path: tf.Tensor) -> tf.data.Dataset:
        records = tf.data.TFRecordDataset(path, compression_type="GZIP")
        return records.map(lambda record: parse_episode(record)["observations"]).unbatch()

    frames = paths.interleave(frames_of, cycle_length=min(FILES_READ_AT_ONCE, len(files)),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=seed is not None)
    return (frames.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
            .batch(batch_size)
            .skip(skip_batches)
            .map(to_unit_float, num_parallel_calls=tf.data.AUTOTUNE)
            .prefetch(tf.data.AUTOTUNE))


def first_frames(files: Sequence[Path], count: int) -> tf.Tensor:
    """The first `count` frames of the first episodes, in order: a fixed batch for comparison images."""
    frames = tfrecord_dataset(files[:4]).map(lambda record: parse_episode(record)["observations"]).unbatch()
    return to_unit_float(tf.stack(list(frames.shuffle(4000, seed=0).take(count))))
