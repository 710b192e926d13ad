"""Where rollouts run: one engine in this process, or shards (engines of their own) on cores or Ray actors.

Up to CENTRAL_MODEL_WORKERS environment workers, one engine in the stage's process runs the models for all
of them and overlaps that with their stepping (the pipelined layout of `rollout.py`).  Beyond that one
model thread cannot keep up, so each worker becomes a shard: a process (or a Ray actor) with its own V, M
and environments, one core each, fed chunks of episodes by the driver.  Every episode is a function of its
track seed and controller only (fixed-size model calls, pinned threads), so all layouts give the same
results, and a shard that dies has its chunk re-run elsewhere with the same outcome.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np

from worldmodels.control.agent import Agent
from worldmodels.control.rollout import EpisodeJob, EpisodeResult, RolloutEngine
from worldmodels.paths import ArtifactTree
from worldmodels.workers import IN_FLIGHT, Recipe, model_files, open_workers, run_items, unpack_files

CENTRAL_MODEL_WORKERS = 4  # env workers one model thread keeps fed (0.26 ms a frame vs 3.3 ms an env step)
CHUNK_SLOTS = 2  # at most this many times a shard's slots per chunk: finished slots refill within a chunk


def build_shard(files: dict[str, bytes], episode_length: int, env_id: str, envs: int) -> Callable:
    """A shard: the agent from `files` and `envs` environments stepped in this process."""
    engine = RolloutEngine(Agent.load(ArtifactTree(unpack_files(files))), 0, episode_length, env_id, envs)

    def run_chunk(payload: tuple[np.ndarray, list[EpisodeJob], bool, bool]) -> list[EpisodeResult]:
        params, jobs, record, model_outputs = payload
        recorded: list[EpisodeResult] = []
        results = engine.run(params, jobs, record, on_result=recorded.append if record else None,
                             model_outputs=model_outputs)
        return sorted(recorded, key=lambda result: result.job) if record else results

    return run_chunk


class ShardedRollouts:
    """`RolloutEngine.run` over `count` shards, local processes or Ray actors."""

    def __init__(self, tree: ArtifactTree, count: int, episode_length: int, env_id: str, envs_per_process: int,
                 backend: str = "local", address: str = ""):
        self.envs, self.count = envs_per_process, count
        recipe = Recipe(build_shard, (model_files(tree.vae_models, tree.memory_models), episode_length, env_id, envs_per_process))
        self.workers = open_workers(recipe, count, backend, address)

    def run(self, params: np.ndarray, jobs: Sequence[EpisodeJob], record: bool = False,
            on_result: Callable[[EpisodeResult], None] | None = None, model_outputs: bool = True) -> list[EpisodeResult]:
        params = np.asarray(params, np.float32).reshape(len(params), -1)
        # Small enough that every shard has IN_FLIGHT chunks, large enough to fill a shard's slots.
        size = max(1, min(self.envs * CHUNK_SLOTS, -(-len(jobs) // (self.count * IN_FLIGHT))))
        starts = range(0, len(jobs), size)
        payloads = [(params, list(jobs[start:start + size]), record, model_outputs) for start in starts]
        results: list[EpisodeResult | None] = [None] * len(jobs)

        def collect(chunk: int, chunk_results: list[EpisodeResult]) -> None:
            for result in chunk_results:
                result = dataclasses.replace(result, job=starts[chunk] + result.job)
                if on_result:
                    on_result(result)
                results[result.job] = dataclasses.replace(result, steps=None)

        run_items(self.workers, payloads, collect)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self.workers.close()

    def __enter__(self) -> "ShardedRollouts":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


Rollouts = RolloutEngine | ShardedRollouts


def open_rollouts(agent: Agent, tree: ArtifactTree, num_process: int, episode_length: int, env_id: str,
                  envs_per_process: int = 8, backend: str = "local", address: str = "") -> Rollouts:
    """The engine for a stage's rollouts: same `run` interface and results whatever the layout."""
    if backend == "local" and num_process <= CENTRAL_MODEL_WORKERS:
        return RolloutEngine(agent, num_process, episode_length, env_id, envs_per_process)
    return ShardedRollouts(tree, num_process, episode_length, env_id, envs_per_process, backend, address)
