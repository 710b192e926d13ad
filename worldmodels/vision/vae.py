"""The paper's ConvVAE: 4 stride-2 convolutions down to a 32-d Gaussian, 4 transposed convolutions back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from worldmodels.data.env import OBSERVATION_SHAPE
from worldmodels.checkpoints import export_model, import_model
from worldmodels.vision.layers import FastConv2D, FastConv2DTranspose

ENCODER_FILTERS = (32, 64, 128, 256)  # kernel 4, stride 2, valid: 64 -> 31 -> 14 -> 6 -> 2
DECODER_LAYERS = ((128, 5), (64, 5), (32, 6))  # (filters, kernel), stride 2: 1 -> 5 -> 13 -> 30 -> 64
WEIGHTS_NAME = "vae.weights.h5"
CONFIG_NAME = "vae.json"


@dataclass(frozen=True)
class VAEConfig:
    """Architecture of V, saved beside the weights so a model rebuilds itself on load."""

    latent_dim: int = 32
    kl_tolerance: float = 0.5  # KL is clamped below at kl_tolerance * latent_dim nats (the paper's 16)

    @property
    def kl_floor(self) -> float:
        return self.kl_tolerance * self.latent_dim


class ConvVAE(keras.Model):
    """Encoder to (mu, logvar), reparameterised sample, decoder back to a 64x64x3 image in [0, 1].

    `reference=True` builds the same network from stock Keras layers: the straightforward version,
    slow on CPUs without AVX-512, kept to check the fast layers against and to read weights saved
    before them.  Both have identical variables in identical order.
    """

    def __init__(self, config: VAEConfig = VAEConfig(), reference: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        conv = (lambda f, k, **kw: keras.layers.Conv2D(f, k, strides=2, **kw)) if reference else FastConv2D
        deconv = (lambda f, k, **kw: keras.layers.Conv2DTranspose(f, k, strides=2, **kw)) if reference \
            else FastConv2DTranspose
        self.encoder = keras.Sequential(
            [keras.Input(OBSERVATION_SHAPE)]
            + [conv(filters, 4, activation="relu") for filters in ENCODER_FILTERS]
            + [keras.layers.Flatten(), keras.layers.Dense(2 * config.latent_dim)],
            name="encoder")
        # The Reshape keeps the layer indices of checkpoints written before the fast layers.
        self.decoder = keras.Sequential(
            [keras.Input((config.latent_dim,)), keras.layers.Dense(1024), keras.layers.Reshape((1, 1, 1024))]
            + [deconv(filters, kernel, activation="relu") for filters, kernel in DECODER_LAYERS]
            + [deconv(3, 6, activation="sigmoid")],
            name="decoder")

    def encode(self, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Images in [0, 1] -> (mu, logvar), each (batch, latent_dim)."""
        mu, logvar = tf.split(self.encoder(images), 2, axis=-1)
        return mu, logvar

    def decode(self, z: tf.Tensor) -> tf.Tensor:
        return self.decoder(z)

    def call(self, images: tf.Tensor, training: bool = False) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        mu, logvar = self.encode(images)
        z = mu + tf.exp(0.5 * logvar) * tf.random.normal(tf.shape(mu))
        return self.decode(z), mu, logvar


def to_unit_float(images_uint8: tf.Tensor) -> tf.Tensor:
    """uint8 pixels -> float32 in [0, 1]; the only place this conversion happens."""
    return tf.cast(images_uint8, tf.float32) / 255.0


def vae_losses(model: ConvVAE, images: tf.Tensor, batch_size: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """Per-batch mean of the paper's loss: summed squared error plus KL clamped below at the tolerance.

    Sums over `images` are divided by `batch_size` (default: their number): a replica passes the whole
    batch's size, so that the replicas' losses add up to the mean over the whole batch.
    """
    reconstruction, mu, logvar = model(images, training=True)
    count = tf.cast(tf.shape(images)[0] if batch_size is None else batch_size, images.dtype)
    squared_error = tf.reduce_sum(tf.square(images - reconstruction), axis=[1, 2, 3])
    kl = -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=1)
    clamped_kl = tf.maximum(kl, model.config.kl_floor)
    reconstruction_loss = tf.reduce_sum(squared_error) / count
    kl_loss = tf.reduce_sum(clamped_kl) / count
    return {"loss": reconstruction_loss + kl_loss, "reconstruction": reconstruction_loss,
            "kl": kl_loss, "kl_unclamped": tf.reduce_sum(kl) / count}


def build_vae(config: VAEConfig = VAEConfig(), reference: bool = False) -> ConvVAE:
    model = ConvVAE(config, reference=reference)
    model(tf.zeros((1, *OBSERVATION_SHAPE)))  # create the variables
    return model


def reference_vae(config: VAEConfig = VAEConfig()) -> ConvVAE:
    """The same network from stock Keras layers (see ConvVAE)."""
    return build_vae(config, reference=True)


def save_vae(model: ConvVAE, folder: Path) -> Path:
    return export_model(model, folder, WEIGHTS_NAME, CONFIG_NAME)


def load_vae(folder: Path) -> ConvVAE:
    return import_model(folder, WEIGHTS_NAME, CONFIG_NAME, VAEConfig, build_vae, "VAE", "train_vae.py",
                        legacy_build=reference_vae)


def encode_frames(model: ConvVAE, frames_uint8: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Encode uint8 frames in batches -> (mu, logvar) as float32 numpy arrays."""
    encode = _compiled_encoder(model)
    mus, logvars = [], []
    for start in range(0, len(frames_uint8), batch_size):
        mu, logvar = encode(tf.convert_to_tensor(frames_uint8[start:start + batch_size]))
        mus.append(mu.numpy())
        logvars.append(logvar.numpy())
    return np.concatenate(mus), np.concatenate(logvars)


def _compiled_encoder(model: ConvVAE):
    if not hasattr(model, "_compiled_encode"):
        signature = [tf.TensorSpec([None, *OBSERVATION_SHAPE], tf.uint8)]
        model._compiled_encode = tf.function(lambda frames: model.encode(to_unit_float(frames)),
                                             input_signature=signature, reduce_retracing=True)
    return model._compiled_encode
