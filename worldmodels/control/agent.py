"""The full agent V + M + C as one compiled step over a batch of live episodes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import tensorflow as tf

from worldmodels.control.controller import ControllerConfig, controller_actions
from worldmodels.data.dashboard import DASHBOARD_DIM
from worldmodels.data.env import OBSERVATION_SHAPE
from worldmodels.memory.mdn_rnn import MDNRNN, expected_next_latent, load_mdn_rnn
from worldmodels.paths import ArtifactTree
from worldmodels.vision.vae import ConvVAE, load_vae, to_unit_float
from worldmodels.errors import WorldModelsError
from worldmodels.workers import pin_worker_threads


MODEL_BATCH = 8  # rows per model call in rollouts: a constant, so results never depend on the batch layout


class StepRecord(NamedTuple):
    """What `--dtype numpy` controller samples keep per step, besides observations and actions."""

    mu: np.ndarray
    logvar: np.ndarray
    reconstruction: np.ndarray  # decoded mu, uint8
    predicted_latent: np.ndarray  # M's expected z_{t+1}


class Agent:
    """Holds V and M once; `act` runs encoder, controller and LSTM step once per time step for the batch."""

    def __init__(self, vae: ConvVAE, mdn_rnn: MDNRNN):
        if vae.config.latent_dim != mdn_rnn.config.latent_dim:
            raise WorldModelsError(f"VAE latent size {vae.config.latent_dim} does not match the MDN-RNN's "
                                   f"{mdn_rnn.config.latent_dim}; retrain M on the current VAE's latent stats")
        self.vae, self.mdn_rnn = vae, mdn_rnn
        self.controller = ControllerConfig(vae.config.latent_dim, mdn_rnn.config.hidden_units)  # C on [z, h]
        self._steps: dict[tuple[bool, bool], tf.types.experimental.GenericFunction] = {}

    def _compiled(self, controller: ControllerConfig, record: bool):
        """The step for one controller layout, compiled once."""
        key = (controller.dashboard, record)
        if key not in self._steps:
            hidden = self.hidden_units
            signature = [tf.TensorSpec([None, *OBSERVATION_SHAPE], tf.uint8), tf.TensorSpec([None, hidden], tf.float32),
                         tf.TensorSpec([None, hidden], tf.float32),
                         tf.TensorSpec([None, controller.num_params], tf.float32),
                         tf.TensorSpec([None, DASHBOARD_DIM], tf.float32)]
            self._steps[key] = tf.function(lambda *args: self._step(*args, controller=controller, record=record),
                                           input_signature=signature)
        return self._steps[key]

    @classmethod
    def load(cls, tree: ArtifactTree) -> "Agent":
        pin_worker_threads()
        return cls(load_vae(tree.vae_models), load_mdn_rnn(tree.memory_models))

    @property
    def hidden_units(self) -> int:
        return self.mdn_rnn.config.hidden_units

    def _step(self, frames, h, c, params, dashboards, controller: ControllerConfig, record: bool):
        # z is the encoder's mean: the same frame always gives the same action, so rollouts are repeatable.
        mu, logvar = self.vae.encode(to_unit_float(frames))
        actions = controller_actions(params, mu, h, controller, dashboards)
        mdn_params, h, c = self.mdn_rnn.step(mu, actions, h, c)
        if not record:
            return actions, h, c
        reconstruction = tf.cast(tf.round(self.vae.decode(mu) * 255.0), tf.uint8)
        return actions, h, c, (mu, logvar, reconstruction, expected_next_latent(mdn_params, self.mdn_rnn.config))

    def act(self, frames: np.ndarray, h: np.ndarray, c: np.ndarray, params: np.ndarray, record: bool = False,
            dashboards: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, StepRecord | None]:
        """Actions (batch, 3) and the next LSTM state; with `record`, also a StepRecord of numpy arrays.
        `dashboards` (batch, DASHBOARD_DIM): the gauges of each frame (`read_dashboard`), needed by parameters
        of a controller that reads them.

        The batch runs in calls of exactly MODEL_BATCH rows (the last one padded): CPU kernels pick their
        blocking by batch size, so this keeps every episode's numbers independent of which other episodes
        share its call, and rollouts identical whatever the number of workers, shards or machines.
        """
        count = len(frames)
        controller = self.controller.for_params(params)
        if dashboards is None:
            if controller.dashboard:
                raise WorldModelsError("these controller parameters read the dashboard, but no gauges were given")
            dashboards = np.zeros((count, DASHBOARD_DIM), np.float32)
        padded = -count % MODEL_BATCH
        inputs = [np.concatenate([array, np.zeros((padded, *array.shape[1:]), array.dtype)]) if padded else array
                  for array in (frames, h, c, params, np.asarray(dashboards, np.float32))]
        step = self._compiled(controller, record)
        chunks = [step(*(array[start:start + MODEL_BATCH] for array in inputs))
                  for start in range(0, count + padded, MODEL_BATCH)]
        outputs = [np.concatenate([chunk[index].numpy() for chunk in chunks])[:count] for index in range(3)]
        if record:
            extra = [np.concatenate([chunk[3][index].numpy() for chunk in chunks])[:count] for index in range(4)]
        return (*outputs, StepRecord(*extra) if record else None)
