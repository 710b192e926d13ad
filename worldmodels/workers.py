"""Independent work items on a set of workers: local processes or Ray actors, the same code around both.

A worker is built once from a `Recipe` (a top-level function and its arguments: it loads models and
environments) and then answers many items; items are pure functions of their payload, so an item whose
worker died is simply run again on a fresh worker and gives the same bytes.  The driver keeps two items
in flight per worker, so a worker never waits for its next item.  Only `RayWorkers` imports Ray.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from worldmodels.cli import flag
from worldmodels.errors import WorldModelsError

MAX_ATTEMPTS = 3  # runs of one item on workers that died before the stage gives up
IN_FLIGHT = 2  # items queued per worker
BACKENDS = ("local", "ray")
# Threads per worker: results of TensorFlow's CPU kernels depend on the thread count (on CPUs where oneDNN
# is off), so every worker of every backend, and the stage's own process, use the same one.
WORKER_THREADS = 1
# Workers compute on the CPU: dozens of processes must not each claim a GPU's memory.
WORKER_ENVIRONMENT = {"TF_NUM_INTRAOP_THREADS": str(WORKER_THREADS), "TF_NUM_INTEROP_THREADS": str(WORKER_THREADS),
                      "OMP_NUM_THREADS": str(WORKER_THREADS), "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}


def pin_worker_threads() -> None:
    """Run this process's TensorFlow with WORKER_THREADS threads, as every worker and Ray actor does, so the
    models give the same numbers here; a no-op once TensorFlow has started (e.g. in the quickstart)."""
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(WORKER_THREADS)
        tf.config.threading.set_inter_op_parallelism_threads(WORKER_THREADS)
    except RuntimeError:
        pass


def backend_flag():
    return flag("local", "where the work runs: processes on this machine, or Ray actors on a cluster "
                "(pip install -e \".[cpu,ray]\"); files and scores are the same", choices=BACKENDS)


def address_flag():
    return flag("", "Ray cluster address for --backend ray: host:port, 'auto' inside a cluster, or empty to "
                "start Ray on this machine")


def model_files(*folders: Path) -> dict[str, bytes]:
    """Weights and configs of model folders as bytes keyed `<stage folder>/<models folder>/<name>`, so
    workers on other machines load the same models (`unpack_files`)."""
    files = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")) + sorted(folder.glob("*.weights.h5")):
            files[f"{folder.parent.name}/{folder.name}/{path.name}"] = path.read_bytes()
    return files


def unpack_files(files: dict[str, bytes]) -> Path:
    """Write `model_files` output below a new temporary root (an artifact tree of just those models)."""
    root = Path(tempfile.mkdtemp(prefix="worldmodels-worker-"))
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


class LazyItems(Sequence):
    """Payloads made when a worker is about to get them (e.g. an episode read from disk), not all at once."""

    def __init__(self, count: int, make: Callable[[int], Any]):
        self.count, self.make = count, make

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, key: int) -> Any:
        return self.make(key)


@dataclass(frozen=True)
class Recipe:
    """How to build one worker: `build(*args)` returns the function that answers an item's payload."""

    build: Callable[..., Callable[[Any], Any]]
    args: tuple = ()
    cpus: int = 1  # cores one worker keeps busy (Ray schedules by it)
    env: dict[str, str] = field(default_factory=lambda: dict(WORKER_ENVIRONMENT))


def _build(recipe: Recipe) -> Callable[[Any], Any]:
    """The worker's answering function; one that could not be built answers every item with why (a damaged
    model file is the same on every worker: reported once, not retried)."""
    try:
        return recipe.build(*recipe.args)
    except Exception as error:
        reason = str(error) if isinstance(error, WorldModelsError) else f"{type(error).__name__}: {error}"

        def refuse(payload: Any) -> Any:
            raise WorldModelsError(reason)
        return refuse


def _receive(connection, inbox: queue.Queue) -> None:
    while True:
        try:
            message = connection.recv()
        except (EOFError, OSError, KeyboardInterrupt):
            message = None
        inbox.put(message)
        if message is None:
            return


def _serve(connection, environment: dict[str, str], recipe_bytes: bytes) -> None:
    os.environ.update(environment)  # before the recipe's modules import TensorFlow
    answer = _build(pickle.loads(recipe_bytes))
    # Items are read as they arrive, on a thread: otherwise the driver sending the next item and this worker
    # sending a result, both larger than the pipe's buffer (an episode's frames in, its latents out), would
    # each wait for the other to read, forever.
    inbox: queue.Queue = queue.Queue()
    threading.Thread(target=_receive, args=(connection, inbox), daemon=True).start()
    while (message := inbox.get()) is not None:
        key, payload = message
        try:
            connection.send((key, "ok", answer(payload)))
        except Exception as error:  # the item's own failure: reported, not retried
            reason = str(error) if isinstance(error, WorldModelsError) else f"{type(error).__name__}: {error}"
            connection.send((key, "error", reason))


class InlineWorkers:
    """One worker in this process (a single local worker: no process to start, nothing to send)."""

    count = 1

    def __init__(self, recipe: Recipe):
        self.answer = recipe.build(*recipe.args)
        self.pending: list[tuple[int, Any]] = []

    def submit(self, worker: int, key: int, payload: Any) -> None:
        self.pending.append((key, payload))

    def wait(self, busy: dict[int, list[int]]) -> list[tuple[int, int, str, Any]]:
        key, payload = self.pending.pop(0)
        return [(0, key, "ok", self.answer(payload))]  # its exceptions are this process's: they propagate

    def replace(self, worker: int) -> None:
        raise AssertionError("an inline worker cannot die alone")

    def close(self) -> None:
        pass


class ProcessWorkers:
    """`count` spawned processes on this machine (not daemons: a rollout worker may start its own)."""

    def __init__(self, recipe: Recipe, count: int):
        self.recipe, self.recipe_bytes = recipe, pickle.dumps(recipe)
        self.connections: list = [None] * count
        self.processes: list = [None] * count
        for worker in range(count):
            self.start(worker)

    @property
    def count(self) -> int:
        return len(self.processes)

    def start(self, worker: int) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=_serve, args=(child, self.recipe.env, self.recipe_bytes))
        process.start()
        child.close()
        self.connections[worker], self.processes[worker] = parent, process

    def submit(self, worker: int, key: int, payload: Any) -> None:
        try:
            self.connections[worker].send((key, payload))
        except OSError:  # dead: `wait` reports it
            pass

    def wait(self, busy: dict[int, list[int]]) -> list[tuple[int, int, str, Any]]:
        """(worker, key, status, result) of finished items; status 'died' fails all of a worker's items."""
        ready = multiprocessing.connection.wait([self.connections[worker] for worker in busy if busy[worker]])
        done = []
        for worker in [w for w in busy if self.connections[w] in ready]:
            try:
                key, status, result = self.connections[worker].recv()
                done.append((worker, key, status, result))
            except (EOFError, OSError):
                self.processes[worker].join(timeout=5)
                code = self.processes[worker].exitcode
                reason = f"worker process died (exit code {code})"
                done.extend((worker, key, "died", reason) for key in busy[worker])
        return done

    def replace(self, worker: int) -> None:
        self.connections[worker].close()
        if self.processes[worker].is_alive():
            self.processes[worker].kill()
        self.processes[worker].join(timeout=5)
        self.start(worker)

    def close(self) -> None:
        for connection in self.connections:
            try:
                connection.send(None)
            except OSError:
                pass
        for process in self.processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


class RayWorkers:
    """`count` Ray actors on the cluster at `address` (`auto` inside a cluster, empty: a local instance)."""

    def __init__(self, recipe: Recipe, count: int, address: str = ""):
        try:
            import ray
        except ImportError:
            raise WorldModelsError("--backend ray needs Ray: pip install -e \".[cpu,ray]\"") from None
        self.ray, self.recipe = ray, recipe
        if not ray.is_initialized():
            try:
                ray.init(address=address or None, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
            except (ConnectionError, ValueError, RuntimeError) as error:
                raise WorldModelsError(f"--address {address or '(none)'}: cannot reach a Ray cluster ({error})") from None
        self.actor_class = ray.remote(_RayWorker)
        self.actors: list = [self._new_actor() for _ in range(count)]
        self.refs: dict = {}  # ObjectRef -> (worker, key)

    @property
    def count(self) -> int:
        return len(self.actors)

    def _new_actor(self):
        return self.actor_class.options(num_cpus=self.recipe.cpus, max_restarts=0, max_task_retries=0,
                                        runtime_env={"env_vars": self.recipe.env}).remote(self.recipe)

    def submit(self, worker: int, key: int, payload: Any) -> None:
        self.refs[self.actors[worker].run.remote(payload)] = (worker, key)

    def wait(self, busy: dict[int, list[int]]) -> list[tuple[int, int, str, Any]]:
        ready, _ = self.ray.wait(list(self.refs), num_returns=1)
        done = []
        for ref in ready:
            worker, key = self.refs.pop(ref)
            try:
                done.append((worker, key, "ok", self.ray.get(ref)))
            except self.ray.exceptions.RayActorError as error:
                done.append((worker, key, "died", f"Ray actor died ({type(error).__name__})"))
            except self.ray.exceptions.RayTaskError as error:
                cause = error.cause
                reason = str(cause) if isinstance(cause, WorldModelsError) else f"{type(cause).__name__}: {cause}"
                done.append((worker, key, "error", reason))
        return done

    def replace(self, worker: int) -> None:
        """A fresh actor (Ray places it on any node with room) instead of one that died."""
        for ref in [ref for ref, (owner, _) in self.refs.items() if owner == worker]:
            del self.refs[ref]  # their items are re-run by the caller
        self.ray.kill(self.actors[worker], no_restart=True)
        self.actors[worker] = self._new_actor()

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)


class _RayWorker:
    def __init__(self, recipe: Recipe):
        os.environ.update(recipe.env)
        self.answer = _build(recipe)

    def run(self, payload: Any) -> Any:
        return self.answer(payload)


def open_workers(recipe: Recipe, count: int, backend: str = "local", address: str = ""):
    if backend not in BACKENDS:
        raise WorldModelsError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if count < 1:
        raise WorldModelsError(f"--num_process must be >= 1, got {count}")
    if backend == "ray":
        return RayWorkers(recipe, count, address)
    return InlineWorkers(recipe) if count == 1 else ProcessWorkers(recipe, count)


def run_items(workers, payloads: Sequence[Any], on_result: Callable[[int, Any], None] | None = None) -> list:
    """Run every payload on the workers; results come back in payload order, `on_result` sees each at once.

    A worker that dies is replaced and its items are re-run elsewhere; an item whose runs killed
    MAX_ATTEMPTS workers, or that raised, ends the stage with the reason.
    """
    results: list = [None] * len(payloads)
    queue = list(range(len(payloads)))[::-1]
    attempts = [0] * len(payloads)
    busy: dict[int, list[int]] = {worker: [] for worker in range(workers.count)}

    def feed(worker: int) -> None:
        while queue and len(busy[worker]) < IN_FLIGHT:
            key = queue.pop()
            attempts[key] += 1
            busy[worker].append(key)
            workers.submit(worker, key, payloads[key])

    for worker in busy:
        feed(worker)
    remaining = len(payloads)
    while remaining:
        died: dict[int, str] = {}
        for worker, key, status, result in workers.wait(busy):
            if key not in busy[worker]:
                continue  # a late answer from a worker already replaced
            if status == "died":
                died[worker] = result
                continue
            if status == "error":
                raise WorldModelsError(result)
            busy[worker].remove(key)
            results[key] = result
            remaining -= 1
            if on_result:
                on_result(key, result)
        for worker, reason in died.items():
            lost = busy[worker]
            busy[worker] = []
            for key in lost:
                if attempts[key] >= MAX_ATTEMPTS:
                    raise WorldModelsError(f"item {key} was running on {MAX_ATTEMPTS} workers that died ({reason})")
                queue.append(key)
            print(f"note: {reason}; started a new worker, {len(lost)} item(s) run again", file=sys.stderr, flush=True)
            workers.replace(worker)
        for worker in busy:
            feed(worker)
    return results
