"""The episode file format: schema, writer and reader for TFRecord and numpy episodes.

One GZIP-compressed TFRecord per episode holding a single `tf.train.Example` whose features
are the raw bytes of whole arrays (upstream wrote one record per step, which made reading
1,000x slower, and stored float32 frames at 49 KB each).  Frames are uint8 and compress to
about 1 KB each.  `.npz` episodes hold the same arrays for numpy users.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, NamedTuple

import numpy as np

from worldmodels.data.env import ACTION_DIM, OBSERVATION_SHAPE
from worldmodels.errors import WorldModelsError
from worldmodels.files import TEMP_PREFIX, atomic_path

if TYPE_CHECKING:  # TensorFlow is imported lazily: sampling workers that write numpy never load it
    import tensorflow as tf

TFRECORD_SUFFIX = ".tfrecord"
NUMPY_SUFFIX = ".npz"
COMPRESSION = "GZIP"
EPISODE_PATTERN = re.compile(r"^episode_(\d+)\.(tfrecord|npz)$")


class Episode(NamedTuple):
    """One episode: observation t is what the agent saw when it took action t."""

    observations: np.ndarray  # (T, 64, 64, 3) uint8
    actions: np.ndarray  # (T, 3) float32
    rewards: np.ndarray  # (T,) float32, reward for action t
    dones: np.ndarray  # (T,) bool, True where the episode terminated after action t

    @property
    def length(self) -> int:
        return len(self.actions)

    def validate(self, source: str = "episode") -> "Episode":
        """Check shapes and dtypes, so a wrong file fails loudly here and not deep inside training."""
        length = len(self.actions)
        expected = {
            "observations": ((length, *OBSERVATION_SHAPE), np.uint8),
            "actions": ((length, ACTION_DIM), np.float32),
            "rewards": ((length,), np.float32),
            "dones": ((length,), np.bool_),
        }
        for name, (shape, dtype) in expected.items():
            array = getattr(self, name)
            if array.shape != shape or array.dtype != dtype:
                raise WorldModelsError(
                    f"{source}: {name} has shape {array.shape} {array.dtype}, expected {shape} {np.dtype(dtype)}")
        if length == 0:
            raise WorldModelsError(f"{source}: episode has no steps")
        return self


def episode_filename(index: int, suffix: str = TFRECORD_SUFFIX) -> str:
    return f"episode_{index:06d}{suffix}"


def episode_index(path: Path) -> int:
    match = EPISODE_PATTERN.match(Path(path).name)
    if not match:
        raise WorldModelsError(f"{path}: not an episode file name (expected episode_<index>.tfrecord|.npz)")
    return int(match.group(1))


def list_episodes(folder: Path, suffix: str = TFRECORD_SUFFIX) -> list[Path]:
    """Finished episode files in a folder, in index order; temporaries are never listed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise WorldModelsError(f"{folder}: folder not found; sample episodes into it first")
    files = [path for path in folder.iterdir()
             if path.suffix == suffix and not path.name.startswith(TEMP_PREFIX) and EPISODE_PATTERN.match(path.name)]
    return sorted(files, key=episode_index)


# ---------------------------------------------------------------- TFRecord

FEATURE_KEYS = ("observations", "actions", "rewards", "dones", "length")


def _example_bytes(episode: Episode) -> bytes:
    import tensorflow as tf

    def raw(array: np.ndarray) -> tf.train.Feature:
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[np.ascontiguousarray(array).tobytes()]))

    features = {
        "observations": raw(episode.observations),
        "actions": raw(episode.actions),
        "rewards": raw(episode.rewards),
        "dones": raw(episode.dones.astype(np.uint8)),
        "length": tf.train.Feature(int64_list=tf.train.Int64List(value=[episode.length])),
    }
    # Deterministic: map entries in key order, so the same episode is the same bytes in every process.
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString(deterministic=True)


def write_tfrecord(path: Path, episode: Episode) -> None:
    """Write one episode atomically: a reader never sees a half-written file under `path`."""
    import tensorflow as tf

    episode.validate(str(path))
    with atomic_path(Path(path)) as temp:
        options = tf.io.TFRecordOptions(compression_type=COMPRESSION)
        with tf.io.TFRecordWriter(str(temp), options) as writer:
            writer.write(_example_bytes(episode))


def parse_episode(serialized: "tf.Tensor") -> dict:
    """Parse a serialized episode into tensors; used by `read_tfrecord` and by tf.data pipelines."""
    import tensorflow as tf

    spec = {key: tf.io.FixedLenFeature([], tf.string) for key in FEATURE_KEYS[:-1]}
    spec["length"] = tf.io.FixedLenFeature([], tf.int64)
    parsed = tf.io.parse_single_example(serialized, spec)
    length = parsed["length"]
    return {
        "observations": tf.reshape(tf.io.decode_raw(parsed["observations"], tf.uint8), [length, *OBSERVATION_SHAPE]),
        "actions": tf.reshape(tf.io.decode_raw(parsed["actions"], tf.float32), [length, ACTION_DIM]),
        "rewards": tf.reshape(tf.io.decode_raw(parsed["rewards"], tf.float32), [length]),
        "dones": tf.reshape(tf.io.decode_raw(parsed["dones"], tf.uint8), [length]) > 0,
    }


def tfrecord_dataset(files: Iterable[Path]) -> "tf.data.Dataset":
    """A dataset of serialized episodes read from GZIP TFRecords."""
    import tensorflow as tf

    return tf.data.TFRecordDataset([str(path) for path in files], compression_type=COMPRESSION)


def read_tfrecord(path: Path) -> Episode:
    """Read and validate one episode; a truncated, corrupt or mis-shaped file raises WorldModelsError."""
    import tensorflow as tf

    path = Path(path)
    if not path.is_file():
        raise WorldModelsError(f"{path}: episode file not found")
    try:
        records = list(tfrecord_dataset([path]).take(2))
        if len(records) != 1:
            raise WorldModelsError(f"{path}: expected one episode record, found {len(records)}")
        tensors = parse_episode(records[0])
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError) as error:
        raise WorldModelsError(f"{path}: corrupt or truncated episode file ({_first_line(error)})") from None
    episode = Episode(*(tensors[key].numpy() for key in ("observations", "actions", "rewards", "dones")))
    return episode.validate(str(path))


def _first_line(error: Exception) -> str:
    """TensorFlow's message without its `{{function_node ...}}` prefix and `[Op:...]` suffix."""
    message = (getattr(error, "message", None) or str(error)).strip()
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    message = re.sub(r"\s*\[Op:[^\]]*\].*$", "", message.splitlines()[0] if message else "")
    return message[:200] or type(error).__name__


# ---------------------------------------------------------------- numpy

def write_numpy(path: Path, episode: Episode, **extra: np.ndarray) -> None:
    """Write an episode (plus extra per-step arrays, e.g. latents) as one compressed `.npz`."""
    episode.validate(str(path))
    with atomic_path(Path(path)) as temp:
        with temp.open("wb") as handle:
            np.savez_compressed(handle, **episode._asdict(), **extra)


def read_numpy(path: Path) -> Episode:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as arrays:
            episode = Episode(*(arrays[key] for key in Episode._fields))
    except FileNotFoundError:
        raise WorldModelsError(f"{path}: episode file not found") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise WorldModelsError(f"{path}: corrupt or incomplete numpy episode ({error})") from None
    return episode.validate(str(path))


def read_episode(path: Path) -> Episode:
    """Read an episode in either format, chosen by its suffix."""
    return read_numpy(path) if Path(path).suffix == NUMPY_SUFFIX else read_tfrecord(path)
