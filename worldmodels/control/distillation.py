"""Carry a trained controller over to a new V and M by imitation, so a new world model need not restart CMA-ES.

C reads V's latent and M's hidden state unit by unit, so its weights mean nothing under a retrained V or M.
But C is linear: replaying recorded episodes through the teacher's V, M and C gives what the teacher would
do at every step, and through the student's V and M what the student would see; a ridge regression from
the second to the first is the linear controller on the new world model that acts most like the teacher on
those episodes. CMA-ES then starts from it (`train_controller.py --init_from`) instead of from zero.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from worldmodels.cli import flag
from worldmodels.control.controller import ControllerConfig
from worldmodels.control.warm_start import resolve_initial_params
from worldmodels.data.episode import read_episode
from worldmodels.errors import WorldModelsError
from worldmodels.files import atomic_path, write_json_atomic
from worldmodels.memory.mdn_rnn import MDNRNN, load_mdn_rnn
from worldmodels.paths import DATASETS, ArtifactTree
from worldmodels.vision.training import episode_files
from worldmodels.vision.vae import ConvVAE, encode_frames, load_vae

# tanh(3) = 0.995: pre-activations beyond +-3 give the same action, so the fit should not spend itself on them.
TARGET_LIMIT = 3.0
RIDGE_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0)
VALIDATION_EVERY = 5  # every 5th episode is held out to choose the ridge strength
REPLAY_CHUNK = 64  # episodes replayed through M together


@dataclass(frozen=True)
class DistillationConfig:
    """Flags of `distill_controller.py`."""

    teacher: str = flag("", "the trained agent's artifact tree (another run, or where pretrained.sh installed "
                            "an archive): its V, M and controller")
    teacher_params: str = flag("best", "which of the teacher's controllers: a generation number (its CMA-ES mean), "
                                       "'max', 'best', or a params .npy file")
    dataset: str = flag("controller", "episodes of this tree to imitate on (the teacher's own driving fits best)",
                        choices=("all", *DATASETS))
    max_episodes: int = flag(0, "use at most this many episodes (0: all)")
    output: str = flag("", "params .npy to write (default <tree>/distilled-params.npy); a JSON report goes beside it")

    def validate(self) -> "DistillationConfig":
        if not self.teacher:
            raise WorldModelsError("--teacher is required: the artifact tree of the controller to imitate")
        if self.max_episodes < 0:
            raise WorldModelsError(f"--max_episodes must be >= 0, got {self.max_episodes}")
        return self


def replay_features(vae: ConvVAE, mdn_rnn: MDNRNN, observations: list[np.ndarray],
                    actions: list[np.ndarray]) -> list[np.ndarray]:
    """C's input [z_t, h_t] at every step of recorded episodes, computed as the agent computes it when driving:
    z_t is V's mean for frame t, h_t M's state after (z_0, a_0) .. (z_{t-1}, a_{t-1})."""
    latents = [encode_frames(vae, frames)[0] for frames in observations]
    step = tf.function(mdn_rnn.step)
    features = []
    for start in range(0, len(latents), REPLAY_CHUNK):
        chunk = range(start, min(start + REPLAY_CHUNK, len(latents)))
        length = max(len(latents[index]) for index in chunk)
        z = np.zeros((len(chunk), length, latents[start].shape[1]), np.float32)
        a = np.zeros((len(chunk), length, actions[start].shape[1]), np.float32)
        for row, index in enumerate(chunk):  # padding after an episode's end never reaches its own steps
            z[row, :len(latents[index])], a[row, :len(actions[index])] = latents[index], actions[index]
        h, c = mdn_rnn.zero_state(len(chunk))
        hidden = np.empty((len(chunk), length, h.shape[1]), np.float32)
        for t in range(length):
            hidden[:, t] = h.numpy()
            _, h, c = step(tf.constant(z[:, t]), tf.constant(a[:, t]), h, c)
        features += [np.concatenate([latents[index], hidden[row, :len(latents[index])]], axis=1)
                     for row, index in enumerate(chunk)]
    return features


def pre_activations(params: np.ndarray, features: np.ndarray, config: ControllerConfig) -> np.ndarray:
    """W [z, h] + b for every row of `features`: C's output before tanh."""
    weight_count = config.input_dim * config.action_dim
    return features @ params[:weight_count].reshape(config.input_dim, config.action_dim) + params[weight_count:]


def actions_of(pre: np.ndarray) -> np.ndarray:
    """The CarRacing actions of pre-activations (numpy twin of controller.map_actions over tanh)."""
    raw = np.tanh(pre)
    return np.stack([raw[:, 0], (raw[:, 1] + 1.0) / 2.0, np.clip(raw[:, 2], 0.0, 1.0)], axis=1)


def fit_ridge(features: np.ndarray, targets: np.ndarray, strength: float) -> np.ndarray:
    """Controller parameters (weights row-major, then biases) minimising squared error + strength * |W|^2.

    The bias is not penalised: it is solved with the weights, on centred features.
    """
    mean_x, mean_y = features.mean(axis=0), targets.mean(axis=0)
    centred = features - mean_x
    gram = centred.T @ centred + strength * np.eye(features.shape[1])
    weights = np.linalg.solve(gram, centred.T @ (targets - mean_y))
    bias = mean_y - mean_x @ weights
    return np.concatenate([weights.ravel(), bias]).astype(np.float32)


def action_errors(params: np.ndarray, features: np.ndarray, teacher_actions: np.ndarray,
                  config: ControllerConfig) -> np.ndarray:
    """Mean absolute difference to the teacher's steer, gas and brake."""
    return np.abs(actions_of(pre_activations(params, features, config)) - teacher_actions).mean(axis=0)


def distill(config: DistillationConfig, tree: ArtifactTree) -> dict:
    """Fit the student controller for `tree`'s V and M; write it and a report; return the report."""
    config.validate()
    start = time.monotonic()
    teacher_tree = ArtifactTree(Path(config.teacher).expanduser())
    if teacher_tree.root.resolve() == tree.root.resolve():
        raise WorldModelsError(f"--teacher {config.teacher}: the teacher must be another tree (this is the student's)")
    if not teacher_tree.root.is_dir():
        raise WorldModelsError(f"--teacher {config.teacher}: folder not found")
    teacher_v, teacher_m = load_vae(teacher_tree.vae_models), load_mdn_rnn(teacher_tree.memory_models)
    student_v, student_m = load_vae(tree.vae_models), load_mdn_rnn(tree.memory_models)
    teacher_config = ControllerConfig(teacher_v.config.latent_dim, teacher_m.config.hidden_units)
    student_config = ControllerConfig(student_v.config.latent_dim, student_m.config.hidden_units)
    teacher_params, source = resolve_initial_params(teacher_tree, config.teacher_params)
    teacher_params = teacher_config.check(teacher_params, f"--teacher_params {source}").astype(np.float64)

    files = episode_files(tree.rollout_folders(config.dataset), config.max_episodes)
    if len(files) < 2:
        raise WorldModelsError(f"{tree.root}: {len(files)} {config.dataset} episode(s) found; distillation needs "
                               "at least 2 (one to fit, one to choose the ridge strength)")
    episodes = [read_episode(path) for path in files]
    observations, actions = [e.observations for e in episodes], [e.actions for e in episodes]
    teacher_features = replay_features(teacher_v, teacher_m, observations, actions)
    student_features = replay_features(student_v, student_m, observations, actions)

    validation = np.arange(len(episodes)) % VALIDATION_EVERY == VALIDATION_EVERY - 1
    if not validation.any():
        validation[-1] = True
    held = np.repeat(validation, [len(features) for features in student_features])  # per step
    all_x = np.concatenate(student_features).astype(np.float64)
    pre = pre_activations(teacher_params, np.concatenate(teacher_features), teacher_config)
    all_y, all_actions = np.clip(pre, -TARGET_LIMIT, TARGET_LIMIT), actions_of(pre)
    scores = {strength: action_errors(fit_ridge(all_x[~held], all_y[~held], strength), all_x[held],
                                      all_actions[held], student_config)
              for strength in RIDGE_GRID}
    strength = min(scores, key=lambda key: scores[key].mean())
    params = fit_ridge(all_x, all_y, strength)

    output = Path(config.output).expanduser() if config.output else tree.root / "distilled-params.npy"
    with atomic_path(output) as temp:
        np.save(temp, params)
    report = {
        "teacher": str(teacher_tree.root), "teacher_params": source, "episodes": len(episodes),
        "steps": int(len(all_x)), "dataset": config.dataset, "ridge": strength,
        "held_out_episodes": int(validation.sum()),
        "held_out_action_error": dict(zip(("steer", "gas", "brake"), map(float, scores[strength]))),
        "fit_action_error": dict(zip(("steer", "gas", "brake"),
                                     map(float, action_errors(params, all_x, all_actions, student_config)))),
        "output": str(output), "seconds": time.monotonic() - start,
    }
    write_json_atomic(output.with_suffix(".json"), report)
    return report
