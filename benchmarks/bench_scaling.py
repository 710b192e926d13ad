"""Scaling of rollouts with workers: local layouts and Ray actors, per-frame costs, and a paper-scale projection.

    python benchmarks/bench_scaling.py                       # 1 and 2 workers on this machine
    python benchmarks/bench_scaling.py --workers 1,2,4,8,16  # on a bigger box
    python benchmarks/bench_scaling.py --address auto        # Ray actors on a running cluster

One population evaluation (candidates x rollouts episodes of full length: an untrained controller never
finishes a lap early) runs on each layout: the central engine (one model thread for all environment
workers, today's layout up to 4 workers), shards (each worker a process with its own V, M and
environments) and Ray actors (the same shards as actors).  Each layout runs it twice on the same workers
and the second, steady-state run is timed, as in a CMA-ES run where workers live across generations.
Parallel efficiency is env steps/s with k workers over k times that with one.  All layouts must give the
same total reward, which is checked.  The per-frame costs (environment step, encoder, LSTM and
controller, one thread each) give the projection of one paper-scale generation (64 x 16 x 1,000 steps).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_hot_paths import cpu_description  # noqa: E402

PAPER_FRAMES = 64 * 16 * 1000
ORIGINAL_SECONDS = 2240  # one generation of the original run on 64 workers


def per_frame_costs(agent, env_id: str, steps: int) -> dict[str, float]:
    """Seconds per frame of an environment step and of the agent's two model parts, at MODEL_BATCH rows."""
    import tensorflow as tf

    from worldmodels.control.agent import MODEL_BATCH
    from worldmodels.control.controller import controller_actions
    from worldmodels.data.env import make_env, preprocess
    from worldmodels.vision.vae import to_unit_float

    env = make_env(steps + 1, env_id)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(steps):
        frame, *_ = env.step(rng.uniform([-1, 0, 0], [1, 1, 1]).astype(np.float32))
        preprocess(frame)
    env_cost = (time.perf_counter() - start) / steps
    env.close()

    frames = tf.constant(rng.integers(0, 255, (MODEL_BATCH, 64, 64, 3), dtype=np.uint8))
    hidden = agent.hidden_units
    h = c = tf.zeros((MODEL_BATCH, hidden))
    params = tf.constant(rng.normal(0, 0.1, (MODEL_BATCH, agent.controller.num_params)).astype(np.float32))
    z = tf.zeros((MODEL_BATCH, agent.vae.config.latent_dim))
    encode = tf.function(lambda x: agent.vae.encode(to_unit_float(x)))
    memory = tf.function(lambda z, h, c, p: agent.mdn_rnn.step(z, controller_actions(p, z, h, agent.controller), h, c))

    def cost(function, *args) -> float:
        function(*args)
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < 2.0:
            function(*args)
            calls += 1
        return (time.perf_counter() - start) / calls / MODEL_BATCH

    return {"env": env_cost, "encoder": cost(encode, frames), "lstm_controller": cost(memory, z, h, c, params)}


def timed_evaluation(rollouts, params, jobs) -> tuple[float, int, float]:
    rollouts.run(params, jobs)  # warm-up: workers start, steps are traced
    start = time.perf_counter()
    results = rollouts.run(params, jobs)
    seconds = time.perf_counter() - start
    return seconds, sum(r.length for r in results), sum(r.total_reward for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--rollouts", type=int, default=2)
    parser.add_argument("--episode_length", type=int, default=400)
    parser.add_argument("--layouts", default="central,shards,ray")
    parser.add_argument("--address", default="", help="Ray cluster (default: start Ray on this machine)")
    args = parser.parse_args()

    from worldmodels.control.agent import Agent
    from worldmodels.control.backends import CENTRAL_MODEL_WORKERS, ShardedRollouts
    from worldmodels.control.rollout import EpisodeJob, RolloutEngine
    from worldmodels.data.env import DEFAULT_ENV_ID
    from worldmodels.memory.mdn_rnn import build_mdn_rnn, save_mdn_rnn
    from worldmodels.paths import ArtifactTree
    from worldmodels.vision.vae import build_vae, save_vae

    print(cpu_description())
    counts = [int(count) for count in args.workers.split(",")]
    layouts = args.layouts.split(",")
    with tempfile.TemporaryDirectory() as folder:
        tree = ArtifactTree(Path(folder))
        save_vae(build_vae(), tree.vae_models)  # full-size V and M: their cost, not their skill, matters here
        save_mdn_rnn(build_mdn_rnn(), tree.memory_models)
        agent = Agent.load(tree)  # pins this process to one TensorFlow thread, as every worker is
        costs = per_frame_costs(agent, DEFAULT_ENV_ID, 300)
        frame = sum(costs.values())
        print("per-frame costs, one thread each: " + ", ".join(f"{k} {v * 1e3:.2f} ms" for k, v in costs.items())
              + f"; one core: {1 / frame:.0f} frames/s")
        params = np.random.default_rng(1).normal(0, 0.1, (args.candidates, agent.controller.num_params))
        jobs = [EpisodeJob(1000 + r, c) for c in range(args.candidates) for r in range(args.rollouts)]
        print(f"population evaluation: {args.candidates} candidates x {args.rollouts} episodes x "
              f"{args.episode_length} steps, steady state (second run on the same workers)")
        rates, rewards = {}, set()
        for layout in layouts:
            for count in counts:
                if layout == "central" and count > CENTRAL_MODEL_WORKERS:
                    continue
                if layout == "central":
                    rollouts = RolloutEngine(agent, count, args.episode_length, DEFAULT_ENV_ID)
                else:
                    rollouts = ShardedRollouts(tree, count, args.episode_length, DEFAULT_ENV_ID, 8,
                                               "ray" if layout == "ray" else "local", args.address)
                with rollouts:
                    seconds, steps, reward = timed_evaluation(rollouts, params, jobs)
                rates[layout, count] = steps / seconds
                rewards.add(round(reward, 3))
                efficiency = rates[layout, count] / (count * rates[layout, counts[0]] / counts[0])
                print(f"  {layout:7s} {count:3d} workers: {seconds:7.1f} s, {rates[layout, count]:7.0f} env steps/s, "
                      f"parallel efficiency {efficiency:.2f}", flush=True)
        print("same total reward on every layout: " + ("yes" if len(rewards) == 1 else f"NO {sorted(rewards)}"))
        # Beyond 4 workers every local run is sharded, and a cluster runs the same shards as Ray actors.
        for layout, where in (("shards", "one 64-core machine"), ("ray", "N machines of 64 cores")):
            if (layout, counts[-1]) not in rates:
                continue
            efficiency = rates[layout, counts[-1]] / (counts[-1] * rates[layout, counts[0]] / counts[0])
            projected = [f"{machines} x 64 cores: {PAPER_FRAMES * frame / (64 * machines * efficiency):.0f} s"
                         for machines in ((1,) if layout == "shards" else (1, 4, 16))]
            print(f"projected paper-scale generation ({PAPER_FRAMES:,} frames, 1 / {1 / frame:.0f} s a frame a core, "
                  f"{layout} efficiency {efficiency:.2f} at {counts[-1]} workers) on {where}: {'; '.join(projected)} "
                  f"(the original: {ORIGINAL_SECONDS} s on 64 workers)")


if __name__ == "__main__":
    main()
