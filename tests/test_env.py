import numpy as np
import pytest

from worldmodels.data.env import OBSERVATION_SHAPE, make_env, preprocess


def test_preprocess_shape_dtype_and_uniform_colour():
    frame = np.full((96, 96, 3), [10, 200, 30], np.uint8)
    observation = preprocess(frame)
    assert observation.shape == OBSERVATION_SHAPE and observation.dtype == np.uint8
    assert np.all(observation == [10, 200, 30])


def test_preprocess_drops_the_indicator_bar():
    frame = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    changed = frame.copy()
    changed[84:] = 255 - changed[84:]
    np.testing.assert_array_equal(preprocess(frame), preprocess(changed))
    changed[83] = 255 - changed[83]
    assert not np.array_equal(preprocess(frame), preprocess(changed))


def test_preprocess_is_a_bilinear_resize_of_the_crop():
    # A left-to-right ramp stays monotone and keeps its range roughly: no nearest-neighbour blocks.
    ramp = np.tile(np.linspace(0, 255, 96).astype(np.uint8)[None, :, None], (96, 1, 3))
    row = preprocess(ramp)[0, :, 0].astype(int)
    assert np.all(np.diff(row) >= 0) and row[0] < 5 and row[-1] > 250
    assert len(np.unique(row)) > 50


def test_preprocess_rejects_wrong_shape():
    with pytest.raises(ValueError, match="96, 96, 3"):
        preprocess(np.zeros((64, 64, 3), np.uint8))


def test_make_env_is_headless_and_truncates():
    env = make_env(episode_length=5)
    frame, _ = env.reset(seed=3)
    assert frame.shape == (96, 96, 3)
    for step in range(5):
        _, _, terminated, truncated, _ = env.step(np.array([0.0, 0.5, 0.0], np.float32))
    assert truncated and not terminated
    env.close()
