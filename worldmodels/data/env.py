"""The one place that makes the CarRacing environment and turns its frames into observations."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

# Rendering goes through pygame surfaces; no X server or xvfb is needed, but pygame must not
# try to open a window when a render mode asks for one on a headless box.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym  # noqa: E402  (after the SDL settings above)

from worldmodels.data.fast_car_racing import FAST_ENV_ID, STOCK_ENV_ID, checked_against_installed_gymnasium  # noqa: E402

# Every stage runs the pixel-identical fast renderer unless `--env_id CarRacing-v3` asks for the stock
# one; under a gymnasium release it was not verified against, the stock environment is the default.
DEFAULT_ENV_ID = FAST_ENV_ID if checked_against_installed_gymnasium() else STOCK_ENV_ID
FRAME_SHAPE = (96, 96, 3)  # raw CarRacing frame, uint8
CROP_ROWS = 84  # rows 84..95 hold the indicator bar, which the paper drops
OBSERVATION_SIZE = 64  # side of the square observation V sees
OBSERVATION_SHAPE = (OBSERVATION_SIZE, OBSERVATION_SIZE, 3)
ACTION_DIM = 3  # steer in [-1, 1], gas in [0, 1], brake in [0, 1]


def make_env(episode_length: int = 1000, env_id: str = DEFAULT_ENV_ID, **kwargs) -> gym.Env:
    """A continuous-action CarRacing env truncated at `episode_length` steps, needing no display."""
    if episode_length < 1:
        raise ValueError(f"episode_length must be >= 1, got {episode_length}")
    return gym.make(env_id, max_episode_steps=episode_length, **kwargs)


def preprocess(frame: np.ndarray) -> np.ndarray:
    """96x96x3 frame -> 64x64x3 uint8 observation: crop the indicator bar, bilinear resize."""
    if frame.shape != FRAME_SHAPE or frame.dtype != np.uint8:
        raise ValueError(f"expected a {FRAME_SHAPE} uint8 frame, got {frame.shape} {frame.dtype}")
    cropped = Image.fromarray(frame[:CROP_ROWS])
    return np.asarray(cropped.resize((OBSERVATION_SIZE, OBSERVATION_SIZE), Image.BILINEAR), dtype=np.uint8)
