"""The rollout engine: many episodes in lockstep, one model call per time step for all live episodes.

Used by CMA-ES training, evaluation and controller sampling alike.  The models are never called per
episode: each call takes every live episode of a group of slots.  By default the slots form two
groups that alternate, so while the workers step one half of the batch this process computes the
other half's actions and model time hides behind environment time (measured on 2 cores: 0.89 of
random-action speed with two groups, 0.84 with one call for the whole batch).  A finished slot is
refilled with the next episode at once, so the batch stays full until the queue runs dry.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from worldmodels.control.agent import Agent
from worldmodels.control.env_pool import EnvPool, InlineEnvPool, SlotReply, SlotRequest, WorkerFailure
from worldmodels.data.env import DEFAULT_ENV_ID
from worldmodels.errors import WorldModelsError
from worldmodels.workers import MAX_ATTEMPTS  # one retry budget for env workers and shards alike

PIPELINE_GROUPS = 2


@dataclass(frozen=True)
class EpisodeJob:
    seed: int  # track seed passed to env.reset
    candidate: int  # row of the parameter matrix that drives this episode
    max_idle_steps: int = 0  # end the episode early after this many steps without a new tile (0: never)


@dataclass
class EpisodeResult:
    job: int  # index into the job list
    seed: int
    candidate: int
    total_reward: float
    length: int
    steps: dict | None = None  # per-step arrays when recording


@dataclass
class _Slot:
    job: int | None = None
    needs_reset: bool = False
    observation: np.ndarray | None = None
    dashboard: np.ndarray | None = None
    total_reward: float = 0.0
    length: int = 0
    steps: dict = field(default_factory=dict)


EPISODE_FIELDS = ("observations", "actions", "rewards", "dones")
MODEL_FIELDS = ("mu", "logvar", "reconstructions", "predicted_latents")  # V's and M's outputs: a decode per step


class RolloutEngine:
    """Runs jobs (seed, candidate) through the agent; reuse one engine for many batches of jobs."""

    def __init__(self, agent: Agent, num_process: int, episode_length: int, env_id: str = DEFAULT_ENV_ID,
                 envs_per_process: int = 8, groups: int = PIPELINE_GROUPS):
        """`num_process` 0 steps the environments in this process (a shard's layout: nothing to overlap)."""
        self.agent, self.groups = agent, groups if num_process else 1
        self.slot_count = max(num_process, 1) * max(envs_per_process, self.groups)
        self.pool = EnvPool(num_process, env_id, episode_length) if num_process else InlineEnvPool(env_id, episode_length)

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> "RolloutEngine":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, params: np.ndarray, jobs: Sequence[EpisodeJob], record: bool = False,
            on_result: Callable[[EpisodeResult], None] | None = None, model_outputs: bool = True) -> list[EpisodeResult]:
        """Run every job to the end of its episode; results come back in job order.

        `on_result` sees each episode as it finishes, with its per-step arrays when `record` is set: the
        episode's own (EPISODE_FIELDS) and, with `model_outputs`, V's and M's (MODEL_FIELDS), which cost a
        decode per step. The returned results never hold those arrays, so long runs do not accumulate frames.
        """
        params = self.agent.controller.check_layout(params)
        params = params.reshape(-1, params.shape[-1])
        return _Run(self, params, list(jobs), record, on_result, record and model_outputs).execute()


class _Run:
    """The state of one `RolloutEngine.run`: which job each slot drives, and the LSTM state per slot."""

    def __init__(self, engine: RolloutEngine, params: np.ndarray, jobs: list[EpisodeJob], record: bool,
                 on_result: Callable[[EpisodeResult], None] | None, model_outputs: bool):
        self.agent, self.pool = engine.agent, engine.pool
        self.params, self.jobs, self.record, self.on_result = params, jobs, record, on_result
        self.model_outputs = model_outputs
        self.dashboard = self.agent.controller.for_params(params).dashboard  # do the workers read the gauges?
        self.fields = (EPISODE_FIELDS + MODEL_FIELDS if model_outputs else EPISODE_FIELDS) if record else ()
        self.queue = list(range(len(jobs)))[::-1]
        self.slots = [_Slot() for _ in range(min(engine.slot_count, len(jobs)))]
        self.h = np.zeros((len(self.slots), self.agent.hidden_units), np.float32)
        self.c = np.zeros_like(self.h)
        self.groups = [[s for s in range(len(self.slots)) if self.pool.locate(s)[1] % engine.groups == g]
                       for g in range(engine.groups)]
        self.results: list[EpisodeResult | None] = [None] * len(jobs)
        self.outstanding: list[list[int]] = [[] for _ in self.groups]  # per group: workers owing a reply
        self.attempts = [1] * len(jobs)

    def execute(self) -> list[EpisodeResult]:
        for index in range(len(self.slots)):
            self.assign(index)
        self.outstanding = [self.send(group) for group in self.groups]
        while any(self.outstanding):
            for g, group in enumerate(self.groups):
                if self.outstanding[g]:
                    self.receive(self.outstanding[g])
                # Also sends for a group whose only outstanding worker was just replaced.
                self.outstanding[g] = self.send(group)
        return self.results  # type: ignore[return-value]

    def assign(self, index: int) -> None:
        """Give a slot the next job (or none), with a fresh LSTM state."""
        slot = self.slots[index]
        slot.job = self.queue.pop() if self.queue else None
        slot.needs_reset, slot.total_reward, slot.length = slot.job is not None, 0.0, 0
        slot.steps = {name: [] for name in self.fields}
        self.h[index] = 0.0
        self.c[index] = 0.0

    def send(self, group: list[int]) -> list[int]:
        """One model call for the group's live episodes, then one request per worker: step or reset."""
        slots = self.slots
        live = [s for s in group if slots[s].job is not None and not slots[s].needs_reset]
        actions = {}
        if live:
            frames = np.stack([slots[s].observation for s in live])
            candidates = [self.jobs[slots[s].job].candidate for s in live]
            acted, self.h[live], self.c[live], extra = self.agent.act(
                frames, self.h[live], self.c[live], self.params[candidates], self.model_outputs,
                np.stack([slots[s].dashboard for s in live]) if self.dashboard else None)
            for row, s in enumerate(live):
                actions[s] = acted[row]
                if self.record:
                    steps = slots[s].steps
                    steps["observations"].append(frames[row])
                    steps["actions"].append(acted[row])
                    for name, values in zip(MODEL_FIELDS, extra or ()):
                        steps[name].append(values[row])
        requests: dict[int, list[SlotRequest]] = {}
        for s in group:
            slot = slots[s]
            if slot.job is None:
                continue
            worker, local = self.pool.locate(s)
            job = self.jobs[slot.job]
            seed = job.seed if slot.needs_reset else None
            requests.setdefault(worker, []).append(SlotRequest(local, actions.get(s), seed, job.max_idle_steps,
                                                                        self.dashboard))
        return self.pool.send(requests)

    def receive(self, workers: list[int]) -> None:
        replies, failures = self.pool.receive(workers)
        for worker, worker_replies in replies.items():
            for reply in worker_replies:
                self.apply(worker + reply.slot * self.pool.num_process, reply)
        for worker, failure in failures.items():
            self.replace_worker(worker, failure)

    def replace_worker(self, worker: int, failure: WorkerFailure) -> None:
        """Start a fresh worker and re-run its episodes from their reset: an episode is a function of its
        track seed and controller, so the re-run gives the result an undisturbed run would have.

        Each re-run counts against the episode whose environment raised, or against all the worker's
        episodes when it died; an episode that reaches MAX_ATTEMPTS ends the run."""
        held = [s for s in range(len(self.slots)) if self.pool.locate(s)[0] == worker and self.slots[s].job is not None]
        blamed = held if failure.slot is None else [s for s in held if self.pool.locate(s)[1] == failure.slot]
        for s in blamed:
            job = self.slots[s].job
            self.attempts[job] += 1
            if self.attempts[job] > MAX_ATTEMPTS:
                raise WorldModelsError(f"environment worker {worker} failed {MAX_ATTEMPTS} times running the episode "
                                       f"on track seed {self.jobs[job].seed}: {failure.reason}")
        print(f"note: environment worker {worker} failed ({failure.reason}); restarted, {len(held)} episode(s) "
              f"re-run", file=sys.stderr, flush=True)
        self.pool.restart(worker)
        for outstanding in self.outstanding:  # its pending replies are lost with it
            if worker in outstanding:
                outstanding.remove(worker)
        for s in held:
            self.queue.append(self.slots[s].job)  # taken back at once by `assign`, which clears the episode
            self.assign(s)

    def apply(self, index: int, reply: SlotReply) -> None:
        """Book a step's outcome; a finished episode is reported and its slot takes the next job."""
        slot = self.slots[index]
        slot.observation, slot.dashboard = reply.observation, reply.dashboard
        if slot.needs_reset:
            slot.needs_reset = False
            return
        slot.total_reward += reply.reward
        slot.length += 1
        if self.record:
            slot.steps["rewards"].append(reply.reward)
            slot.steps["dones"].append(reply.terminated)
        if not reply.done:
            return
        job = self.jobs[slot.job]
        summary = EpisodeResult(slot.job, job.seed, job.candidate, slot.total_reward, slot.length)
        self.results[slot.job] = summary
        if self.on_result:
            steps = None
            if self.record:
                steps = {name: np.asarray(values) for name, values in slot.steps.items()}
                steps["rewards"] = steps["rewards"].astype(np.float32)
                steps["actions"] = steps["actions"].astype(np.float32)
            self.on_result(dataclasses.replace(summary, steps=steps))
        self.assign(index)
