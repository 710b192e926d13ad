"""The linear controller a = tanh(W [z, h] + b), as one flat parameter vector for CMA-ES; with the dashboard
(`train_controller.py --dashboard 1`), a = tanh(W [z, h, d] + b) where d are the indicator bar's gauges."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from worldmodels.data.dashboard import DASHBOARD_DIM, standardize
from worldmodels.errors import WorldModelsError


@dataclass(frozen=True)
class ControllerConfig:
    """Sizes of C's input and output; the parameter count follows from them."""

    latent_dim: int = 32
    hidden_units: int = 256
    action_dim: int = 3
    dashboard: bool = False  # C also reads the indicator bar's DASHBOARD_DIM gauges

    @property
    def input_dim(self) -> int:
        return self.latent_dim + self.hidden_units + (DASHBOARD_DIM if self.dashboard else 0)

    @property
    def num_params(self) -> int:
        return self.input_dim * self.action_dim + self.action_dim  # 288 * 3 + 3 = 867 at full size (888 with d)

    @property
    def dashboard_weights(self) -> slice:
        """Where the gauges' weights sit in the flat parameters (empty without the dashboard)."""
        start = (self.latent_dim + self.hidden_units) * self.action_dim
        return slice(start, self.input_dim * self.action_dim)

    def with_dashboard(self, dashboard: bool) -> "ControllerConfig":
        return replace(self, dashboard=bool(dashboard))

    def check(self, params: np.ndarray, source: str = "controller parameters") -> np.ndarray:
        params = np.asarray(params, np.float32)
        if params.shape[-1:] != (self.num_params,):
            raise WorldModelsError(f"{source}: {params.shape[-1] if params.ndim else 0} parameters, "
                                   f"expected {self.num_params} for latent {self.latent_dim} + hidden {self.hidden_units}"
                                   f"{f' + dashboard {DASHBOARD_DIM}' if self.dashboard else ''}")
        return params

    def for_params(self, params: np.ndarray, source: str = "controller parameters") -> "ControllerConfig":
        """The layout that `params` has: C on [z, h], or on [z, h] and the dashboard (told by the count)."""
        count = np.shape(params)[-1] if np.ndim(params) else 0
        for layout in (self.with_dashboard(False), self.with_dashboard(True)):
            if count == layout.num_params:
                return layout
        raise WorldModelsError(f"{source}: {count} parameters, expected {self.with_dashboard(False).num_params} for "
                               f"latent {self.latent_dim} + hidden {self.hidden_units}, or "
                               f"{self.with_dashboard(True).num_params} with the dashboard")

    def check_layout(self, params: np.ndarray, source: str = "controller parameters") -> np.ndarray:
        """`params` as float32 when they fit either layout (see `for_params`)."""
        return self.for_params(params, source).check(params, source)

    def widen(self, params: np.ndarray) -> np.ndarray:
        """[z, h] parameters -> the same controller reading the dashboard too, with zero weights on it."""
        base = self.with_dashboard(False)
        params = base.check(params)
        weights = params[:base.input_dim * self.action_dim].reshape(base.input_dim, self.action_dim)
        zeros = np.zeros((DASHBOARD_DIM, self.action_dim), np.float32)
        return np.concatenate([weights.ravel(), zeros.ravel(), params[-self.action_dim:]])


def map_actions(raw: tf.Tensor) -> tf.Tensor:
    """tanh outputs in [-1, 1] -> CarRacing actions: steer as is, gas (a+1)/2, brake clipped to [0, 1]."""
    steer, gas, brake = tf.unstack(raw, axis=-1)
    return tf.stack([steer, (gas + 1.0) / 2.0, tf.clip_by_value(brake, 0.0, 1.0)], axis=-1)


def controller_actions(params: tf.Tensor, z: tf.Tensor, h: tf.Tensor, config: ControllerConfig,
                       dashboard: tf.Tensor | None = None) -> tf.Tensor:
    """Actions of a batch where every episode may have its own parameters: params (batch, num_params);
    `dashboard` (batch, DASHBOARD_DIM), in the bar's units, is read (standardized) when `config.dashboard` says so."""
    weight_count = config.input_dim * config.action_dim
    weights = tf.reshape(params[:, :weight_count], (-1, config.input_dim, config.action_dim))
    bias = params[:, weight_count:]
    features = tf.concat([z, h, standardize(dashboard)] if config.dashboard else [z, h], axis=-1)
    return map_actions(tf.tanh(tf.einsum("bi,bio->bo", features, weights) + bias))
