"""Throughput of every TensorFlow hot path, and the CPU it was measured on.

    python benchmarks/bench_hot_paths.py

* V training through the real `train_vae` loop and its `training.csv`: with its defaults (fast layers,
  XLA), with fast layers and no XLA, and the same network from stock Keras layers without XLA (the
  straightforward reference), on the same sampled episodes in the same run;
* the encoder as rollouts use it (the agent's compiled step: encoder + controller + LSTM step);
* latent-stat encoding (`encode_frames`, batches of 1,000 frames);
* M's training step (batch 100 of whole 1,000-step episodes, as `train_memory.py` runs it);
* decoding as recordings use it (the agent's recorded step: the above plus V's decoder).

Figures depend on the CPU's vector extensions, printed first (AVX-512 machines run TensorFlow's
stock transposed convolutions 15x faster than AVX2-only ones).
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import numpy as np

VECTOR_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_description() -> str:
    """Model name, core count and vector extensions, from /proc/cpuinfo."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), []))
    present = [flag for flag in VECTOR_FLAGS if flag in flags]
    return f"{model}, {os.cpu_count()} cores, vector extensions: {' '.join(present) or 'none of ' + str(VECTOR_FLAGS)}"


def best_rate(function, items: int, repeats: int) -> float:
    """Items per second of the fastest of `repeats` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return items / min(times)


def vae_training_rate(tree, layers: str, xla: int, steps: int) -> float:
    """Median images/s over training.csv's windows, skipping the first (tracing, shuffle-buffer fill)."""
    from worldmodels.vision.training import VAETrainingConfig, train_vae

    log = tree.vae_log
    if log.exists():
        log.unlink()
    train_vae(VAETrainingConfig(epochs=1, layers=layers, xla=xla, log_every=max(steps // 6, 1), save_every=10 ** 9,
                                shuffle_buffer=2000), tree)
    with log.open() as handle:
        rates = [float(row["images_per_second"]) for row in csv.DictReader(handle)]
    return float(np.median(rates[1:] if len(rates) > 1 else rates))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4, help="random episodes sampled for V's training")
    parser.add_argument("--episode_length", type=int, default=1000)
    parser.add_argument("--num_process", type=int, default=2)
    parser.add_argument("--rollout_batch", type=int, default=16, help="live episodes per agent step")
    args = parser.parse_args()

    import tensorflow as tf

    from worldmodels.control.agent import Agent
    from worldmodels.data.sampling import SamplingConfig, sample_random
    from worldmodels.memory.mdn_rnn import build_mdn_rnn
    from worldmodels.memory.training import MemoryTrainer, MemoryTrainingConfig
    from worldmodels.paths import ArtifactTree
    from worldmodels.vision.vae import build_vae, encode_frames

    print(f"CPU: {cpu_description()}")
    print(f"TensorFlow {tf.__version__}, oneDNN {os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}")
    with tempfile.TemporaryDirectory() as folder:
        tree = ArtifactTree(Path(folder))
        sample_random(SamplingConfig(num_process=args.num_process, total_episodes=args.episodes,
                                     episode_length=args.episode_length), tree)
        steps = args.episodes * args.episode_length // 100
        default = vae_training_rate(tree, "fast", 1, steps)
        without_xla = vae_training_rate(tree, "fast", 0, steps)
        reference = vae_training_rate(tree, "reference", 0, steps)
        print(f"V training (train_vae.py, batch 100, {steps} steps each), images/s: defaults (fast layers, XLA) "
              f"{default:.1f}, fast layers without XLA {without_xla:.1f}, stock Keras layers without XLA "
              f"{reference:.1f}; defaults / stock {default / reference:.2f}")

        agent = Agent(build_vae(), build_mdn_rnn())
        rng = np.random.default_rng(0)
        batch = args.rollout_batch
        frames = rng.integers(0, 256, (batch, 64, 64, 3), dtype=np.uint8)
        h = np.zeros((batch, agent.hidden_units), np.float32)
        params = rng.normal(0, 0.1, (batch, agent.controller.num_params)).astype(np.float32)
        act = best_rate(lambda: agent.act(frames, h, h, params), batch, 50)
        recorded = best_rate(lambda: agent.act(frames, h, h, params, record=True), batch, 20)
        print(f"agent step in rollouts (encoder + C + LSTM step, batch {batch}), frames/s: {act:.0f}")
        print(f"agent step in recordings (the above + decoder, batch {batch}), frames/s: {recorded:.0f}")

        many = rng.integers(0, 256, (2000, 64, 64, 3), dtype=np.uint8)
        encoded = best_rate(lambda: encode_frames(agent.vae, many), len(many), 3)
        print(f"latent-stat encoding (encode_frames, batches of 1,000), frames/s: {encoded:.0f}")

        memory = MemoryTrainer(MemoryTrainingConfig(), tree, latent_dim=32)
        inputs = tf.constant(rng.normal(size=(100, 999, 35)), tf.float32)
        targets = tf.constant(rng.normal(size=(100, 999, 32)), tf.float32)
        mask = tf.ones((100, 999))
        sequences = best_rate(lambda: float(memory.train_step(inputs, targets, mask)), 100, 3)
        print(f"M training step (batch 100 x 999 steps), sequences/s: {sequences:.1f} "
              f"({sequences * 999:.0f} time steps/s)")


if __name__ == "__main__":
    main()
