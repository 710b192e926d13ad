"""C reading the indicator bar's gauges (`train_controller.py --dashboard 1`): the gauges read from real frames,
the wider parameter layout, and a dashboard controller driving, training and warm-starting through the scripts."""

import numpy as np
import pytest

from conftest import error_line, run_script
from helpers import save_tiny_agent
from test_control_scripts import TINY_CMA
from worldmodels.control.agent import Agent
from worldmodels.control.controller import ControllerConfig
from worldmodels.control.rollout import EpisodeJob, RolloutEngine
from worldmodels.data.dashboard import DASHBOARD_DIM, GAUGES, SPREAD, TYPICAL, read_dashboard
from worldmodels.data.env import make_env
from worldmodels.errors import WorldModelsError

TINY = ControllerConfig(latent_dim=32, hidden_units=16)


def test_gauges_read_from_frames_match_the_cars_state():
    """Drive with changing steering, gas and brake; every gauge read from the pixels follows the physics."""
    env = make_env(300)
    frame, _ = env.reset(seed=11)
    car_racing = env.unwrapped
    read, true = [], []
    for step in range(300):
        action = np.array([np.sin(step / 15), 0.7 if step % 90 < 60 else 0.0, 0.0 if step % 90 < 75 else 0.6],
                          np.float32)
        frame, _, terminated, truncated, _ = env.step(action)
        car = car_racing.car
        read.append(read_dashboard(frame))
        true.append([0.02 * np.linalg.norm(car.hull.linearVelocity), *(0.01 * wheel.omega for wheel in car.wheels),
                     -10.0 * car.wheels[0].joint.angle, -0.8 * car.hull.angularVelocity])
        if terminated or truncated:
            break
    read, true = np.asarray(read), np.asarray(true)
    assert read.shape[1] == DASHBOARD_DIM == len(GAUGES)
    for index, gauge in enumerate(GAUGES):
        assert np.ptp(true[:, index]) > 0.3, gauge  # the drive moved every gauge
        assert np.corrcoef(read[:, index], true[:, index])[0, 1] > 0.95, gauge
        assert np.abs(read[:, index] - true[:, index]).mean() < 0.2, gauge


def test_layouts_and_widening():
    narrow, wide = TINY.with_dashboard(False), TINY.with_dashboard(True)
    assert wide.num_params == narrow.num_params + DASHBOARD_DIM * 3
    assert TINY.for_params(np.zeros(narrow.num_params)) == narrow
    assert TINY.for_params(np.zeros((4, wide.num_params))) == wide
    with pytest.raises(WorldModelsError, match=f"{narrow.num_params}.*{wide.num_params}"):
        TINY.for_params(np.zeros(narrow.num_params + 1))
    from worldmodels.control.controller import controller_actions

    rng = np.random.default_rng(0)
    params = (0.05 * rng.normal(size=(1, narrow.num_params))).astype(np.float32)  # tanh not saturated
    z, h = rng.normal(size=(1, 32)).astype(np.float32), rng.normal(size=(1, 16)).astype(np.float32)
    widened = wide.widen(params[0])[None]
    for dashboard in (np.zeros((1, DASHBOARD_DIM)), rng.normal(size=(1, DASHBOARD_DIM))):
        np.testing.assert_allclose(controller_actions(widened, z, h, wide, dashboard.astype(np.float32)),
                                   controller_actions(params, z, h, narrow), atol=1e-6)
    reading = params.copy()[0]
    widened = wide.widen(reading)
    widened[narrow.input_dim * 3 + 1] = 1.0  # gas reads the speed gauge
    assert not np.allclose(controller_actions(widened[None], z, h, wide, np.full((1, DASHBOARD_DIM), 2.0, np.float32)),
                           controller_actions(params, z, h, narrow))


def test_the_gauges_reach_the_controller_in_rollouts(tree):
    """Gas that falls with the speed gauge: the car speeds up, then holds back; the same controller with
    zero weight on the gauges drives exactly as its [z, h] twin."""
    save_tiny_agent(tree)
    agent = Agent.load(tree)
    narrow = agent.controller
    wide = narrow.with_dashboard(True)
    base = np.zeros(narrow.num_params, np.float32)
    base[-2] = 1.0  # gas bias: tanh(1) -> gas 0.88
    governed = wide.widen(base)
    # gas pre-activation 1 - 4 * speed gauge: C reads (gauge - TYPICAL) / SPREAD, so weight and bias undo that
    governed[narrow.input_dim * 3 + 1] = -4.0 * SPREAD[0]
    governed[-2] -= 4.0 * TYPICAL[0]
    jobs = [EpisodeJob(5, 0)]
    with RolloutEngine(agent, 2, 120, envs_per_process=1) as engine:
        runs = {}
        for name, params in (("narrow", base), ("zero-weight", wide.widen(base)), ("governed", governed)):
            recorded = []
            engine.run(params[None], jobs, record=True, on_result=recorded.append, model_outputs=False)
            runs[name] = recorded[0].steps
    np.testing.assert_array_equal(runs["zero-weight"]["actions"], runs["narrow"]["actions"])
    gas = runs["governed"]["actions"][:, 1]
    assert gas[0] > 0.85 and gas[-20:].mean() < gas[0] - 0.2
    with pytest.raises(WorldModelsError, match="dashboard"):
        agent.act(np.zeros((1, 64, 64, 3), np.uint8), np.zeros((1, 16), np.float32), np.zeros((1, 16), np.float32),
                  governed[None])


def test_training_with_the_dashboard_from_a_zh_controller(tree, tmp_path):
    save_tiny_agent(tree)
    agent = Agent.load(tree)
    params = np.random.default_rng(1).normal(size=agent.controller.num_params).astype(np.float32)
    np.save(tmp_path / "zh.npy", params)
    warm = ("--init_from", str(tmp_path / "zh.npy"), "--sigma", "1e-6")
    run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, "--eval_every", "1", *warm,
               "--dashboard", "1", root=tree.root)
    population = np.load(tree.generation(0) / "population-params.npy")
    expected = agent.controller.with_dashboard(True).widen(params)
    np.testing.assert_allclose(population, np.broadcast_to(expected, population.shape), atol=1e-4)
    best = np.load(tree.best_controller / "best-params.npy")
    assert best.shape == expected.shape  # the held-out evaluation drove the wide controller
    evaluated = run_script("control/evaluate_controller.py", "--generation", "best", "--episodes", "1",
                           "--episode_length", "20", "--num_process", "1", root=tree.root)
    assert "over 1 episodes" in evaluated.stdout
    changed = run_script("control/train_controller.py", "--generations", "2", *TINY_CMA, "--eval_every", "1", *warm,
                         root=tree.root, check=False)
    assert changed.returncode == 2 and "--dashboard 1 -> 0" in error_line(changed)
    np.save(tmp_path / "wide.npy", expected)
    narrow_run = run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, "--init_from",
                            str(tmp_path / "wide.npy"), root=tree.root, check=False)
    assert narrow_run.returncode == 2 and "add --dashboard 1" in error_line(narrow_run)
    dream = run_script("control/train_controller.py", "--generations", "1", *TINY_CMA, "--dashboard", "1",
                       "--dream", "1", root=tree.root, check=False)
    assert dream.returncode == 2 and "--dashboard 1" in error_line(dream)


def test_dashboard_sigma_widens_only_the_gauges_first_steps(tree):
    """A warm start's tuned [z, h] weights move by --sigma, its new gauge weights by --dashboard_sigma."""
    from worldmodels.control.training import ControllerTrainer, ControllerTrainingConfig

    save_tiny_agent(tree)
    agent = Agent.load(tree)
    wide = agent.controller.with_dashboard(True)
    start = wide.widen(np.random.default_rng(2).normal(size=agent.controller.num_params))
    config = ControllerTrainingConfig(popsize=64, sigma=0.01, dashboard=1, dashboard_sigma=0.5)
    np.random.seed(0)
    population = np.asarray(ControllerTrainer(config, tree, agent, start).es.ask()) - start
    gauges = np.zeros(wide.num_params, bool)
    gauges[wide.dashboard_weights] = True
    assert gauges.sum() == DASHBOARD_DIM * 3
    assert 0.4 < population[:, gauges].std() < 0.6 and 0.008 < population[:, ~gauges].std() < 0.012
    with pytest.raises(WorldModelsError, match="--dashboard_sigma needs --dashboard 1"):
        ControllerTrainingConfig(dashboard_sigma=0.5).validate()
    with pytest.raises(WorldModelsError, match="--dashboard_sigma must be >= 0, got -0.1"):
        ControllerTrainingConfig(dashboard=1, dashboard_sigma=-0.1).validate()
