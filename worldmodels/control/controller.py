"""The linear controller a = tanh(W [z, h] + b), as one flat parameter vector for CMA-ES."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from worldmodels.errors import WorldModelsError


@dataclass(frozen=True)
class ControllerConfig:
    """Sizes of C's input and output; the parameter count follows from them."""

    latent_dim: int = 32
    hidden_units: int = 256
    action_dim: int = 3

    @property
    def input_dim(self) -> int:
        return self.latent_dim + self.hidden_units

    @property
    def num_params(self) -> int:
        return self.input_dim * self.action_dim + self.action_dim  # 288 * 3 + 3 = 867 at full size

    def check(self, params: np.ndarray, source: str = "controller parameters") -> np.ndarray:
        params = np.asarray(params, np.float32)
        if params.shape[-1:] != (self.num_params,):
            raise WorldModelsError(f"{source}: {params.shape[-1] if params.ndim else 0} parameters, "
                                   f"expected {self.num_params} for latent {self.latent_dim} + hidden {self.hidden_units}")
        return params


def map_actions(raw: tf.Tensor) -> tf.Tensor:
    """tanh outputs in [-1, 1] -> CarRacing actions: steer as is, gas (a+1)/2, brake clipped to [0, 1]."""
    steer, gas, brake = tf.unstack(raw, axis=-1)
    return tf.stack([steer, (gas + 1.0) / 2.0, tf.clip_by_value(brake, 0.0, 1.0)], axis=-1)


def controller_actions(params: tf.Tensor, z: tf.Tensor, h: tf.Tensor, config: ControllerConfig) -> tf.Tensor:
    """Actions of a batch where every episode may have its own parameters: params (batch, num_params)."""
    weight_count = config.input_dim * config.action_dim
    weights = tf.reshape(params[:, :weight_count], (-1, config.input_dim, config.action_dim))
    bias = params[:, weight_count:]
    features = tf.concat([z, h], axis=-1)
    return map_actions(tf.tanh(tf.einsum("bi,bio->bo", features, weights) + bias))
