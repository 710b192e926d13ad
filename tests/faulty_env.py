"""A CarRacing whose episodes on one track seed ($FAULTY_ENV_SEED) raise after a few steps: a worker fault
on demand, made in the worker process itself (`gym.make("faulty_env:FaultyCarRacing-v0")` imports this)."""

import os

import gymnasium as gym

from worldmodels.data.fast_car_racing import FAST_ENV_ID

SEED_VARIABLE = "FAULTY_ENV_SEED"
FAULTY_ENV_ID = "faulty_env:FaultyCarRacing-v0"
FAIL_AT_STEP = 5


class RaisingOnOneTrack(gym.Wrapper):
    def reset(self, *, seed=None, options=None):
        self.failing, self.steps = str(seed) == os.environ.get(SEED_VARIABLE), 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self.steps += 1
        if self.failing and self.steps == FAIL_AT_STEP:
            raise RuntimeError("injected fault")
        return self.env.step(action)


gym.register("FaultyCarRacing-v0", entry_point=lambda **kwargs: RaisingOnOneTrack(gym.make(FAST_ENV_ID, **kwargs)))
