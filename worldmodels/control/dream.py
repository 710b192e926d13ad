"""Rollouts in M's dream: C drives M instead of CarRacing, every episode of a generation in one batch.

M trained with `--reward_done 1` predicts the next z as a mixture, the step's reward and whether the
episode ends.  A dream starts from the latents of a real first frame (kept beside M), samples each next z
from the mixture at a temperature, adds up the predicted rewards and stops where the done logit turns
positive or at the episode length.  No environment is stepped, so thousands of episodes cost one LSTM call
per step; a dreamed fitness is only as good as M's world, which is why held-out evaluations of a dreamed
CMA-ES run still drive the real car.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

from worldmodels.control.controller import ControllerConfig, controller_actions
from worldmodels.control.rollout import EpisodeJob, EpisodeResult
from worldmodels.errors import WorldModelsError
from worldmodels.memory.mdn_rnn import (CONFIG_NAME, MDNRNN, load_dream_starts, reward_done_outputs,
                                        sample_next_latent)
from worldmodels.paths import ArtifactTree


class DreamRollouts:
    """`RolloutEngine.run` with M as the environment: the same jobs in the same order give the same results."""

    def __init__(self, mdn_rnn: MDNRNN, controller: ControllerConfig, starts: tuple[np.ndarray, np.ndarray],
                 episode_length: int, temperature: float = 1.0):
        self.mdn_rnn, self.controller, self.episode_length = mdn_rnn, controller, episode_length
        self.start_mu, self.start_logvar = starts
        self.temperature = temperature
        latent, hidden = mdn_rnn.config.latent_dim, mdn_rnn.config.hidden_units
        self._step = tf.function(self._dream_step, input_signature=[
            tf.TensorSpec([None, latent], tf.float32), tf.TensorSpec([None, hidden], tf.float32),
            tf.TensorSpec([None, hidden], tf.float32), tf.TensorSpec([None, controller.num_params], tf.float32),
            tf.TensorSpec([2], tf.int64)])

    @classmethod
    def load(cls, tree: ArtifactTree, mdn_rnn: MDNRNN, controller: ControllerConfig, episode_length: int,
             temperature: float) -> "DreamRollouts":
        if not mdn_rnn.config.reward_done:
            raise WorldModelsError(f"{tree.memory_models / CONFIG_NAME}: M was trained without reward and done "
                                   "outputs; retrain it with train_memory.py --reward_done 1 to use --dream 1")
        starts = load_dream_starts(tree.memory_models, mdn_rnn.config.latent_dim)
        return cls(mdn_rnn, controller, starts, episode_length, temperature)

    def _dream_step(self, z, h, c, params, seed):
        actions = controller_actions(params, z, h, self.controller)
        mixture, h, c = self.mdn_rnn.step(z, actions, h, c)
        reward, done_logit = reward_done_outputs(mixture, self.mdn_rnn.config)
        next_z = sample_next_latent(mixture, self.mdn_rnn.config, self.temperature, seed)
        return next_z, h, c, reward, done_logit > 0.0

    def first_latents(self, jobs: Sequence[EpisodeJob]) -> np.ndarray:
        """Each job's first z: a start picked and sampled by its seed alone, so every candidate of a generation
        dreams its n-th episode from the same frame (common random numbers, as on the real tracks)."""
        latents = []
        for job in jobs:
            rng = np.random.default_rng(job.seed)
            index = rng.integers(len(self.start_mu))
            noise = rng.standard_normal(self.start_mu.shape[1])
            latents.append(self.start_mu[index] + np.exp(0.5 * self.start_logvar[index]) * noise)
        return np.asarray(latents, np.float32)

    def run(self, params: np.ndarray, jobs: Sequence[EpisodeJob], record: bool = False,
            on_result: Callable[[EpisodeResult], None] | None = None) -> list[EpisodeResult]:
        if record:
            raise WorldModelsError("dreams have no frames to record")
        params = np.asarray(params, np.float32).reshape(len(params), -1)
        rows = params[[job.candidate for job in jobs]]
        z = self.first_latents(jobs)
        h = c = np.zeros((len(jobs), self.mdn_rnn.config.hidden_units), np.float32)
        # The mixture's sampling noise: one stream for the batch, a function of its jobs' seeds.
        stream = int(np.random.SeedSequence([job.seed for job in jobs]).generate_state(1)[0])
        totals, lengths = np.zeros(len(jobs)), np.zeros(len(jobs), int)
        alive = np.ones(len(jobs), bool)
        for step in range(self.episode_length):
            z, h, c, reward, done = self._step(z, h, c, rows, tf.constant([stream, step], tf.int64))
            totals += np.where(alive, reward.numpy(), 0.0)
            lengths += alive
            alive &= ~done.numpy()
            if not alive.any():
                break
        results = [EpisodeResult(index, job.seed, job.candidate, float(totals[index]), int(lengths[index]))
                   for index, job in enumerate(jobs)]
        if on_result:
            for result in results:
                on_result(result)
        return results
