"""Carrying a controller over to a new V and M by imitation (`distill_controller.py`), on tiny models."""

import json
import shutil

import numpy as np
import pytest

from conftest import error_line, run_script
from helpers import save_tiny_agent, synthetic_episode
from worldmodels.control.controller import ControllerConfig
from worldmodels.control.distillation import (DistillationConfig, actions_of, distill, fit_ridge, pre_activations,
                                              replay_features)
from worldmodels.data.episode import episode_filename, write_tfrecord
from worldmodels.memory.mdn_rnn import MDNRNNConfig, build_mdn_rnn, load_mdn_rnn, save_mdn_rnn
from worldmodels.paths import ArtifactTree
from worldmodels.vision.vae import load_vae

TINY = ControllerConfig(latent_dim=32, hidden_units=16)


@pytest.fixture
def teacher(tmp_path) -> ArtifactTree:
    """A tiny agent with a controller whose outputs stay inside tanh's linear range (nothing clipped)."""
    tree = ArtifactTree(tmp_path / "teacher")
    save_tiny_agent(tree)
    params = np.random.default_rng(1).normal(0, 0.05, TINY.num_params).astype(np.float32)
    tree.best_controller.mkdir(parents=True)
    np.save(tree.best_controller / "best-params.npy", params)
    return tree


def add_episodes(tree: ArtifactTree, count: int = 6, length: int = 20) -> None:
    for index in range(count):
        write_tfrecord(tree.controller_rollouts / episode_filename(index), synthetic_episode(length, seed=index))


def test_replayed_features_are_what_the_agent_computes_step_by_step(teacher):
    """The batched replay (padded episodes of different lengths) gives each step's [z_t, h_t] as the agent's
    own loop would: z from V, h from M fed the recorded (z, a) of the steps before."""
    import tensorflow as tf

    vae, mdn_rnn = load_vae(teacher.vae_models), load_mdn_rnn(teacher.memory_models)
    episodes = [synthetic_episode(7, seed=0), synthetic_episode(4, seed=1)]
    features = replay_features(vae, mdn_rnn, [e.observations for e in episodes], [e.actions for e in episodes])
    assert [f.shape for f in features] == [(7, 48), (4, 48)]
    episode = episodes[1]
    h, c = mdn_rnn.zero_state(1)
    for t in range(4):
        mu, _ = vae.encode(tf.cast(episode.observations[t:t + 1], tf.float32) / 255.0)
        np.testing.assert_allclose(features[1][t], np.concatenate([mu[0], h[0]]), atol=1e-5)
        _, h, c = mdn_rnn.step(mu, episode.actions[t:t + 1], h, c)


def test_ridge_recovers_a_linear_controller_exactly():
    rng = np.random.default_rng(0)
    config = ControllerConfig(latent_dim=3, hidden_units=2)
    features = rng.normal(size=(500, 5))
    truth = rng.normal(size=config.num_params)
    fitted = fit_ridge(features, pre_activations(truth, features, config), 1e-6)
    np.testing.assert_allclose(fitted, truth, atol=1e-4)
    np.testing.assert_allclose(actions_of(pre_activations(fitted, features, config)),
                               actions_of(pre_activations(truth, features, config)), atol=1e-4)


def test_a_student_with_the_teachers_models_learns_the_teachers_actions(teacher, tree):
    shutil.copytree(teacher.vae_models, tree.vae_models)
    shutil.copytree(teacher.memory_models, tree.memory_models)
    add_episodes(tree)
    report = distill(DistillationConfig(teacher=str(teacher.root)), tree)
    assert report["episodes"] == 6 and report["steps"] == 120 and report["held_out_episodes"] == 1
    params = np.load(tree.root / "distilled-params.npy")
    assert params.shape == (TINY.num_params,)
    assert json.loads((tree.root / "distilled-params.json").read_text())["ridge"] == report["ridge"]
    # the same inputs: the student acts as the teacher on episodes it was not fitted on
    vae, mdn_rnn = load_vae(tree.vae_models), load_mdn_rnn(tree.memory_models)
    unseen = [synthetic_episode(15, seed=99)]
    features = replay_features(vae, mdn_rnn, [e.observations for e in unseen], [e.actions for e in unseen])[0]
    teacher_params = np.load(teacher.best_controller / "best-params.npy")
    teacher_actions = actions_of(pre_activations(teacher_params, features, TINY))
    student_actions = actions_of(pre_activations(params, features, TINY))
    zero_actions = actions_of(pre_activations(np.zeros_like(params), features, TINY))
    assert np.abs(student_actions - teacher_actions).max() < 0.02
    assert np.abs(zero_actions - teacher_actions).max() > 0.05  # the check above could fail


def test_a_student_with_another_m_gets_its_own_shape_and_starts_cma_es(teacher, tree):
    """A different M (other weights, other size): the student's parameters fit the student, and
    `train_controller.py --init_from` starts from them."""
    import keras

    shutil.copytree(teacher.vae_models, tree.vae_models)
    keras.utils.set_random_seed(5)
    save_mdn_rnn(build_mdn_rnn(MDNRNNConfig(hidden_units=8)), tree.memory_models)
    add_episodes(tree, count=5, length=15)
    run_script("control/distill_controller.py", "--teacher", str(teacher.root), root=tree.root)
    params = np.load(tree.root / "distilled-params.npy")
    assert params.shape == (ControllerConfig(32, 8).num_params,)
    report = json.loads((tree.root / "distilled-params.json").read_text())
    assert set(report["held_out_action_error"]) == {"steer", "gas", "brake"}
    run_script("control/train_controller.py", "--generations", "1", "--popsize", "4", "--rollouts", "1",
               "--episode_length", "10", "--num_process", "1", "--eval_every", "5", "--eval_episodes", "1", "--sigma", "1e-6",
               "--init_from", str(tree.root / "distilled-params.npy"), root=tree.root)
    mean = np.load(tree.generation(0) / "mean-params.npy")
    np.testing.assert_allclose(mean, params, atol=1e-4)


def test_bad_input_gets_one_line_and_writes_nothing(teacher, tree):
    missing = run_script("control/distill_controller.py", "--teacher", str(tree.root.parent / "nowhere"),
                         root=tree.root, check=False)
    assert "nowhere" in error_line(missing) and missing.returncode == 2
    required = run_script("control/distill_controller.py", root=tree.root, check=False)
    assert "--teacher" in error_line(required)
    shutil.copytree(teacher.vae_models, tree.vae_models)
    shutil.copytree(teacher.memory_models, tree.memory_models)
    empty = run_script("control/distill_controller.py", "--teacher", str(teacher.root), root=tree.root, check=False)
    assert "controller-rollouts" in error_line(empty)
    assert not (tree.root / "distilled-params.npy").exists()
