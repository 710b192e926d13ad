"""World Models (Ha & Schmidhuber, 2018) on CarRacing: V (VAE), M (MDN-RNN) and C (linear controller)."""

__version__ = "0.1.0"

import os as _os

# TensorFlow's C++ INFO lines (oneDNN notices, absl preamble) drown the progress output of every stage.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _register_environments() -> None:
    """Make `gymnasium.make("FastCarRacing-v3", ...)` available as soon as worldmodels is imported."""
    import gymnasium

    from worldmodels.data.fast_car_racing import FAST_ENV_ID, STOCK_ENV_ID

    if FAST_ENV_ID not in gymnasium.registry:
        stock = gymnasium.spec(STOCK_ENV_ID)
        gymnasium.register(FAST_ENV_ID, entry_point="worldmodels.data.fast_car_racing:FastCarRacing",
                           max_episode_steps=stock.max_episode_steps, reward_threshold=stock.reward_threshold)


_register_environments()
