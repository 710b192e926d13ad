import os
from pathlib import Path

import numpy as np
import pytest

from helpers import synthetic_episode
from worldmodels.data.episode import (Episode, list_episodes, read_numpy, read_tfrecord, write_numpy,
                                      write_tfrecord)
from worldmodels.errors import WorldModelsError


@pytest.mark.parametrize("write,read,suffix", [(write_tfrecord, read_tfrecord, ".tfrecord"),
                                               (write_numpy, read_numpy, ".npz")])
def test_round_trip(tmp_path, write, read, suffix):
    episode = synthetic_episode(17)
    path = tmp_path / f"episode_000003{suffix}"
    write(path, episode)
    loaded = read(path)
    for name in Episode._fields:
        np.testing.assert_array_equal(getattr(loaded, name), getattr(episode, name))
        assert getattr(loaded, name).dtype == getattr(episode, name).dtype
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporaries left


def test_list_episodes_sorts_by_index_and_ignores_temporaries(tmp_path):
    for index in (10, 2):
        write_tfrecord(tmp_path / f"episode_{index:06d}.tfrecord", synthetic_episode(3))
    (tmp_path / ".tmp-abc-episode_000005.tfrecord").write_bytes(b"partial")
    assert [p.name for p in list_episodes(tmp_path)] == ["episode_000002.tfrecord", "episode_000010.tfrecord"]


def test_truncated_and_corrupt_files_name_the_file(tmp_path):
    path = tmp_path / "episode_000000.tfrecord"
    write_tfrecord(path, synthetic_episode(20))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WorldModelsError, match="episode_000000.tfrecord: corrupt or truncated"):
        read_tfrecord(path)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(WorldModelsError, match="episode_000000.tfrecord"):
        read_tfrecord(path)


def test_mis_shaped_record_names_the_file(tmp_path):
    import tensorflow as tf

    from worldmodels.data.episode import _example_bytes

    bad = synthetic_episode(3)._replace(observations=np.zeros((3, 96, 96, 3), np.uint8))
    path = tmp_path / "episode_000007.tfrecord"
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(compression_type="GZIP")) as writer:
        writer.write(_example_bytes(bad))  # bypasses the writer's own shape check, like a foreign file
    with pytest.raises(WorldModelsError, match="episode_000007.tfrecord: corrupt or truncated episode file"):
        read_tfrecord(path)


def test_wrong_shapes_are_refused(tmp_path):
    episode = synthetic_episode(4)
    bad = episode._replace(observations=np.zeros((4, 96, 96, 3), np.uint8))
    with pytest.raises(WorldModelsError, match="observations has shape"):
        write_tfrecord(tmp_path / "episode_000000.tfrecord", bad)
    assert not list(tmp_path.iterdir())
    path = tmp_path / "episode_000001.npz"
    np.savez(path, **bad._asdict())
    with pytest.raises(WorldModelsError, match="episode_000001.npz: observations has shape"):
        read_numpy(path)


def test_an_episode_is_the_same_bytes_in_every_process(tmp_path):
    """Protobuf map order follows the process's string hashing unless serialised deterministically: files
    written by different processes (workers, Ray actors, a re-run) must still compare equal byte for byte."""
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'tests'); from helpers import synthetic_episode; "
            "from worldmodels.data.episode import write_tfrecord; write_tfrecord(sys.argv[1], synthetic_episode(20))")
    paths = []
    for hash_seed in ("1", "2"):
        path = tmp_path / f"episode_{hash_seed}.tfrecord"
        subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True,
                       env={**os.environ, "PYTHONHASHSEED": hash_seed}, cwd=Path(__file__).resolve().parents[1])
        paths.append(path)
    assert paths[0].read_bytes() == paths[1].read_bytes()
