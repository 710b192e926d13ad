import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import synthetic_episode
from worldmodels.errors import WorldModelsError
from worldmodels.vision.layers import FastConv2DTranspose
from worldmodels.vision.vae import (VAEConfig, build_vae, encode_frames, load_vae, reference_vae, save_vae,
                                    vae_losses)


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


def _copy_of(source, reference: bool = False):
    """A model of the other kind (fast or stock layers) holding `source`'s weights."""
    model = build_vae(source.config, reference=reference)
    model.set_weights(source.get_weights())
    return model


def _deterministic_loss(model, images):
    """The paper's loss with z = mu, so two models can be compared gradient for gradient."""
    mu, logvar = model.encode(images)
    squared_error = tf.reduce_sum(tf.square(images - model.decode(mu)), axis=[1, 2, 3])
    kl = -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=1)
    return tf.reduce_mean(squared_error) + tf.reduce_mean(tf.maximum(kl, model.config.kl_floor))


def test_fast_layers_compute_the_reference_function_and_gradients():
    keras.utils.set_random_seed(3)
    reference = reference_vae()
    fast = _copy_of(reference)
    assert [v.shape for v in fast.weights] == [v.shape for v in reference.weights]
    images = tf.constant(synthetic_episode(6, seed=1).observations, tf.float32) / 255.0
    for a, b in zip(reference.encode(images), fast.encode(images)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    z = tf.random.normal((6, 32), seed=1)
    np.testing.assert_allclose(reference.decode(z), fast.decode(z), atol=1e-5)
    gradients = []
    for model in (reference, fast):
        with tf.GradientTape() as tape:
            loss = _deterministic_loss(model, images)
        gradients.append(tape.gradient(loss, model.trainable_variables))
    for variable, a, b in zip(fast.trainable_variables, *gradients):
        scale = float(tf.reduce_max(tf.abs(a))) + 1e-12
        assert float(tf.reduce_max(tf.abs(a - b))) / scale < 1e-4, variable.path


def test_weights_saved_by_stock_layers_still_load(tmp_path):
    """Files written before the fast layers (stock Conv2D/Conv2DTranspose layout) are converted on load."""
    keras.utils.set_random_seed(4)
    old = reference_vae()
    save_vae(old, tmp_path)
    loaded = load_vae(tmp_path)
    assert type(loaded.decoder.layers[-1]) is FastConv2DTranspose
    frames = synthetic_episode(5, seed=2).observations
    old_mu, old_logvar = encode_frames(old, frames)
    new_mu, new_logvar = encode_frames(loaded, frames)
    np.testing.assert_allclose(old_mu, new_mu, atol=1e-5)
    np.testing.assert_allclose(old_logvar, new_logvar, atol=1e-5)
    np.testing.assert_allclose(old.decode(old_mu), loaded.decode(new_mu), atol=1e-4)


def test_checkpoint_written_with_stock_layers_resumes(tree):
    from worldmodels.vision.training import VAETrainer, VAETrainingConfig

    keras.utils.set_random_seed(5)
    old = VAETrainer(VAETrainingConfig(layers="reference"), tree)
    old.train_step(tf.random.uniform((4, 64, 64, 3), seed=5))
    old.save()
    resumed = VAETrainer(VAETrainingConfig(), tree)
    resumed.restore()
    assert int(resumed.step.numpy()) == 1
    for a, b in zip(old.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(old.optimizer.variables, resumed.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_xla_step_computes_the_same_update_as_tensorflows_kernels(tmp_path, monkeypatch):
    """`--xla 1` (the default) only changes how the step is computed: from the same weights and batch, the
    same losses and the same weights after a step, to float tolerance.  z is taken noise-free (z = mu),
    since XLA draws its random numbers with another algorithm."""
    from worldmodels.paths import ArtifactTree
    from worldmodels.vision.training import VAETrainer, VAETrainingConfig
    from worldmodels.vision.vae import ConvVAE

    monkeypatch.setattr(ConvVAE, "call", lambda self, images, training=False: (
        self.decode(self.encode(images)[0]), *self.encode(images)))
    images = tf.random.uniform((6, 64, 64, 3), seed=3)
    trainers = [VAETrainer(VAETrainingConfig(xla=xla, learning_rate=1e-3), ArtifactTree(tmp_path / str(xla)))
                for xla in (0, 1)]
    initial = trainers[0].model.get_weights()
    trainers[1].model.set_weights(initial)
    losses = [trainer.train_step(images) for trainer in trainers]
    for name in ("loss", "reconstruction", "kl"):
        assert float(losses[1][name]) == pytest.approx(float(losses[0][name]), rel=1e-4), name
    changed = max(float(np.abs(after - before).max()) for after, before in
                  zip(trainers[0].model.get_weights(), initial))
    difference = max(float(np.abs(a - b).max()) for a, b in
                     zip(trainers[0].model.get_weights(), trainers[1].model.get_weights()))
    assert changed > 1e-4 and difference < 1e-5, (changed, difference)
