"""Evaluation as in the paper: a generation's controller on N new tracks, mean +- std of total reward."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from worldmodels.cli import flag, require_at_least
from worldmodels.control.agent import Agent
from worldmodels.control.generations import resolve_generation
from worldmodels.control.backends import open_rollouts
from worldmodels.control.rollout import EpisodeJob
from worldmodels.data.env import DEFAULT_ENV_ID
from worldmodels.files import atomic_path, read_json, write_json_atomic
from worldmodels.paths import ArtifactTree
from worldmodels.progress import progress
from worldmodels.seeds import FINAL_TEST, derive_seed
from worldmodels.stages import stage
from worldmodels.workers import address_flag, backend_flag


@dataclass(frozen=True)
class EvaluationConfig:
    """Flags of `evaluate_controller.py`."""

    generation: str = flag("max", "a generation number, 'max' (newest) or 'best' (best held-out mean)")
    episodes: int = flag(100, "test episodes, each on a new track")
    episode_length: int = flag(1000, "maximum steps per episode")
    num_process: int = flag(os.cpu_count() or 1, "environment worker processes")
    seed: int = flag(0, "seed of the test tracks (never used in training)")
    data: str = flag("local", "where V, M and C come from", choices=("local", "s3"))
    env_id: str = flag(DEFAULT_ENV_ID, "gymnasium environment id")
    backend: str = backend_flag()
    address: str = address_flag()

    def validate(self) -> "EvaluationConfig":
        require_at_least(self, 1, "episodes", "episode_length", "num_process")
        return self


def final_test_jobs(seed: int, episodes: int) -> list[EpisodeJob]:
    """The test tracks of `seed`: disjoint from every training and held-out track."""
    return [EpisodeJob(derive_seed(FINAL_TEST, seed, index), 0) for index in range(episodes)]


@stage("evaluate_controller", inputs=lambda config, tree: [tree.vae_models, tree.memory_models, tree.control])
def evaluate_generation(config: EvaluationConfig, tree: ArtifactTree) -> dict:
    """Score a generation on test tracks; per-episode scores go to `control/evaluations/`."""
    config.validate()
    agent = Agent.load(tree)
    params, label = resolve_generation(tree, config.generation)
    params = agent.controller.check_layout(params, f"generation {label} parameters")
    jobs = final_test_jobs(config.seed, config.episodes)
    bar = progress(len(jobs), f"evaluating generation {label}", unit="episode")
    with open_rollouts(agent, tree, config.num_process, config.episode_length, config.env_id,
                       backend=config.backend, address=config.address) as engine:
        results = engine.run(params[None], jobs, on_result=lambda _: bar.update(1))
    bar.close()
    scores = np.array([result.total_reward for result in results], np.float32)
    summary = {"generation": label, "episodes": len(scores), "mean": float(scores.mean()), "std": float(scores.std()),
               "episode_length": config.episode_length, "seed": config.seed,
               "seeds": [job.seed for job in jobs], "scores": scores.tolist(),
               "lengths": [result.length for result in results], "env_id": config.env_id}
    best = tree.best_controller / "best.json"
    if label == "best" and best.is_file():  # which mean 'best' was when scored: it moves as training goes on
        summary["best_generation"] = read_json(best).get("generation")
    stem = f"generation_{label}_seed_{config.seed}_episodes_{config.episodes}"
    if config.env_id != DEFAULT_ENV_ID:  # a stock-renderer check must not overwrite the default one
        stem += f"_{config.env_id}"
    with atomic_path(tree.evaluations / f"{stem}.npy") as temp:
        np.save(temp, scores)
    write_json_atomic(tree.evaluations / f"{stem}.json", summary)
    summary["file"] = str(tree.evaluations / f"{stem}.json")
    return summary
