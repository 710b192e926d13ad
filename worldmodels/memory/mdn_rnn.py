"""MDN-RNN: an LSTM over [z_t, a_t] whose output parameterises a mixture of Gaussians per latent dimension.

The loss is the negative log-likelihood of z_{t+1} under that mixture, computed in log space with
log-sum-exp; sigma is never clamped (upstream clamped it to >= 1, which caps how sharp M can be).
With `reward_done`, two more outputs predict each step's reward and whether the episode ends after it:
what M needs to stand in for the environment when C trains in its dream (`control/dream.py`).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from worldmodels.checkpoints import export_model, import_model
from worldmodels.errors import WorldModelsError
from worldmodels.files import atomic_path

WEIGHTS_NAME = "mdn_rnn.weights.h5"
CONFIG_NAME = "mdn_rnn.json"
DREAM_STARTS_NAME = "dream-starts.npz"  # V's (mu, logvar) of the first frame of each episode M trained on
LOG_SQRT_TWO_PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class MDNRNNConfig:
    """Architecture of M, saved beside its weights."""

    latent_dim: int = 32
    action_dim: int = 3
    hidden_units: int = 256  # LSTM size; h feeds the controller
    mixtures: int = 5  # Gaussians per latent dimension
    reward_done: bool = False  # also predict the step's reward and a done logit (the last two outputs)

    @property
    def input_dim(self) -> int:
        return self.latent_dim + self.action_dim

    @property
    def mixture_dim(self) -> int:
        return self.latent_dim * self.mixtures * 3  # logit pi, mu, log sigma

    @property
    def output_dim(self) -> int:
        return self.mixture_dim + (2 if self.reward_done else 0)


class MDNRNN(keras.Model):
    """Sequence model for training (`call`) and a single batched step for rollouts (`step`)."""

    def __init__(self, config: MDNRNNConfig = MDNRNNConfig(), **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.lstm = keras.layers.LSTM(config.hidden_units, return_sequences=True, return_state=True)
        self.head = keras.layers.Dense(config.output_dim)

    def call(self, inputs: tf.Tensor, initial_state=None, training: bool = False) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(batch, time, latent+action) -> mixture parameters (batch, time, output_dim), h, c."""
        outputs, h, c = self.lstm(inputs, initial_state=initial_state, training=training)
        return self.head(outputs), h, c

    def step(self, z: tf.Tensor, action: tf.Tensor, h: tf.Tensor, c: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One time step for a whole batch of episodes: returns (mixture params, h, c)."""
        output, (h, c) = self.lstm.cell(tf.concat([z, action], axis=-1), [h, c])
        return self.head(output), h, c

    def zero_state(self, batch: int) -> tuple[tf.Tensor, tf.Tensor]:
        zeros = tf.zeros((batch, self.config.hidden_units))
        return zeros, zeros


def split_mixture(params: tf.Tensor, config: MDNRNNConfig) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Flat head output -> (log pi, mu, log sigma), each (..., latent_dim, mixtures); log pi normalised."""
    shape = tf.concat([tf.shape(params)[:-1], [config.latent_dim, config.mixtures * 3]], axis=0)
    logit_pi, mu, log_sigma = tf.split(tf.reshape(params[..., :config.mixture_dim], shape), 3, axis=-1)
    return tf.nn.log_softmax(logit_pi, axis=-1), mu, log_sigma


def mixture_log_likelihood(log_pi: tf.Tensor, mu: tf.Tensor, log_sigma: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """log p(target) under the mixture, per latent dimension: log-sum-exp over components."""
    target = tf.expand_dims(target, -1)
    standardised = (target - mu) * tf.exp(-log_sigma)
    component = -0.5 * tf.square(standardised) - log_sigma - LOG_SQRT_TWO_PI
    return tf.reduce_logsumexp(log_pi + component, axis=-1)


def mdn_loss(params: tf.Tensor, target: tf.Tensor, mask: tf.Tensor, config: MDNRNNConfig) -> tf.Tensor:
    """Mean negative log-likelihood per latent dimension over the valid (mask = 1) time steps."""
    total, count = mdn_loss_sum(params, target, mask, config)
    return total / tf.maximum(count, 1.0)


def mdn_loss_sum(params: tf.Tensor, target: tf.Tensor, mask: tf.Tensor,
                 config: MDNRNNConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """The summed negative log-likelihood over the valid time steps and latent dimensions, and how many terms
    it sums: `mdn_loss` is their ratio, and a replica divides its sum by the count over all replicas."""
    log_likelihood = mixture_log_likelihood(*split_mixture(params, config), target)  # (batch, time, latent)
    mask = tf.cast(mask, log_likelihood.dtype)[..., None]
    return tf.reduce_sum(-log_likelihood * mask), tf.reduce_sum(mask) * config.latent_dim


def reward_done_outputs(params: tf.Tensor, config: MDNRNNConfig) -> tuple[tf.Tensor, tf.Tensor]:
    """The predicted reward of the step and the logit of "the episode ends after it", each (...)."""
    if not config.reward_done:
        raise ValueError("this M has no reward and done outputs (trained without --reward_done 1)")
    return params[..., config.mixture_dim], params[..., config.mixture_dim + 1]


def reward_done_loss_sum(params: tf.Tensor, rewards: tf.Tensor, dones: tf.Tensor, mask: tf.Tensor,
                         config: MDNRNNConfig) -> tf.Tensor:
    """Squared reward error plus the done cross-entropy, summed over the valid time steps."""
    reward, done_logit = reward_done_outputs(params, config)
    per_step = tf.square(reward - rewards) + tf.nn.sigmoid_cross_entropy_with_logits(dones, done_logit)
    return tf.reduce_sum(per_step * tf.cast(mask, per_step.dtype))


def expected_next_latent(params: tf.Tensor, config: MDNRNNConfig) -> tf.Tensor:
    """The mixture's mean, sum_k pi_k mu_k: a deterministic prediction of z_{t+1}."""
    log_pi, mu, _ = split_mixture(params, config)
    return tf.reduce_sum(tf.exp(log_pi) * mu, axis=-1)


def sample_next_latent(params: tf.Tensor, config: MDNRNNConfig, temperature: float = 1.0, seed=None) -> tf.Tensor:
    """Sample z_{t+1}: temperature divides the logits and scales the std by sqrt(temperature)."""
    log_pi, mu, log_sigma = split_mixture(params, config)
    logits = log_pi / temperature
    flat_logits = tf.reshape(logits, [-1, config.mixtures])
    component = tf.random.stateless_categorical(flat_logits, 1, seed) if seed is not None else \
        tf.random.categorical(flat_logits, 1)
    one_hot = tf.reshape(tf.one_hot(component[:, 0], config.mixtures), tf.shape(mu))
    chosen_mu = tf.reduce_sum(one_hot * mu, axis=-1)
    chosen_sigma = tf.reduce_sum(one_hot * tf.exp(log_sigma), axis=-1) * math.sqrt(temperature)
    noise = tf.random.stateless_normal(tf.shape(chosen_mu), seed) if seed is not None else \
        tf.random.normal(tf.shape(chosen_mu))
    return chosen_mu + chosen_sigma * noise


def build_mdn_rnn(config: MDNRNNConfig = MDNRNNConfig()) -> MDNRNN:
    model = MDNRNN(config)
    model(tf.zeros((1, 1, config.input_dim)))
    return model


def save_mdn_rnn(model: MDNRNN, folder: Path) -> Path:
    return export_model(model, folder, WEIGHTS_NAME, CONFIG_NAME)


def load_mdn_rnn(folder: Path) -> MDNRNN:
    return import_model(folder, WEIGHTS_NAME, CONFIG_NAME, MDNRNNConfig, build_mdn_rnn, "MDN-RNN", "train_memory.py")


def save_dream_starts(folder: Path, mu: np.ndarray, logvar: np.ndarray) -> Path:
    """Where dreams begin: the first frames' latents of M's training episodes, kept beside M so a dream
    needs no episode data (a restored snapshot or an installed archive has none)."""
    with atomic_path(folder / DREAM_STARTS_NAME) as temp:
        with temp.open("wb") as handle:
            np.savez(handle, mu=np.asarray(mu, np.float32), logvar=np.asarray(logvar, np.float32))
    return folder / DREAM_STARTS_NAME


def load_dream_starts(folder: Path, latent_dim: int) -> tuple[np.ndarray, np.ndarray]:
    path = folder / DREAM_STARTS_NAME
    try:
        with np.load(path, allow_pickle=False) as arrays:
            mu, logvar = arrays["mu"], arrays["logvar"]
    except FileNotFoundError:
        raise WorldModelsError(f"{path}: not found; train M with train_memory.py --reward_done 1 to dream") from None
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise WorldModelsError(f"{path}: corrupt dream starts ({error})") from None
    if mu.shape != logvar.shape or mu.ndim != 2 or mu.shape[1] != latent_dim or not len(mu):
        raise WorldModelsError(f"{path}: expected (episodes, {latent_dim}) latents, got mu {mu.shape} and "
                               f"logvar {logvar.shape}")
    return mu, logvar
