"""Resident memory over long runs: CMA-ES for many generations and random sampling for many episodes.

    python benchmarks/bench_memory_growth.py --generations 50 --episodes 200

Both run in this process exactly as the stage scripts run them, with the full-size V and M (random
weights: memory does not depend on what they learned) and tiny settings otherwise, so that many
generations and episodes fit in minutes. A thread reads resident memory (VmRSS, /proc) of this process
and of its worker processes twice a second. Printed per stage: driver and workers at the start (once
warm: after the first generation, or the first 10 episodes) and at the end, and the growth; the bar is
under 10%. The driver and per-worker figures are also what a full-size run needs: the models are the
real ones and the environments the real ones; only the number of workers multiplies the worker figure.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

from worldmodels.paths import ArtifactTree


def resident_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process just ended
        pass
    return 0.0


def worker_pids(pid: int) -> list[int]:
    """Spawned workers (multiprocessing's `spawn_main`) among the children of `pid`."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    pids = []
    for child in children:
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                pids.append(int(child))
        except OSError:
            pass
    return pids


class MemoryProbe:
    """Samples (driver MiB, largest worker MiB, workers' total MiB) of this process in a thread."""

    def __init__(self, interval: float = 0.5):
        import os

        self.pid, self.interval, self.latest = os.getpid(), interval, (0.0, 0.0, 0.0)
        self.marks: dict[str, tuple[float, float, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            workers = [resident_mib(pid) for pid in worker_pids(self.pid)]
            if workers:  # between stages there are no workers: keep the last reading that had them
                self.latest = (resident_mib(self.pid), max(workers), sum(workers))
            self._stop.wait(self.interval)

    def mark(self, name: str) -> None:
        self.marks[name] = self.latest

    def __enter__(self) -> "MemoryProbe":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def report(stage: str, start: tuple, end: tuple) -> bool:
    growth = [100 * (e - s) / s if s else float("nan") for s, e in zip(start, end)]
    print(f"{stage}: driver {start[0]:.0f} -> {end[0]:.0f} MiB ({growth[0]:+.1f}%), largest worker "
          f"{start[1]:.0f} -> {end[1]:.0f} MiB ({growth[1]:+.1f}%), all workers {start[2]:.0f} -> {end[2]:.0f} MiB "
          f"({growth[2]:+.1f}%)")
    return growth[0] < 10 and growth[2] < 10


def cma_es_run(tree: ArtifactTree, args, probe: MemoryProbe) -> None:
    from worldmodels.control.training import ControllerTrainingConfig, train_controller
    from worldmodels.memory.mdn_rnn import build_mdn_rnn, save_mdn_rnn
    from worldmodels.vision.vae import build_vae, save_vae

    save_vae(build_vae(), tree.vae_models)
    save_mdn_rnn(build_mdn_rnn(), tree.memory_models)
    config = dict(popsize=args.popsize, rollouts=1, episode_length=args.episode_length, num_process=args.num_process,
                  eval_every=5, eval_episodes=2)

    def mark_when_warm() -> None:  # after the first generation: models traced, workers up
        while not tree.generation(0).exists():
            time.sleep(0.05)
        time.sleep(2 * probe.interval)
        probe.mark("cma start")

    threading.Thread(target=mark_when_warm, daemon=True).start()
    train_controller(ControllerTrainingConfig(generations=args.generations, **config), tree)
    probe.mark("cma end")


def sampling_run(tree: ArtifactTree, args, probe: MemoryProbe) -> None:
    from worldmodels.data.sampling import SamplingConfig, sample_random

    def on_episode(index: int, length: int) -> None:
        done[0] += 1
        if done[0] == 10:
            probe.mark("sampling start")

    done = [0]
    sample_random(SamplingConfig(total_episodes=args.episodes, episode_length=args.episode_length,
                                 num_process=args.num_process), tree, on_episode)
    probe.mark("sampling end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=50)
    parser.add_argument("--popsize", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--episode_length", type=int, default=100)
    parser.add_argument("--num_process", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root, MemoryProbe() as probe:
        tree = ArtifactTree(Path(root))
        cma_es_run(tree, args, probe)
        sampling_run(tree, args, probe)
    flat = report(f"CMA-ES, generations 1 -> {args.generations}", probe.marks["cma start"], probe.marks["cma end"])
    flat &= report(f"sampling, episodes 10 -> {args.episodes}", probe.marks["sampling start"],
                   probe.marks["sampling end"])
    print("memory stays flat (growth under 10%)" if flat else "MEMORY GROWS by 10% or more")


if __name__ == "__main__":
    main()
