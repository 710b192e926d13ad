"""Training C in M's dream: M's reward and done outputs, the dream engine, and CMA-ES with --dream 1."""

import csv
import json

import numpy as np
import pytest

from conftest import error_line, run_script
from helpers import save_tiny_agent
from worldmodels.control.controller import ControllerConfig
from worldmodels.control.dream import DreamRollouts
from worldmodels.control.rollout import EpisodeJob
from worldmodels.data.latent_stats import LatentEpisode, write_latents
from worldmodels.errors import WorldModelsError
from worldmodels.memory.mdn_rnn import (CONFIG_NAME, DREAM_STARTS_NAME, MDNRNNConfig, build_mdn_rnn,
                                        load_dream_starts, load_mdn_rnn, reward_done_outputs, save_mdn_rnn)
from worldmodels.memory.training import LatentDataset, make_batch

TINY_CMA = ("--popsize", "4", "--rollouts", "2", "--episode_length", "25", "--num_process", "1",
            "--eval_every", "2", "--eval_episodes", "2")


def write_rewarded_latents(tree, lengths, seed=0):
    """Latent stats whose reward is twice the steering action and whose last step ends the episode."""
    rng = np.random.default_rng(seed)
    for index, length in enumerate(lengths):
        mu = rng.normal(size=(length, 32)).astype(np.float32)
        actions = rng.uniform(-1, 1, (length, 3)).astype(np.float32)
        dones = np.zeros(length, bool)
        dones[-1] = True
        write_latents(tree.latent_stats / "random" / f"episode_{index:06d}.npz",
                      LatentEpisode(mu, np.full_like(mu, -6.0), actions, 2 * actions[:, 0], dones, "none"))


def test_batches_cover_the_last_action_for_reward_and_done():
    lengths = np.array([4, 3])
    mu = np.zeros((2, 4, 2), np.float32)
    rewards = np.array([[1, 2, 3, 4], [5, 6, 7, 0]], np.float32)
    dones = np.array([[0, 0, 0, 1], [0, 0, 1, 0]], np.float32)
    data = LatentDataset(mu, mu - 30, np.ones((2, 4, 3), np.float32), lengths, rewards, dones)
    inputs, targets, mask, step_rewards, step_dones, step_mask = make_batch(
        data, np.array([0, 1]), 0, np.random.default_rng(0), reward_done=True)
    assert inputs.shape == (2, 4, 5) and targets.shape == (2, 4, 2)
    np.testing.assert_array_equal(mask, [[1, 1, 1, 0], [1, 1, 0, 0]])  # next z exists
    np.testing.assert_array_equal(step_mask, [[1, 1, 1, 1], [1, 1, 1, 0]])  # the last action has a reward
    np.testing.assert_array_equal(step_rewards, [[1, 2, 3, 4], [5, 6, 7, 0]])
    np.testing.assert_array_equal(step_dones, [[0, 0, 0, 1], [0, 0, 1, 0]])
    assert len(make_batch(data, np.array([0, 1]), 0, np.random.default_rng(0))) == 3  # the paper's M: unchanged


def test_m_learns_rewards_and_dones_and_keeps_dream_starts(tree):
    write_rewarded_latents(tree, [40, 30, 35, 45])
    args = ("--batch_size", "4", "--hidden_units", "16", "--reward_done", "1", "--learning_rate", "0.01")
    run_script("memory/train_memory.py", "--epochs", "60", *args, root=tree.root)
    model = load_mdn_rnn(tree.memory_models)
    assert model.config.reward_done and model.config.output_dim == 32 * 5 * 3 + 2
    data = np.load(sorted((tree.latent_stats / "random").iterdir())[0])
    inputs = np.concatenate([data["mu"], data["actions"]], axis=-1)[None]
    reward, done_logit = (output.numpy()[0] for output in reward_done_outputs(model(inputs)[0], model.config))
    error = np.mean((reward - data["rewards"]) ** 2)
    assert error < 0.25 * np.var(data["rewards"])  # far better than predicting the mean reward
    assert done_logit[-1] > done_logit[:-1].max()  # the ending step is the one flagged
    mu, logvar = load_dream_starts(tree.memory_models, 32)
    assert mu.shape == (4, 32) and np.allclose(logvar, -6.0)
    assert {tuple(np.round(row, 5)) for row in mu} == {
        tuple(np.round(np.load(path)["mu"][0], 5)) for path in (tree.latent_stats / "random").iterdir()}


def test_m_saved_before_reward_done_existed_loads_and_resumes(tree):
    write_rewarded_latents(tree, [20, 25])
    args = ("--batch_size", "2", "--hidden_units", "8")
    run_script("memory/train_memory.py", "--epochs", "1", *args, root=tree.root)
    path = tree.memory_models / CONFIG_NAME
    config = json.loads(path.read_text())
    assert config.pop("reward_done") is False
    path.write_text(json.dumps(config))  # as older versions wrote it
    assert not load_mdn_rnn(tree.memory_models).config.reward_done
    resumed = run_script("memory/train_memory.py", "--load_model", "1", "--epochs", "2", *args, root=tree.root)
    assert "2 epochs" in resumed.stdout
    refused = run_script("memory/train_memory.py", "--load_model", "1", "--epochs", "3", "--reward_done", "1", *args,
                         root=tree.root, check=False)
    assert refused.returncode != 0 and "does not match" in error_line(refused)


@pytest.fixture
def dream_model():
    config = MDNRNNConfig(hidden_units=16, reward_done=True)
    model = build_mdn_rnn(config)
    starts = np.random.default_rng(1).normal(size=(5, 32)).astype(np.float32)
    return model, (starts, np.full_like(starts, -2.0))


def dream_jobs(seeds, candidates):
    return [EpisodeJob(seed, candidate) for candidate in range(candidates) for seed in seeds]


def test_dreams_repeat_and_follow_the_controller(dream_model):
    model, starts = dream_model
    controller = ControllerConfig(32, 16)
    engine = DreamRollouts(model, controller, starts, episode_length=30)
    params = np.random.default_rng(2).normal(scale=0.5, size=(3, controller.num_params)).astype(np.float32)
    jobs = dream_jobs([11, 12], 3)
    first, again = engine.run(params, jobs), engine.run(params, jobs)
    assert [r.total_reward for r in first] == [r.total_reward for r in again]
    assert all(1 <= r.length <= 30 for r in first) and [r.candidate for r in first] == [0, 0, 1, 1, 2, 2]
    assert len({round(r.total_reward, 6) for r in first}) > 1  # candidates and starts make different dreams
    np.testing.assert_array_equal(engine.first_latents(jobs[:2]), engine.first_latents(jobs[2:4]))  # shared starts


def test_dream_rewards_and_endings_come_from_m(dream_model):
    model, starts = dream_model
    kernel, bias = model.head.kernel, model.head.bias
    kernel.assign(np.concatenate([kernel.numpy()[:, :-2], np.zeros((16, 2), np.float32)], axis=1))
    bias.assign(np.concatenate([bias.numpy()[:-2], [1.5, -5.0]]).astype(np.float32))  # reward 1.5, never done
    controller = ControllerConfig(32, 16)
    params = np.zeros((1, controller.num_params), np.float32)
    results = DreamRollouts(model, controller, starts, episode_length=20).run(params, dream_jobs([1, 2], 1))
    assert [(r.length, r.total_reward) for r in results] == [(20, pytest.approx(30.0))] * 2
    bias.assign(np.concatenate([bias.numpy()[:-2], [1.5, 5.0]]).astype(np.float32))  # done after the first step
    results = DreamRollouts(model, controller, starts, episode_length=20).run(params, dream_jobs([1, 2], 1))
    assert [(r.length, r.total_reward) for r in results] == [(1, pytest.approx(1.5))] * 2


def test_cma_es_in_the_dream_counts_no_env_steps(tree):
    save_tiny_agent(tree, reward_done=True)
    result = run_script("control/train_controller.py", "--generations", "2", "--dream", "1", "--temperature", "1.2",
                        *TINY_CMA, root=tree.root)
    assert "generation 1: mean" in result.stdout and "held-out" in result.stdout
    rows = list(csv.DictReader(tree.rewards_log.open()))
    assert int(rows[0]["env_steps"]) == 0  # dreamed: no environment stepped
    assert int(rows[1]["env_steps"]) == 2 * 25  # only the held-out evaluation, in the real environment
    changed = run_script("control/train_controller.py", "--generations", "3", *TINY_CMA, root=tree.root, check=False)
    assert "--dream 1 -> 0" in error_line(changed)


def test_dreaming_needs_m_with_reward_and_done(tree):
    save_tiny_agent(tree)
    result = run_script("control/train_controller.py", "--generations", "1", "--dream", "1", *TINY_CMA,
                        root=tree.root, check=False)
    assert result.returncode != 0 and "--reward_done 1" in error_line(result) and CONFIG_NAME in error_line(result)
    model = build_mdn_rnn(MDNRNNConfig(hidden_units=16, reward_done=True))
    save_mdn_rnn(model, tree.memory_models)  # the outputs, but no dream starts beside them
    result = run_script("control/train_controller.py", "--generations", "1", "--dream", "1", *TINY_CMA,
                        root=tree.root, check=False)
    assert DREAM_STARTS_NAME in error_line(result)
    bad = run_script("control/train_controller.py", "--dream", "1", "--temperature", "0", root=tree.root, check=False)
    assert "--temperature must be > 0" in error_line(bad)
    with pytest.raises(WorldModelsError, match="no frames"):
        DreamRollouts(model, ControllerConfig(32, 16), (np.zeros((1, 32)), np.zeros((1, 32))), 5).run(
            np.zeros((1, ControllerConfig(32, 16).num_params)), [EpisodeJob(1, 0)], record=True)
