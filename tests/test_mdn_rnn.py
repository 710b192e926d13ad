import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from worldmodels.errors import WorldModelsError
from worldmodels.memory.mdn_rnn import (MDNRNNConfig, build_mdn_rnn, expected_next_latent, load_mdn_rnn, mdn_loss,
                                        sample_next_latent, save_mdn_rnn, split_mixture)

SMALL = MDNRNNConfig(latent_dim=2, action_dim=3, hidden_units=8, mixtures=2)


def flat_params(logit_pi, mu, log_sigma):
    """(latent, mixtures) arrays -> the head's flat layout for one time step."""
    return np.concatenate([logit_pi, mu, log_sigma], axis=-1).reshape(1, 1, -1).astype(np.float32)


def test_loss_equals_a_hand_computed_value():
    logit_pi = np.array([[0.0, math.log(3.0)], [1.0, 1.0]])  # pi = (1/4, 3/4) and (1/2, 1/2)
    mu = np.array([[0.0, 1.0], [-1.0, 2.0]])
    log_sigma = np.array([[0.0, math.log(2.0)], [0.0, 0.0]])
    target = np.array([0.5, 0.0], np.float32)

    def normal(x, m, s):
        return math.exp(-0.5 * ((x - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    p0 = 0.25 * normal(0.5, 0.0, 1.0) + 0.75 * normal(0.5, 1.0, 2.0)
    p1 = 0.5 * normal(0.0, -1.0, 1.0) + 0.5 * normal(0.0, 2.0, 1.0)
    expected = -(math.log(p0) + math.log(p1)) / 2
    loss = mdn_loss(flat_params(logit_pi, mu, log_sigma), target.reshape(1, 1, 2), np.ones((1, 1)), SMALL)
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_loss_is_finite_for_extreme_inputs():
    logit_pi = np.array([[1e4, -1e4], [-50.0, 50.0]])
    mu = np.array([[1e3, -1e3], [0.0, 0.0]])
    log_sigma = np.array([[-20.0, 20.0], [-30.0, -30.0]])
    for target in ([1e3, 0.0], [-1e3, 1e-3], [0.0, 5.0]):
        params = tf.constant(flat_params(logit_pi, mu, log_sigma))
        with tf.GradientTape() as tape:
            tape.watch(params)
            loss = mdn_loss(params, np.array(target, np.float32).reshape(1, 1, 2), np.ones((1, 1)), SMALL)
        assert np.isfinite(float(loss))
        assert np.all(np.isfinite(tape.gradient(loss, params).numpy()))


def test_mask_excludes_padding():
    params = np.random.default_rng(0).normal(size=(1, 3, SMALL.output_dim)).astype(np.float32)
    target = np.random.default_rng(1).normal(size=(1, 3, 2)).astype(np.float32)
    first_two = mdn_loss(params[:, :2], target[:, :2], np.ones((1, 2)), SMALL)
    masked = mdn_loss(params, target, np.array([[1.0, 1.0, 0.0]]), SMALL)
    assert float(masked) == pytest.approx(float(first_two), rel=1e-6)


def test_loss_falls_on_a_fixed_batch():
    tf.random.set_seed(0)
    model = build_mdn_rnn(MDNRNNConfig(latent_dim=4, hidden_units=32, mixtures=3))
    optimizer = keras.optimizers.Adam(1e-2, clipvalue=1.0)
    t = np.linspace(0, 6, 21, dtype=np.float32)
    z = np.stack([np.sin(t + phase) for phase in (0, 1, 2, 3)], axis=-1)[None].repeat(4, axis=0)
    inputs = np.concatenate([z[:, :-1], np.zeros((4, 20, 3), np.float32)], axis=-1)
    targets, mask = z[:, 1:], np.ones((4, 20), np.float32)

    def step():
        with tf.GradientTape() as tape:
            loss = mdn_loss(model(inputs, training=True)[0], targets, mask, model.config)
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return float(loss)

    losses = [step() for _ in range(60)]
    assert losses[-1] < losses[0] - 1.0


def test_single_step_matches_the_sequence_call():
    model = build_mdn_rnn(SMALL)
    rng = np.random.default_rng(0)
    z, actions = rng.normal(size=(3, 4, 2)).astype(np.float32), rng.normal(size=(3, 4, 3)).astype(np.float32)
    sequence_params, _, _ = model(np.concatenate([z, actions], -1))
    h, c = model.zero_state(3)
    for t in range(4):
        params, h, c = model.step(z[:, t], actions[:, t], h, c)
        np.testing.assert_allclose(params, sequence_params[:, t], atol=1e-5)


def test_sampling_shapes_and_temperature():
    params = tf.constant(np.random.default_rng(0).normal(size=(500, SMALL.output_dim)).astype(np.float32))
    cold = sample_next_latent(params, SMALL, temperature=1e-4, seed=(1, 2))
    warm = sample_next_latent(params, SMALL, temperature=2.0, seed=(1, 2))
    assert cold.shape == (500, 2) and expected_next_latent(params, SMALL).shape == (500, 2)
    log_pi, mu, _ = split_mixture(params, SMALL)
    mode_mu = tf.reduce_sum(tf.one_hot(tf.argmax(log_pi, -1), SMALL.mixtures) * mu, -1)
    assert float(tf.reduce_mean(tf.abs(cold - mode_mu))) < 0.05  # near-zero temperature: the mode's mean
    assert float(tf.reduce_mean(tf.abs(warm - mode_mu))) > 0.3


def test_save_load_round_trip_and_errors(tmp_path):
    model = build_mdn_rnn(SMALL)
    save_mdn_rnn(model, tmp_path)
    loaded = load_mdn_rnn(tmp_path)
    inputs = np.random.default_rng(0).normal(size=(2, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(model(inputs)[0], loaded(inputs)[0], atol=1e-6)
    assert loaded.config == SMALL
    with pytest.raises(WorldModelsError, match="no trained MDN-RNN"):
        load_mdn_rnn(tmp_path / "missing")
