import numpy as np
import pytest

from helpers import save_tiny_agent
from worldmodels.control.agent import Agent
from worldmodels.control.rollout import EpisodeJob, RolloutEngine
from worldmodels.memory.mdn_rnn import MDNRNNConfig, build_mdn_rnn
from worldmodels.vision.vae import VAEConfig, build_vae
from worldmodels.errors import WorldModelsError


@pytest.fixture(scope="module")
def agent():
    import keras
    keras.utils.set_random_seed(0)
    return Agent(build_vae(), build_mdn_rnn(MDNRNNConfig(hidden_units=16)))


@pytest.mark.parametrize("groups", [1, 2])
def test_batched_rollout_equals_one_at_a_time(agent, groups):
    rng = np.random.default_rng(1)
    params = rng.normal(0, 0.5, (3, agent.controller.num_params)).astype(np.float32)
    jobs = [EpisodeJob(seed=40 + i, candidate=i % 3) for i in range(5)]
    with RolloutEngine(agent, num_process=2, episode_length=40, envs_per_process=2, groups=groups) as engine:
        batched = engine.run(params, jobs)
        single = [engine.run(params, [job])[0] for job in jobs]
    assert [r.length for r in batched] == [40] * 5
    assert [r.seed for r in batched] == [job.seed for job in jobs]
    np.testing.assert_allclose([r.total_reward for r in batched], [r.total_reward for r in single], rtol=1e-6)
    assert len({round(r.total_reward, 4) for r in batched}) > 1  # different tracks and candidates differ


def test_recorded_steps_line_up(agent):
    params = np.zeros((1, agent.controller.num_params), np.float32)
    recorded = []
    with RolloutEngine(agent, num_process=1, episode_length=12) as engine:
        results = engine.run(params, [EpisodeJob(7, 0)], record=True, on_result=recorded.append)
    steps = recorded[0].steps
    assert results[0].length == 12 and results[0].steps is None  # big arrays only go to the callback
    assert steps["observations"].shape == (12, 64, 64, 3) and steps["observations"].dtype == np.uint8
    assert steps["reconstructions"].shape == (12, 64, 64, 3) and steps["reconstructions"].dtype == np.uint8
    assert steps["mu"].shape == steps["predicted_latents"].shape == (12, 32)
    assert steps["rewards"].sum() == pytest.approx(results[0].total_reward, rel=1e-5)
    # zero parameters: tanh(0) -> steer 0, gas 0.5, brake 0
    np.testing.assert_allclose(steps["actions"], np.tile([0.0, 0.5, 0.0], (12, 1)), atol=1e-6)


def test_recording_without_model_outputs_keeps_the_same_episode(agent):
    """What sampling into TFRecords asks for: the episode's own arrays, no decode per step, the same episode."""
    params = np.random.default_rng(3).normal(0, 0.5, (1, agent.controller.num_params)).astype(np.float32)
    full, light = [], []
    with RolloutEngine(agent, num_process=1, episode_length=15) as engine:
        engine.run(params, [EpisodeJob(9, 0)], record=True, on_result=full.append)
        engine.run(params, [EpisodeJob(9, 0)], record=True, on_result=light.append, model_outputs=False)
    assert set(light[0].steps) == {"observations", "actions", "rewards", "dones"}
    assert "reconstructions" in full[0].steps
    for name in light[0].steps:
        np.testing.assert_array_equal(light[0].steps[name], full[0].steps[name])


def test_mismatched_models_are_refused():
    with pytest.raises(WorldModelsError, match="latent size 16"):
        Agent(build_vae(VAEConfig(latent_dim=16)), build_mdn_rnn(MDNRNNConfig(hidden_units=8)))


def test_agent_load_needs_both_models(tree):
    with pytest.raises(WorldModelsError, match="no trained VAE"):
        Agent.load(tree)
    save_tiny_agent(tree)
    (tree.memory_models / "mdn_rnn.weights.h5").unlink()
    with pytest.raises(WorldModelsError, match="no trained MDN-RNN"):
        Agent.load(tree)


def test_idle_episodes_end_early_only_when_asked(agent):
    """A driver that leaves the track ends after `max_idle_steps` steps without a new tile, with the same
    rewards up to that point as the full episode."""
    params = np.zeros((1, agent.controller.num_params), np.float32)  # steer 0, half gas: straight off the road
    recorded = []
    with RolloutEngine(agent, num_process=1, episode_length=150) as engine:
        full, cut = engine.run(params, [EpisodeJob(11, 0), EpisodeJob(11, 0, max_idle_steps=10)], record=True,
                               on_result=recorded.append)
    assert full.length == 150 and cut.length < full.length
    rewards = next(r for r in recorded if r.job == 0).steps["rewards"]
    assert np.all(rewards[cut.length - 10: cut.length] < 0)  # the last 10 steps reached no new tile
    assert np.isclose(cut.total_reward, rewards[: cut.length].sum(), atol=1e-3)


def kill_a_worker_after(engine, results_before_kill: int):
    """An on_result callback that SIGKILLs worker 0 once, after the given number of finished episodes."""
    import os
    import signal

    finished = []

    def on_result(result):
        finished.append(result.job)
        if len(finished) == results_before_kill:
            os.kill(engine.pool.processes[0].pid, signal.SIGKILL)
    return on_result


@pytest.mark.parametrize("groups", [1, 2])
def test_killed_worker_is_replaced_and_its_episodes_rerun(agent, groups, capfd):
    params = np.random.default_rng(2).normal(0, 0.5, (2, agent.controller.num_params)).astype(np.float32)
    jobs = [EpisodeJob(seed=60 + i, candidate=i % 2, max_idle_steps=15) for i in range(8)]
    with RolloutEngine(agent, num_process=2, episode_length=30, envs_per_process=2, groups=groups) as engine:
        undisturbed = engine.run(params, jobs)
        first_pid = engine.pool.processes[0].pid
        disturbed = engine.run(params, jobs, on_result=kill_a_worker_after(engine, 2))
        assert engine.pool.processes[0].pid != first_pid
        again = engine.run(params, jobs)  # the replacement worker serves later runs too
    assert "environment worker 0 failed" in capfd.readouterr().err
    assert [(r.total_reward, r.length) for r in disturbed] == [(r.total_reward, r.length) for r in undisturbed]
    assert [(r.total_reward, r.length) for r in again] == [(r.total_reward, r.length) for r in undisturbed]


def test_a_worker_that_keeps_failing_ends_the_run(agent, monkeypatch):
    from faulty_env import FAULTY_ENV_ID, SEED_VARIABLE

    monkeypatch.setenv(SEED_VARIABLE, "72")
    params = np.zeros((1, agent.controller.num_params), np.float32)
    jobs = [EpisodeJob(seed=70 + i, candidate=0) for i in range(4)]
    with RolloutEngine(agent, num_process=2, episode_length=12, env_id=FAULTY_ENV_ID) as engine:
        with pytest.raises(WorldModelsError, match="failed 3 times running the episode on track seed 72: "
                                                   "RuntimeError: injected fault"):
            engine.run(params, jobs)
        monkeypatch.setenv(SEED_VARIABLE, "none")  # new workers read it at their next restart only
        assert [r.length for r in engine.run(params, jobs[:2])] == [12, 12]
