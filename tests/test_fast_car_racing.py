"""FastCarRacing-v3 must be CarRacing-v3 byte for byte: observations, rewards, flags and info."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pygame
import pytest
from gymnasium.utils.env_checker import check_env

import worldmodels  # noqa: F401  (registers FastCarRacing-v3)
from worldmodels.data.env import DEFAULT_ENV_ID, make_env
from worldmodels.data.fast_car_racing import CHECKED_GYMNASIUM_VERSIONS, FAST_ENV_ID, rotate_like_pygame


def scripted_actions(kind: str, steps: int) -> list[np.ndarray]:
    """Straight, sharp turns, braking, and wandering off the track into the grass."""
    actions = []
    for t in range(steps):
        if kind == "straight":
            action = [0.0, 0.8, 0.0]
        elif kind == "sharp_turns":
            action = [1.0 if (t // 40) % 2 else -1.0, 0.6, 0.0]
        elif kind == "braking":
            action = [0.2 * math.sin(t / 15), 1.0 if t % 60 < 40 else 0.0, 0.0 if t % 60 < 40 else 0.9]
        else:  # off_track: full throttle with a steady pull to one side
            action = [0.35, 1.0, 0.0]
        actions.append(np.array(action, np.float32))
    return actions


def assert_same_episode(kwargs: dict, seed: int | None, actions, reset_options=None, check_render=False):
    stock, fast = gym.make("CarRacing-v3", **kwargs), gym.make(FAST_ENV_ID, **kwargs)
    first_stock, info_stock = stock.reset(seed=seed, options=reset_options)
    first_fast, info_fast = fast.reset(seed=seed, options=reset_options)
    np.testing.assert_array_equal(first_stock, first_fast)
    assert info_stock == info_fast
    recoloured = False
    colours = [np.array(colour, copy=True) for _, colour in stock.unwrapped.road_poly]
    for step, action in enumerate(actions):
        a, b = stock.step(action), fast.step(action)
        assert np.array_equal(a[0], b[0]), f"frame {step} differs"
        assert a[1:] == b[1:], f"reward/flags/info differ at step {step}: {a[1:]} vs {b[1:]}"
        if check_render:
            np.testing.assert_array_equal(stock.render(), fast.render())
        if a[2] or a[3]:
            break
    recoloured = any(not np.array_equal(before, colour) for before, (_, colour) in zip(colours, stock.unwrapped.road_poly))
    return stock, fast, recoloured


def test_checked_against_this_gymnasium():
    assert gym.__version__ in CHECKED_GYMNASIUM_VERSIONS, (
        f"gymnasium {gym.__version__} is not one FastCarRacing was checked against {CHECKED_GYMNASIUM_VERSIONS}: "
        "run tests/test_fast_car_racing.py and benchmarks/bench_env.py, then add it")


@pytest.mark.parametrize("kind,seed", [("straight", 11), ("sharp_turns", 12), ("braking", 13), ("off_track", 14)])
def test_identical_frames_for_varied_driving(kind, seed):
    _, _, recoloured = assert_same_episode({}, seed, scripted_actions(kind, 260))
    if kind in ("straight", "braking"):
        assert recoloured  # the car drove over tiles and the contact listener recoloured them


def test_identical_full_episode_through_make_env():
    stock, fast = make_env(1000, "CarRacing-v3"), make_env(1000)
    assert DEFAULT_ENV_ID == FAST_ENV_ID
    actions = scripted_actions("sharp_turns", 1000)
    a, b = stock.reset(seed=2024), fast.reset(seed=2024)
    np.testing.assert_array_equal(a[0], b[0])
    for step, action in enumerate(actions):
        x, y = stock.step(action), fast.step(action)
        assert np.array_equal(x[0], y[0]) and x[1:] == y[1:], step
    assert x[3] and y[3]  # truncated at 1,000 steps, both


@pytest.mark.parametrize("kwargs", [{"domain_randomize": True}, {"lap_complete_percent": 0.01},
                                    {"continuous": False}, {"render_mode": "rgb_array"},
                                    {"render_mode": "state_pixels"}])
def test_every_keyword_argument(kwargs):
    if kwargs.get("continuous") is False:
        actions = [t % 5 for t in range(150)]
    else:
        actions = scripted_actions("braking", 150)
    stock, fast, _ = assert_same_episode(kwargs, 21, actions, check_render="render_mode" in kwargs)
    if kwargs.get("domain_randomize"):
        for options in ({"randomize": False}, {"randomize": True}, None):
            a, b = stock.reset(options=options), fast.reset(options=options)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(stock.step(actions[0])[0], fast.step(actions[0])[0])


def test_reset_with_and_without_new_seeds():
    stock, fast = gym.make("CarRacing-v3"), gym.make(FAST_ENV_ID)
    for seed in (5, None, 6, None, 5):
        a, b = stock.reset(seed=seed), fast.reset(seed=seed)
        np.testing.assert_array_equal(a[0], b[0])
        for action in scripted_actions("sharp_turns", 60):
            x, y = stock.step(action), fast.step(action)
            assert np.array_equal(x[0], y[0]) and x[1:] == y[1:]


def test_human_render_mode_runs_headless():
    fast = gym.make(FAST_ENV_ID, render_mode="human")
    stock = gym.make("CarRacing-v3", render_mode="human")
    a, b = stock.reset(seed=3), fast.reset(seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    for action in scripted_actions("straight", 5):
        np.testing.assert_array_equal(stock.step(action)[0], fast.step(action)[0])
    fast.close()
    stock.close()


def test_check_env():
    check_env(gym.make(FAST_ENV_ID).unwrapped, skip_render_check=False)


def test_rotation_is_bit_identical_to_pygame():
    rng = np.random.default_rng(0)
    points = rng.uniform(-500, 500, (200, 2))
    quarter = math.pi / 2
    angles = [0.0, quarter, -math.pi, 2 * math.pi, 3e-7, -3e-7, quarter + 5e-7, 3 * quarter - 5e-7, *rng.uniform(-30, 30, 50)]
    for angle in angles:
        expected = np.array([tuple(pygame.math.Vector2(tuple(p)).rotate_rad(angle)) for p in points])
        x, y = rotate_like_pygame(points[:, 0], points[:, 1], float(angle))
        np.testing.assert_array_equal(np.stack([x, y], axis=1), expected)
