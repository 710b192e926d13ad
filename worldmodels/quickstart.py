"""The whole World Models pipeline on a small built-in budget: a few minutes on a 2-core laptop.

    python -m worldmodels.quickstart

Random episodes -> V -> latent stats -> M -> CMA-ES generations -> evaluation -> a GIF of the agent.
Artifacts go to `<artifact root>/quickstart` (or `--root`), never mixing with a real run.  Re-running
resumes: every stage skips the work it has already finished.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from worldmodels.cli import flag, parse_config
from worldmodels.data.env import DEFAULT_ENV_ID
from worldmodels.errors import report_errors
from worldmodels.paths import HOME_VARIABLE, ArtifactTree, default_root


@dataclass(frozen=True)
class QuickstartConfig:
    """The small budget; every number can be raised from the command line."""

    root: str = flag("", "artifact root (default: <artifact root>/quickstart)")
    num_process: int = flag(os.cpu_count() or 1, "worker processes for sampling and CMA-ES")
    episodes: int = flag(16, "random episodes to sample")
    episode_length: int = flag(300, "steps per episode, everywhere")
    vae_epochs: int = flag(6, "VAE epochs")
    vae_learning_rate: float = flag(1e-3, "VAE learning rate (10x the paper's: few steps must show the road)")
    memory_epochs: int = flag(30, "MDN-RNN epochs")
    generations: int = flag(6, "CMA-ES generations")
    popsize: int = flag(8, "CMA-ES population")
    rollouts: int = flag(2, "episodes per candidate")
    eval_episodes: int = flag(8, "test episodes for the final score")
    max_idle_steps: int = flag(50, "end a training episode after this many steps without a new track tile")
    env_id: str = flag(DEFAULT_ENV_ID, "gymnasium environment id; CarRacing-v3 for the stock renderer")


def run_quickstart(config: QuickstartConfig) -> dict:
    from worldmodels.control.evaluation import EvaluationConfig, evaluate_generation
    from worldmodels.control.training import ControllerTrainingConfig, train_controller
    from worldmodels.data.latent_stats import LatentStatsConfig, sample_latent_stats
    from worldmodels.data.sampling import SamplingConfig, sample_random, summary_line
    from worldmodels.memory.training import MemoryTrainingConfig, train_memory
    from worldmodels.render import comparison_frames, record_episode, save_gif
    from worldmodels.vision.training import VAETrainingConfig, train_vae

    tree = ArtifactTree(Path(config.root).expanduser() if config.root else default_root() / "quickstart")
    start = time.monotonic()

    def stage(name: str, where: Path) -> None:
        print(f"[{time.monotonic() - start:6.0f} s] {name} -> {where}", flush=True)

    stage("1/6 sampling random episodes", tree.random_rollouts)
    print(summary_line(sample_random(SamplingConfig(num_process=config.num_process, total_episodes=config.episodes,
                                                    episode_length=config.episode_length, env_id=config.env_id),
                                     tree)))
    stage("2/6 training V", tree.vae_models)
    resume_vae = int((tree.vae_models / "checkpoints" / "checkpoint").is_file())
    vae = train_vae(VAETrainingConfig(load_model=resume_vae, epochs=config.vae_epochs, shuffle_buffer=5000,
                                      learning_rate=config.vae_learning_rate, log_every=10, save_every=500), tree)
    print(f"V: {vae['epochs']} epochs, loss {vae.get('loss', float('nan')):.1f}; log {tree.vae_log}")
    stage("3/6 encoding latent stats", tree.latent_stats)
    encoded = sample_latent_stats(LatentStatsConfig(episodes=config.episodes), tree)
    print(f"latent stats: {encoded['encoded']} episodes encoded, {encoded['skipped']} already current")
    stage("4/6 training M", tree.memory_models)
    resume_memory = int((tree.memory_models / "checkpoints" / "checkpoint").is_file())
    memory = train_memory(MemoryTrainingConfig(load_model=resume_memory, epochs=config.memory_epochs,
                                               batch_size=min(16, config.episodes), log_every=5), tree)
    print(f"M: {memory['epochs']} epochs, loss {memory['loss']:.3f}; log {tree.memory_log}")
    stage("5/6 CMA-ES", tree.generations)
    train_controller(ControllerTrainingConfig(
        generations=config.generations, popsize=config.popsize, rollouts=config.rollouts,
        episode_length=config.episode_length, num_process=config.num_process, eval_every=config.generations,
        eval_episodes=config.eval_episodes, env_id=config.env_id, max_idle_steps=config.max_idle_steps), tree)
    stage("6/6 evaluating and recording", tree.evaluations)
    score = evaluate_generation(EvaluationConfig(generation="max", episodes=config.eval_episodes,
                                                 episode_length=config.episode_length,
                                                 num_process=config.num_process, env_id=config.env_id), tree)
    steps = record_episode(tree, "max", episode_length=config.episode_length, env_id=config.env_id)
    gif = save_gif(comparison_frames(steps, scale=2), tree.control / "quickstart-agent.gif")
    print(f"evaluation: generation {score['generation']} scores {score['mean']:.1f} +- {score['std']:.1f} over "
          f"{score['episodes']} episodes of {config.episode_length} steps -> {score['file']}")
    print(f"GIF of the agent (observation | reconstruction | predicted next frame): {gif}")
    print(f"done in {time.monotonic() - start:.0f} s.  To use these artifacts with the stage scripts and the "
          f"notebook: export {HOME_VARIABLE}={tree.root}")
    return {"score": score, "gif": str(gif), "root": str(tree.root)}


@report_errors
def main(argv: list[str] | None = None) -> None:
    run_quickstart(parse_config(QuickstartConfig, __doc__, argv))


if __name__ == "__main__":
    main()
