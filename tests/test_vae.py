import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import synthetic_episode
from worldmodels.errors import WorldModelsError
from worldmodels.vision.vae import VAEConfig, build_vae, encode_frames, load_vae, save_vae, vae_losses


def test_architecture_matches_the_paper():
    model = build_vae()
    assert model.encoder.output_shape == (None, 64)  # mu and logvar, 32 each
    assert model.decoder.output_shape == (None, 64, 64, 3)
    reconstruction, mu, logvar = model(tf.zeros((2, 64, 64, 3)))
    assert reconstruction.shape == (2, 64, 64, 3) and mu.shape == (2, 32) and logvar.shape == (2, 32)
    assert float(tf.reduce_min(reconstruction)) >= 0 and float(tf.reduce_max(reconstruction)) <= 1


def test_kl_is_clamped_at_the_tolerance():
    model = build_vae(VAEConfig(latent_dim=32, kl_tolerance=0.5))
    losses = vae_losses(model, tf.zeros((4, 64, 64, 3)))
    assert float(losses["kl"]) >= 16.0 - 1e-5
    assert float(losses["kl_unclamped"]) < 16.0  # a fresh encoder is close to the prior


def test_loss_falls_on_a_fixed_batch():
    keras.utils.set_random_seed(0)
    model = build_vae()
    optimizer = keras.optimizers.Adam(1e-3)
    # Eight frames of flat colour with a bright band at different heights: learnable, like road and grass.
    colours = np.random.default_rng(0).uniform(0.1, 0.9, (8, 1, 1, 3))
    frames = np.tile(colours, (1, 64, 64, 1))
    for index in range(8):
        frames[index, 8 * index: 8 * index + 8] = 1.0
    images = tf.constant(frames, tf.float32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = vae_losses(model, images)["reconstruction"]
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    losses = [float(step()) for _ in range(80)]
    assert np.mean(losses[-5:]) < 0.8 * losses[0]


def test_save_load_same_outputs(tmp_path):
    model = build_vae()
    frames = synthetic_episode(5).observations
    save_vae(model, tmp_path)
    loaded = load_vae(tmp_path)
    for a, b in zip(encode_frames(model, frames), encode_frames(loaded, frames)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(model.decode(tf.ones((1, 32))), loaded.decode(tf.ones((1, 32))), atol=1e-6)


def test_missing_or_damaged_model_is_a_clear_error(tmp_path):
    with pytest.raises(WorldModelsError, match="no trained VAE"):
        load_vae(tmp_path)
    save_vae(build_vae(), tmp_path)
    (tmp_path / "vae.weights.h5").write_bytes(b"not hdf5")
    with pytest.raises(WorldModelsError, match="vae.weights.h5: cannot load"):
        load_vae(tmp_path)
