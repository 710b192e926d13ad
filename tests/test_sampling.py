import os
import signal
import subprocess
import sys
import time

import numpy as np

from conftest import REPO
from worldmodels.data.env import make_env
from worldmodels.data.episode import read_tfrecord
from worldmodels.data.policies import BrownianPolicy
from worldmodels.data.sampling import SamplingConfig, episode_seed, run_random_episode, sample_random
from worldmodels.paths import HOME_VARIABLE


def test_same_seed_same_episode_and_other_seed_differs():
    env = make_env(40)
    first = run_random_episode(env, seed=11, episode_length=40)
    again = run_random_episode(env, seed=11, episode_length=40)
    other = run_random_episode(env, seed=12, episode_length=40)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first.actions, other.actions)
    assert not np.array_equal(first.observations, other.observations)


def test_episode_seed_depends_on_index_and_dataset_only():
    assert episode_seed(5) == episode_seed(5)
    assert len({episode_seed(i) for i in range(100)}) == 100
    assert episode_seed(5, dataset_seed=1) != episode_seed(5)


def test_random_walk_is_smooth_not_per_step_noise():
    policy = BrownianPolicy(np.random.default_rng(0))
    actions = np.stack([policy() for _ in range(2000)])
    steer = actions[:, 0]
    assert np.corrcoef(steer[:-1], steer[1:])[0, 1] > 0.6
    assert actions[:, 1].mean() > 0.3  # mostly on the gas, so the car drives along the track
    assert (actions[:, 2] == 0).mean() > 0.6  # and mostly off the brake
    assert actions.min() >= -1 and actions.max() <= 1


def test_files_do_not_depend_on_num_process(tree, tmp_path):
    base = dict(total_episodes=3, episode_length=25, start_episode=4)
    sample_random(SamplingConfig(num_process=1, **base), tree)
    one = {p.name: read_tfrecord(p) for p in tree.random_rollouts.iterdir()}
    other = type(tree)(tmp_path / "other")
    sample_random(SamplingConfig(num_process=2, **base), other)
    two = {p.name: read_tfrecord(p) for p in other.random_rollouts.iterdir()}
    assert sorted(one) == ["episode_000004.tfrecord", "episode_000005.tfrecord", "episode_000006.tfrecord"]
    assert sorted(one) == sorted(two)
    for name in one:
        np.testing.assert_array_equal(one[name].observations, two[name].observations)
        np.testing.assert_array_equal(one[name].actions, two[name].actions)
        assert (tree.random_rollouts / name).read_bytes() == (other.random_rollouts / name).read_bytes()


def test_stored_frames_are_small(tree):
    summary = sample_random(SamplingConfig(num_process=1, total_episodes=1, episode_length=150), tree)
    path = next(tree.random_rollouts.iterdir())
    assert summary["frames"] == 150
    assert path.stat().st_size / 150 <= 4900


def test_killed_run_leaves_no_partial_file_and_resumes(tree):
    command = [sys.executable, str(REPO / "worldmodels/data/sample_policy.py"), "--policy", "random",
               "--num_process", "1", "--total_episodes", "5", "--episode_length", "120"]
    env = {**os.environ, HOME_VARIABLE: str(tree.root)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = tree.random_rollouts
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(folder.glob("episode_*"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = sorted(folder.glob("episode_*"))
    assert 2 <= len(finished) < 5
    for path in finished:
        assert read_tfrecord(path).length == 120  # every file under a final name is complete
    before = {path.name: path.stat().st_mtime_ns for path in finished}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"({len(finished)} already complete)" in result.stdout
    assert sorted(p.name for p in folder.iterdir()) == [f"episode_{i:06d}.tfrecord" for i in range(5)]
    assert all(folder.joinpath(name).stat().st_mtime_ns == mtime for name, mtime in before.items())
