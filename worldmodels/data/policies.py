"""Exploration policies for the first generation's data.

Per-step uniform noise (`action_space.sample()`) jitters in place and rarely leaves the start,
so V never sees much of the track.  We use a smoothed random walk in action space instead
(an Ornstein-Uhlenbeck process): steering drifts over several frames, gas is mostly on and
brake mostly off, so the car drives along, through corners and off the track.
"""

from __future__ import annotations

import numpy as np

# Long-run mean, pull back towards it per step, and per-step noise of steer, gas and brake.
# Brake's mean is negative so that, after clipping to [0, 1], it is off most of the time.
WALK_MEAN = np.array([0.0, 0.45, -0.6])
WALK_PULL = np.array([0.15, 0.10, 0.10])
WALK_NOISE = np.array([0.35, 0.15, 0.25])
ACTION_LOW = np.array([-1.0, 0.0, 0.0])
ACTION_HIGH = np.array([1.0, 1.0, 1.0])


class BrownianPolicy:
    """A mean-reverting random walk in action space, seeded per episode."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.state = WALK_MEAN + rng.normal(0.0, WALK_NOISE)

    def __call__(self, observation: np.ndarray | None = None) -> np.ndarray:
        self.state = self.state + WALK_PULL * (WALK_MEAN - self.state) + self.rng.normal(0.0, WALK_NOISE)
        return np.clip(self.state, ACTION_LOW, ACTION_HIGH).astype(np.float32)
