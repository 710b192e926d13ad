"""Environments in worker processes, stepped by batched requests from the process that runs the models.

Each worker owns a fixed set of environment slots.  A request lists, per slot, either an action to
step with or a seed to reset to; the reply carries the preprocessed observation, the dashboard's gauges,
reward and done flag of each.  Requests are pipelined: the caller may send a second request before reading the
first reply, which is how the rollout engine overlaps model compute with environment stepping.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from worldmodels.errors import WorldModelsError


@dataclass(frozen=True)
class SlotRequest:
    slot: int  # the worker's local slot index
    action: np.ndarray | None  # step with this action ...
    seed: int | None = None  # ... or reset to this seed
    max_idle_steps: int = 0  # with a reset: end the episode after this many steps without a new tile (0: never)
    dashboard: bool = False  # also read the frame's gauges (only a controller that reads them pays for it)


@dataclass(frozen=True)
class SlotReply:
    slot: int
    observation: np.ndarray  # (64, 64, 3) uint8
    dashboard: np.ndarray | None  # (DASHBOARD_DIM,) float32: the frame's gauges, when the request asked
    reward: float
    terminated: bool  # the episode ended (off the playfield, or the lap complete)
    done: bool  # terminated or truncated: this slot needs a new episode


@dataclass(frozen=True)
class WorkerFailure:
    reason: str
    slot: int | None = None  # the local slot whose environment raised; None when the worker died


class SlotEnvs:
    """The environments of one worker, keyed by slot: steps or resets them as requests say."""

    def __init__(self, env_id: str, episode_length: int):
        self.env_id, self.episode_length = env_id, episode_length
        self.envs: dict = {}
        self.patience: dict[int, int] = {}  # per slot: the episode's max_idle_steps
        self.idle: dict[int, int] = {}  # per slot: consecutive steps without a new track tile
        self.slot: int | None = None  # the slot being served, for error reports

    def handle(self, requests: Sequence[SlotRequest]) -> list[SlotReply]:
        from worldmodels.data.dashboard import read_dashboard
        from worldmodels.data.env import make_env, preprocess

        replies = []
        for request in requests:
            self.slot = request.slot
            env = self.envs.get(request.slot)
            if env is None:
                env = self.envs[request.slot] = make_env(self.episode_length, self.env_id)
            if request.seed is not None:
                frame, _ = env.reset(seed=request.seed)
                reward, terminated, truncated = 0.0, False, False
                self.patience[request.slot], self.idle[request.slot] = request.max_idle_steps, 0
            else:
                frame, reward, terminated, truncated, _ = env.step(request.action)
                # A step's reward is -0.1 unless the car reached a new tile of the track.
                self.idle[request.slot] = self.idle[request.slot] + 1 if reward < 0 else 0
                truncated = truncated or 0 < self.patience[request.slot] <= self.idle[request.slot]
            gauges = read_dashboard(frame) if request.dashboard else None
            replies.append(SlotReply(request.slot, preprocess(frame), gauges, float(reward),
                                     bool(terminated), bool(terminated or truncated)))
        return replies

    def close(self) -> None:
        for env in self.envs.values():
            env.close()


def _worker_main(connection, env_id: str, episode_length: int) -> None:
    envs = SlotEnvs(env_id, episode_length)
    try:
        while True:
            command, requests = connection.recv()
            if command == "close":
                break
            connection.send(("ok", envs.handle(requests)))
    except (EOFError, KeyboardInterrupt):
        pass
    except Exception as error:  # report which slot's episode raised, then exit: the parent replaces the worker
        connection.send(("error", WorkerFailure(f"{type(error).__name__}: {error}", envs.slot)))
    finally:
        envs.close()


class EnvPool:
    """`num_process` workers; slot s lives in worker s % num_process as local slot s // num_process.

    A worker that dies or whose environment raises is reported by `receive`, and `restart` replaces it;
    the rollout engine then re-runs the episodes it held.
    """

    def __init__(self, num_process: int, env_id: str, episode_length: int):
        if num_process < 1:
            raise WorldModelsError(f"--num_process must be >= 1, got {num_process}")
        self.num_process, self.env_id, self.episode_length = num_process, env_id, episode_length
        self.connections: list = [None] * num_process
        self.processes: list = [None] * num_process
        for worker in range(num_process):
            self._start(worker)

    def _start(self, worker: int) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_worker_main, args=(child, self.env_id, self.episode_length), daemon=True)
        process.start()
        child.close()
        self.connections[worker], self.processes[worker] = parent, process

    def restart(self, worker: int) -> None:
        """Replace a worker that died or failed with a fresh one (its environments start over)."""
        self.connections[worker].close()
        process = self.processes[worker]
        if process.is_alive():
            process.kill()
        process.join(timeout=5)
        self._start(worker)

    def locate(self, slot: int) -> tuple[int, int]:
        return slot % self.num_process, slot // self.num_process

    def send(self, requests: dict[int, list[SlotRequest]]) -> list[int]:
        """Send each worker its requests (keyed by worker); returns the workers to receive from."""
        for worker, worker_requests in requests.items():
            try:
                self.connections[worker].send(("step", worker_requests))
            except OSError:  # a dead worker: `receive` reports it
                pass
        return list(requests)

    def receive(self, workers: Sequence[int]) -> tuple[dict[int, list[SlotReply]], dict[int, WorkerFailure]]:
        """Replies of the workers that answered, and why each other one failed (it died, or its env raised)."""
        replies, failures = {}, {}
        for worker in workers:
            try:
                status, payload = self.connections[worker].recv()
            except (EOFError, OSError):
                code = self.processes[worker].exitcode
                failures[worker] = WorkerFailure("it died" + (f" (exit code {code})" if code is not None else ""))
                continue
            if status == "error":
                failures[worker] = payload
            else:
                replies[worker] = payload
        return replies, failures

    def close(self) -> None:
        for connection in self.connections:
            try:
                connection.send(("close", None))
            except (BrokenPipeError, OSError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()

    def __enter__(self) -> "EnvPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class InlineEnvPool:
    """The `EnvPool` interface with every environment in this process: one core runs model and envs in turn.

    Used inside rollout shards (worker processes and Ray actors), which are themselves one core each.
    """

    num_process = 1

    def __init__(self, env_id: str, episode_length: int):
        self.env_id, self.episode_length = env_id, episode_length
        self.envs = SlotEnvs(env_id, episode_length)
        self.pending: list[SlotReply] | WorkerFailure | None = None

    def locate(self, slot: int) -> tuple[int, int]:
        return 0, slot

    def send(self, requests: dict[int, list[SlotRequest]]) -> list[int]:
        if 0 not in requests:
            return []
        try:
            self.pending = self.envs.handle(requests[0])
        except Exception as error:
            self.pending = WorkerFailure(f"{type(error).__name__}: {error}", self.envs.slot)
        return [0]

    def receive(self, workers: Sequence[int]) -> tuple[dict[int, list[SlotReply]], dict[int, WorkerFailure]]:
        pending, self.pending = self.pending, None
        if not workers or pending is None:
            return {}, {}
        return ({}, {0: pending}) if isinstance(pending, WorkerFailure) else ({0: pending}, {})

    def restart(self, worker: int) -> None:
        self.envs.close()
        self.envs = SlotEnvs(self.env_id, self.episode_length)

    def close(self) -> None:
        self.envs.close()
