import numpy as np
import pytest
import tensorflow as tf

from worldmodels.control.controller import ControllerConfig, controller_actions, map_actions
from worldmodels.errors import WorldModelsError


def test_full_size_controller_has_867_parameters():
    assert ControllerConfig().num_params == 867


def test_action_mapping():
    mapped = map_actions(tf.constant([[-1.0, -1.0, -1.0], [0.5, 0.0, 0.5], [1.0, 1.0, 1.0]])).numpy()
    np.testing.assert_allclose(mapped, [[-1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [1.0, 1.0, 1.0]])


def test_each_episode_uses_its_own_parameters():
    config = ControllerConfig(latent_dim=4, hidden_units=6)
    rng = np.random.default_rng(0)
    params = rng.normal(size=(3, config.num_params)).astype(np.float32)
    z, h = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(3, 6)).astype(np.float32)
    batched = controller_actions(params, z, h, config).numpy()
    for row in range(3):
        weights = params[row, :30].reshape(10, 3)
        raw = np.tanh(np.concatenate([z[row], h[row]]) @ weights + params[row, 30:])
        expected = [raw[0], (raw[1] + 1) / 2, np.clip(raw[2], 0, 1)]
        np.testing.assert_allclose(batched[row], expected, atol=1e-5)


def test_wrong_parameter_count_is_refused():
    with pytest.raises(WorldModelsError, match="expected 867"):
        ControllerConfig().check(np.zeros(866))
