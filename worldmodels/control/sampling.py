"""Sample episodes with a trained controller: TFRecords for the next generation, numpy arrays to study."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from worldmodels.control.agent import Agent
from worldmodels.control.generations import resolve_generation
from worldmodels.control.backends import open_rollouts
from worldmodels.control.rollout import EpisodeJob, EpisodeResult
from worldmodels.data.episode import Episode, episode_filename, write_tfrecord
from worldmodels.data.sampling import STAGE, SamplingConfig, episode_seed
from worldmodels.files import atomic_folder, remove_stale_temporaries
from worldmodels.locks import stage_lock
from worldmodels.paths import ArtifactTree
from worldmodels.progress import progress

RECORDING_ENVS_PER_PROCESS = 2
NUMPY_FIELDS = {  # file name in controller-samples/<seed>/ -> recorded array
    "observations": "observations", "latents": "mu", "mu": "mu", "logvar": "logvar",
    "reconstructions": "reconstructions", "actions": "actions", "rewards": "rewards", "dones": "dones",
    "predicted_latents": "predicted_latents",
}


def write_sample_folder(folder: Path, steps: dict[str, np.ndarray]) -> None:
    """One `.npy` per array in `controller-samples/<seed>/`, renamed into place as a whole folder."""
    with atomic_folder(folder) as temp:
        for name, key in NUMPY_FIELDS.items():
            np.save(temp / f"{name}.npy", steps[key])


def sample_controller(config: SamplingConfig, tree: ArtifactTree) -> str:
    """Run the chosen generation on episodes `config.indices`; finished episodes are skipped (resume).

    Runs under the lock of its episode range: samplers of disjoint ranges share the folder.
    """
    config.validate()
    folder = tree.controller_rollouts if config.dtype == "tfrecord" else tree.controller_samples_root
    with stage_lock(tree, f"{STAGE}/{folder.name}", config.indices):
        return _sample_controller(config, tree, folder)


def _sample_controller(config: SamplingConfig, tree: ArtifactTree, folder: Path) -> str:
    agent = Agent.load(tree)
    params, label = resolve_generation(tree, config.generation)
    params = agent.controller.check_layout(params, f"generation {label} parameters")
    seeds = {index: episode_seed(index, config.seed) for index in config.indices}
    if config.dtype == "tfrecord":
        target = {index: folder / episode_filename(index) for index in config.indices}
    else:
        target = {index: tree.controller_samples(seeds[index]) for index in config.indices}
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder, {path.name for path in target.values()})  # other samplers write the rest
    pending = [index for index in config.indices if not target[index].exists()]
    jobs = [EpisodeJob(seeds[index], 0) for index in pending]
    bar = progress(len(jobs), f"sampling generation {label}", unit="episode")
    start, frames = time.monotonic(), 0

    def save(result: EpisodeResult) -> None:
        nonlocal frames
        steps, path = result.steps, target[pending[result.job]]
        if config.dtype == "tfrecord":
            write_tfrecord(path, Episode(steps["observations"], steps["actions"], steps["rewards"],
                                         steps["dones"].astype(bool)))
        else:
            write_sample_folder(path, steps)
        frames += result.length
        bar.update(1)

    if jobs:
        # Recording keeps every frame of every running episode in memory (about 25 KB a step): few slots.
        with open_rollouts(agent, tree, config.num_process, config.episode_length, config.env_id,
                           RECORDING_ENVS_PER_PROCESS, config.backend, config.address) as engine:
            # TFRecords keep frames and actions only: V's and M's outputs (a decode per step) are not computed.
            results = engine.run(params[None], jobs, record=True, on_result=save,
                                 model_outputs=config.dtype != "tfrecord")
    else:
        results = []
    bar.close()
    seconds = time.monotonic() - start
    scores = [result.total_reward for result in results]
    score = f", reward {np.mean(scores):.1f} +- {np.std(scores):.1f}" if scores else ""
    return (f"sampled {len(jobs)} episodes with generation {label} ({len(config.indices) - len(jobs)} already "
            f"complete), {frames} frames in {seconds:.1f} s{score} -> {folder}")
