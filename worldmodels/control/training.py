"""CMA-ES over the controller's parameters, fitness measured in the real environment.

Plain ask / tell: every generation's candidates run on the same training tracks (common random
numbers make the ranking less noisy), and every `eval_every` generations the CMA-ES mean runs on
held-out tracks; the best evaluated mean is kept, as the original did.  With `--dream 1` the training
episodes run in M's dream instead (`dream.py`); held-out evaluations always drive the real car.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from worldmodels.cli import flag, require_at_least
from worldmodels.control.agent import Agent
from worldmodels.control.controller import ControllerConfig
from worldmodels.control.es_state import new_optimizer
from worldmodels.control.generations import finished_generations, generation_summary, load_state, write_generation
from worldmodels.control.warm_start import resolve_initial_params
from worldmodels.control.backends import Rollouts, open_rollouts
from worldmodels.control.dream import DreamRollouts
from worldmodels.control.rollout import EpisodeJob
from worldmodels.data.env import DEFAULT_ENV_ID
from worldmodels.errors import WorldModelsError
from worldmodels.files import (CsvLog, atomic_path, file_fingerprint, read_json, remove_stale_temporaries,
                               write_json_atomic)
from worldmodels.paths import ArtifactTree
from worldmodels.progress import progress
from worldmodels.seeds import CMA_HELD_OUT, CMA_TRAINING, derive_seed
from worldmodels.stages import stage
from worldmodels.workers import address_flag, backend_flag

REWARD_COLUMNS = ("generation", "mean", "best", "worst", "sigma", "seconds", "evaluation", "env_steps")
EVALUATION_COLUMNS = ("generation", "mean", "std", "episodes", "best_so_far", "env_steps")
# Flags that must not change when a run resumes: they define what the saved generations mean.
FIXED_ON_RESUME = ("popsize", "rollouts", "episode_length", "sigma", "covariance", "seed", "env_id", "init_from",
                   "dream", "temperature", "dashboard", "dashboard_sigma")


@dataclass(frozen=True)
class ControllerTrainingConfig:
    """Flags of `train_controller.py`, with the paper's defaults."""

    generations: int = flag(2000, "generations to reach (re-running resumes after the last finished one)")
    popsize: int = flag(64, "CMA-ES population size")
    rollouts: int = flag(16, "episodes per candidate; fitness is their mean total reward")
    episode_length: int = flag(1000, "maximum steps per episode")
    num_process: int = flag(os.cpu_count() or 1, "environment worker processes")
    envs_per_process: int = flag(8, "environments each worker steps per request")
    backend: str = backend_flag()
    address: str = address_flag()
    sigma: float = flag(0.1, "initial CMA-ES step size")
    covariance: str = flag("full", "CMA-ES covariance: full (the paper) or diagonal (separable CMA-ES: faster "
                           "adaptation and O(n) cost for the 867 parameters)", choices=("full", "diagonal"))
    eval_every: int = flag(25, "generations between held-out evaluations of the CMA-ES mean")
    eval_episodes: int = flag(1024, "held-out episodes per evaluation")
    seed: int = flag(0, "seed of CMA-ES and of the training tracks")
    data: str = flag("local", "where V and M come from", choices=("local", "s3"))
    env_id: str = flag(DEFAULT_ENV_ID, "gymnasium environment id")
    max_idle_steps: int = flag(0, "end a training episode after this many consecutive steps without a new track tile "
                               "(0: never); held-out and test evaluations always run full episodes")
    init_from: str = flag("", "start CMA-ES from a trained controller: a generation of this tree (number, 'max' or "
                          "'best'), a params .npy file, a generation folder, or another artifact tree (e.g. an "
                          "installed archive); a different run already in control/ is moved to control-archive/")
    dream: int = flag(0, "1: training episodes run in M's dream (M trained with train_memory.py --reward_done 1), "
                      "no environment stepped; held-out evaluations still drive the real car", choices=(0, 1))
    temperature: float = flag(1.0, "with --dream 1: temperature of M's mixture (above 1, a more random dream world)")
    dashboard: int = flag(0, "1: C also reads the gauges of the frame's indicator bar (speed, ABS, steering, "
                          "gyroscope), which V's crop removes; an --init_from controller without them starts with "
                          "zero weights on them", choices=(0, 1))
    dashboard_sigma: float = flag(0.0, "with --dashboard 1: initial step size of the gauges' weights (0: --sigma); "
                                  "a warm start's tuned [z, h] weights want a small --sigma, its new gauge weights, "
                                  "at zero, a larger one")

    def validate(self) -> "ControllerTrainingConfig":
        require_at_least(self, 1, "generations", "rollouts", "episode_length", "num_process", "envs_per_process",
                         "eval_every", "eval_episodes")
        require_at_least(self, 0, "max_idle_steps")
        require_at_least(self, 2, "popsize")
        if self.sigma <= 0:
            raise WorldModelsError(f"--sigma must be > 0, got {self.sigma}")
        if self.dashboard_sigma < 0:
            raise WorldModelsError(f"--dashboard_sigma must be >= 0, got {self.dashboard_sigma}")
        if self.dashboard_sigma and not self.dashboard:
            raise WorldModelsError("--dashboard_sigma needs --dashboard 1")
        if self.temperature <= 0:
            raise WorldModelsError(f"--temperature must be > 0, got {self.temperature}")
        if self.dream and self.dashboard:
            raise WorldModelsError("--dashboard 1 cannot train in the dream (--dream 1): M does not predict the gauges")
        return self


def training_jobs(config: ControllerTrainingConfig, generation: int, candidates: int) -> list[EpisodeJob]:
    seeds = [derive_seed(CMA_TRAINING, config.seed, generation, r) for r in range(config.rollouts)]
    return [EpisodeJob(seed, candidate, config.max_idle_steps) for candidate in range(candidates) for seed in seeds]


def step_scales(controller: ControllerConfig, sigma: float, dashboard_sigma: float) -> np.ndarray | None:
    """Per-parameter multipliers of CMA-ES's initial step size: `dashboard_sigma` on the gauges' weights."""
    if not dashboard_sigma:
        return None
    scales = np.ones(controller.num_params)
    scales[controller.dashboard_weights] = dashboard_sigma / sigma
    return scales


def held_out_jobs(episodes: int) -> list[EpisodeJob]:
    """The fixed held-out tracks: the same for every generation and every run."""
    return [EpisodeJob(derive_seed(CMA_HELD_OUT, index), 0) for index in range(episodes)]


def model_fingerprints(tree: ArtifactTree) -> dict[str, str]:
    """Which V and M a CMA-ES run was trained on."""
    from worldmodels.memory.mdn_rnn import WEIGHTS_NAME as MDN_WEIGHTS
    from worldmodels.vision.vae import WEIGHTS_NAME as VAE_WEIGHTS

    return {"vae": file_fingerprint(tree.vae_models / VAE_WEIGHTS),
            "mdn_rnn": file_fingerprint(tree.memory_models / MDN_WEIGHTS)}


def archive_if_changed(tree: ArtifactTree, models: dict[str, str], init_from: str) -> Path | None:
    """Move an earlier run aside when V or M were retrained since (the upstream second generation), or when
    a warm start asks for a new run."""
    path = tree.control / "config.json"
    if not finished_generations(tree) or not path.is_file():
        return None
    saved = read_json(path)
    if saved.get("models") == models and (not init_from or saved.get("init_from", "") == init_from):
        return None
    archive = tree.control_archive(time.strftime("%Y%m%d-%H%M%S"))
    archive.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tree.control, archive)
    return archive


def _check_resume(config: ControllerTrainingConfig, tree: ArtifactTree) -> None:
    path = tree.control / "config.json"
    if not path.is_file():
        return
    saved = read_json(path)
    defaults = asdict(ControllerTrainingConfig())  # flags that runs of earlier versions did not record
    changed = [f"--{name} {saved.get(name, defaults[name])} -> {getattr(config, name)}" for name in FIXED_ON_RESUME
               if saved.get(name, defaults[name]) != getattr(config, name)]
    if changed:
        raise WorldModelsError(f"{path}: cannot resume with changed flags ({', '.join(changed)}); "
                               f"keep them, or move {tree.control} away to start a new run")


class ControllerTrainer:
    """One CMA-ES run: resumes from the newest finished generation folder."""

    def __init__(self, config: ControllerTrainingConfig, tree: ArtifactTree, agent: Agent,
                 initial_mean: np.ndarray | None = None):
        self.config, self.tree, self.agent = config.validate(), tree, agent
        controller = agent.controller.with_dashboard(config.dashboard)
        remove_stale_temporaries(tree.generations)
        done = finished_generations(tree)
        if done:
            _check_resume(config, tree)
            self.es = load_state(tree, done[-1])
            if len(self.es.mean) != controller.num_params:
                raise WorldModelsError(f"{tree.generation(done[-1])}: optimizer has {len(self.es.mean)} parameters, "
                                       f"the current V and M need {controller.num_params}")
            self.next_generation = done[-1] + 1
        else:
            mean = np.zeros(controller.num_params) if initial_mean is None else initial_mean.astype(np.float64)
            self.es = new_optimizer(mean, config.sigma, config.popsize, config.covariance,
                                    step_scales(controller, config.sigma, config.dashboard_sigma))
            self.next_generation = 0
        write_json_atomic(tree.control / "config.json", {**asdict(config), "models": model_fingerprints(tree)})
        self.rewards_log = CsvLog(tree.rewards_log, REWARD_COLUMNS)
        self.evaluation_log = CsvLog(tree.control / "evaluations.log", EVALUATION_COLUMNS)
        self._log_unlogged(done)

    def _log_unlogged(self, finished: list[int]) -> None:
        """A kill between renaming a generation into place and logging it leaves it out of rewards.log."""
        with self.tree.rewards_log.open() as handle:
            logged = {row["generation"] for row in csv.DictReader(handle)}
        for number in finished:
            if str(number) not in logged:
                self.rewards_log.append(generation_summary(self.tree, number))

    def best_evaluation(self) -> float:
        path = self.tree.best_controller / "best.json"
        return read_json(path)["mean"] if path.is_file() else -np.inf

    def run_generation(self, engine: Rollouts, generation: int, dream: DreamRollouts | None = None) -> dict:
        """One generation: its candidates run on `dream` when given (no env steps), else on `engine`, which
        also scores the mean on the held-out tracks every `eval_every` generations."""
        start = time.monotonic()
        # pycma draws from numpy's global generator: seed it per generation so a resumed run repeats exactly.
        np.random.seed(derive_seed(CMA_TRAINING, self.config.seed, generation, 1 << 20))
        # CMA-ES gets its own float64 samples back: its step-size rule (TPA) checks mirrored pairs exactly.
        solutions = self.es.ask()
        population = np.asarray(solutions, np.float32)
        jobs = training_jobs(self.config, generation, len(population))
        bar = progress(len(jobs), f"generation {generation}", unit="episode")
        results = (dream or engine).run(population, jobs, on_result=lambda _: bar.update(1))
        bar.close()
        rewards = np.array([result.total_reward for result in results], np.float32).reshape(len(population), -1)
        env_steps = 0 if dream else sum(result.length for result in results)
        fitness = rewards.mean(axis=1)
        self.es.tell(solutions, (-fitness).tolist())
        summary = {"generation": generation, "mean": float(fitness.mean()), "best": float(fitness.max()),
                   "worst": float(fitness.min()), "sigma": float(self.es.sigma), "seconds": 0.0, "evaluation": ""}
        arrays = {"population-params": population, "best-params": population[int(np.argmax(fitness))],
                  "mean-params": np.asarray(self.es.mean, np.float32), "epoch-results": rewards}
        if (generation + 1) % self.config.eval_every == 0:
            summary["evaluation"], evaluation_steps = self.evaluate_mean(engine, generation, arrays["mean-params"])
            env_steps += evaluation_steps
        summary["seconds"], summary["env_steps"] = time.monotonic() - start, env_steps
        write_generation(self.tree, generation, arrays, self.es, summary)
        self.rewards_log.append(summary)
        return summary

    def evaluate_mean(self, engine: Rollouts, generation: int, mean_params: np.ndarray) -> tuple[float, int]:
        """Score the CMA-ES mean on the held-out tracks (full episodes); returns the mean and the env steps."""
        jobs = held_out_jobs(self.config.eval_episodes)
        bar = progress(len(jobs), f"held-out evaluation {generation}", unit="episode")
        results = engine.run(mean_params[None], jobs, on_result=lambda _: bar.update(1))
        bar.close()
        scores = np.array([result.total_reward for result in results])
        mean = float(scores.mean())
        best = max(mean, self.best_evaluation())
        if mean >= best:
            best_folder = self.tree.best_controller
            with atomic_path(best_folder / "best-params.npy") as temp:
                np.save(temp, mean_params)
            write_json_atomic(best_folder / "best.json", {"generation": generation, "mean": mean,
                                                          "std": float(scores.std()), "episodes": len(scores)})
        env_steps = sum(result.length for result in results)
        self.evaluation_log.append({"generation": generation, "mean": mean, "std": float(scores.std()),
                                    "episodes": len(scores), "best_so_far": best, "env_steps": env_steps})
        return mean, env_steps


# control/ is pulled too: a run on another box resumes where it stopped.
@stage("train_controller", inputs=lambda config, tree: [tree.vae_models, tree.memory_models, tree.control])
def train_controller(config: ControllerTrainingConfig, tree: ArtifactTree) -> list[dict]:
    """Run CMA-ES generations until `config.generations` exist; returns the summaries of this run's."""
    config.validate()
    agent = Agent.load(tree)
    initial_mean = None
    if config.init_from:  # resolved before an earlier run is moved away: it may be the source
        initial_mean, source = resolve_initial_params(tree, config.init_from)
        layout = agent.controller.for_params(initial_mean, f"--init_from {source}")
        if layout.dashboard and not config.dashboard:
            raise WorldModelsError(f"--init_from {source}: this controller reads the dashboard; add --dashboard 1")
        if config.dashboard and not layout.dashboard:
            initial_mean = layout.with_dashboard(True).widen(initial_mean)
    # Checked before anything moves: an M that cannot dream must not cost the current run its place.
    dream = DreamRollouts.load(tree, agent.mdn_rnn, agent.controller, config.episode_length,
                               config.temperature) if config.dream else None
    archive = archive_if_changed(tree, model_fingerprints(tree), config.init_from)
    if archive:
        print(f"note: V or M changed, or --init_from asks for a new run; the earlier CMA-ES run was moved to "
              f"{archive} and a new run starts")
    trainer = ControllerTrainer(config, tree, agent, initial_mean)
    if config.init_from and trainer.next_generation == 0:
        print(f"CMA-ES starts from {source}")
    summaries = []
    if trainer.next_generation >= config.generations:
        return summaries
    with open_rollouts(agent, tree, config.num_process, config.episode_length, config.env_id,
                       config.envs_per_process, config.backend, config.address) as engine:
        for generation in range(trainer.next_generation, config.generations):
            summary = trainer.run_generation(engine, generation, dream)
            summaries.append(summary)
            evaluation = f", held-out {summary['evaluation']:.1f}" if summary["evaluation"] != "" else ""
            print(f"generation {generation}: mean {summary['mean']:.1f}, best {summary['best']:.1f}, "
                  f"worst {summary['worst']:.1f}, sigma {summary['sigma']:.4f}, {summary['seconds']:.1f} s"
                  f"{evaluation}", flush=True)
    return summaries
