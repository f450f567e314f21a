"""The Ray executor: a pool of actors, each holding one set-up evaluator.

- Each actor reserves ``num_cpus``/``num_gpus`` and calls ``setup`` once, so a model
  loads once per worker. The pool has min(max_in_flight, what the cluster can hold)
  actors; each gets up to ``PIPELINE`` calls queued so it never waits on the driver
  (tasks go breadth-first: every actor gets one before any gets a second).
- A call that runs past ``timeout_s`` × its batch length is failed as a timeout, its
  actor is killed and replaced; the calls queued behind it go back to the queue.
- An actor that dies (a crash, out of memory, a lost node) reports its tasks ``lost``;
  the scheduler retries them up to ``max_retries``. A replacement actor is started.
- Actors also reserve the campaign's custom resources, and with ``memory_mb`` Ray's
  ``memory`` resource; their allocations past it fail as ``MemoryError`` (see
  :func:`workers.limits.cap_memory_growth`).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import time
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError, RayTaskError

from workers import registry
from workers.contract import EvalContext
from workers.executors import reaper
from workers.executors.base import Executor, ExecutorConfig, ExecutorError
from workers.limits import cap_memory_growth
from workers.runner import EvaluationTask, Outcome, run_tasks, setup_failure, worker_name

PIPELINE = 2


class _EvaluatorActor:
    """Holds an evaluator between calls (decorated with ``ray.remote`` at start)."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.evaluator: Any = None
        self.setup_error: str | None = None
        device = "cpu"
        if config.num_gpus > 0:
            try:
                import torch

                if torch.cuda.is_available():
                    device = "cuda:0"
            except ImportError:
                pass
        self.ctx = EvalContext(device=device, campaign=config.campaign)

    def ready(self) -> str:
        return worker_name()

    def run(self, tasks: list[EvaluationTask]) -> list[Outcome]:
        if self.evaluator is None:
            try:
                evaluator = registry.build(self.config.kind, self.config.config, self.config.target)
                evaluator.setup(self.config.config, self.ctx)
                self.evaluator = evaluator
                if self.config.memory_mb is not None:
                    cap_memory_growth(self.config.memory_mb)
            except (Exception, SystemExit) as exc:
                return setup_failure(tasks, exc)
        return run_tasks(self.evaluator, tasks, self.config.measure_names, self.ctx)


@dataclasses.dataclass
class _Call:
    ref: Any
    tasks: list[EvaluationTask]
    actor_index: int
    started: float | None = None


class RayExecutor(Executor):
    reports_starts_late = True  # a call starts on its actor before the driver learns of it

    def __init__(self, config: ExecutorConfig, address: str | None = None) -> None:
        super().__init__(config)
        self.address = address
        self._started_ray = False
        self._actors: list[Any] = []
        self._ready: list[Any] = []  # per actor: its pending `ready` call, None once placed
        self._actor_calls: list[collections.deque[_Call]] = []
        self._queue: collections.deque[EvaluationTask] = collections.deque()
        self._calls: dict[Any, _Call] = {}
        self._chunk = 1
        self._remote: Any = None
        self._started: list[int] = []  # evaluation ids whose call reached the head of its actor

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        if self._actors:
            return
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True,
                                      "configure_logging": False}
            if self.address:
                kwargs["address"] = self.address
            else:  # a private local Ray, never a stale or another user's cluster found on this host
                kwargs["address"] = "local"
                os.environ.setdefault("RAY_AUTH_MODE", "disabled")
            ray.init(**kwargs)
            self._started_ray = True
        cls = registry.build(self.config.kind, self.config.config, self.config.target)
        self._chunk = max(1, int(getattr(cls, "max_batch_size", 1) or 1))
        self._remote = ray.remote(_EvaluatorActor).options(
            num_cpus=self.config.num_cpus, num_gpus=self.config.num_gpus, memory=self.config.memory_bytes,
            resources=dict(self.config.custom_resources) or None, max_restarts=0, max_concurrency=1,
        )
        for _ in range(self._pool_size()):
            self._add_actor()
        if self._started_ray:
            with contextlib.suppress(RayError):  # agents start with the head; actors once placed
                ray.wait([ref for ref in self._ready if ref is not None], num_returns=len(self._ready), timeout=30)
            reaper.watch()  # a kill -9 of this process leaves none of its Ray's processes behind

    def _pool_size(self) -> int:
        resources = ray.cluster_resources()
        limits = [self.config.max_in_flight]
        if self.config.num_cpus > 0:
            limits.append(int(resources.get("CPU", 1) // self.config.num_cpus))
        required = dict(self.config.custom_resources)  # each must fit at least one actor
        if self.config.num_gpus > 0:
            required["GPU"] = self.config.num_gpus
        if self.config.memory_bytes is not None:
            required["memory"] = self.config.memory_bytes
        for name, amount in required.items():
            if resources.get(name, 0) < amount:
                raise ExecutorError(f"evaluations ask for {amount:g} of {name!r} each but the Ray cluster has "
                                   f"{resources.get(name, 0):g}")
            limits.append(int(resources.get(name, 0) // amount))
        return max(1, min(limits))

    def _add_actor(self, index: int | None = None) -> None:
        actor = self._remote.remote(self.config)
        if index is None:
            self._actors.append(actor)
            self._ready.append(actor.ready.remote())
            self._actor_calls.append(collections.deque())
        else:
            self._actors[index] = actor
            self._ready[index] = actor.ready.remote()
            self._actor_calls[index] = collections.deque()

    def _is_ready(self, index: int) -> bool:
        """Whether actor ``index`` is placed and running; work waits in the queue until it is
        (a replacement may wait for a node with the resources it needs)."""
        ref = self._ready[index]
        if ref is None:
            return True
        done, _ = ray.wait([ref], timeout=0)
        if not done:
            return False
        try:
            ray.get(ref)
        except RayError:
            self._replace_actor(index, requeue=True)
            return False
        self._ready[index] = None
        return True

    def capacity(self) -> int:
        return max(1, len(self._actors)) * self._chunk

    def shutdown(self) -> None:
        for actor in self._actors:
            with contextlib.suppress(Exception):
                ray.kill(actor)
        self._actors.clear()
        self._ready.clear()
        self._actor_calls.clear()
        self._calls.clear()
        if self._started_ray and ray.is_initialized():
            ray.shutdown()
            self._started_ray = False

    # -- work ----------------------------------------------------------------
    def submit(self, tasks: list[EvaluationTask]) -> None:
        self._queue.extend(tasks)
        self._dispatch()

    def in_flight(self) -> int:
        return len(self._queue) + sum(len(c.tasks) for c in self._calls.values())

    def _dispatch(self) -> None:
        """Hand queued tasks to ready actors breadth-first (each gets a call before any gets
        a second), up to ``PIPELINE`` calls an actor, so that an actor's next call is
        already there when its current one ends."""
        now = time.time()
        for depth in range(1, PIPELINE + 1):
            for index, actor in enumerate(self._actors):
                if not self._queue:
                    break
                calls = self._actor_calls[index]
                if len(calls) >= depth or not self._is_ready(index):
                    continue
                batch = [self._queue.popleft() for _ in range(min(self._chunk, len(self._queue)))]
                call = _Call(actor.run.remote(batch), batch, index, started=None if calls else now)
                calls.append(call)
                self._calls[call.ref] = call
                if call.started is not None:
                    self._started.extend(t.evaluation_id for t in batch)
        self._report_started(self._started)
        self._started = []

    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes of every call that has ended, waiting up to ``timeout`` for the first
        (one ``ray.wait`` on all of them); with none under way, waits as long for an actor
        to come up when work is queued for one."""
        self._dispatch()
        outcomes: list[Outcome] = []
        if self._calls:
            refs = list(self._calls)
            ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
            if ready:
                ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
            for ref in ready:
                call = self._calls.pop(ref, None)
                if call is not None:  # None: requeued when its actor was replaced just now
                    outcomes += self._collect(call)
        elif self._queue:
            coming = [ref for ref in self._ready if ref is not None]
            if coming:
                with contextlib.suppress(RayError):
                    ray.wait(coming, num_returns=1, timeout=timeout)
        outcomes += self._enforce_timeouts()
        self._dispatch()
        return outcomes

    def _finish_head(self, call: _Call) -> None:
        """Drop ``call`` from its actor's queue; the next call there starts now."""
        calls = self._actor_calls[call.actor_index]
        if call in calls:
            calls.remove(call)
        if calls and calls[0].started is None:
            calls[0].started = time.time()
            self._started.extend(t.evaluation_id for t in calls[0].tasks)

    def _collect(self, call: _Call) -> list[Outcome]:
        self._finish_head(call)
        try:
            return ray.get(call.ref, timeout=30)
        except RayActorError as exc:
            self._replace_actor(call.actor_index, requeue=True)
            reason = f"worker lost: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            return [Outcome(t.evaluation_id, "lost", error=reason) for t in call.tasks]
        except RayTaskError as exc:
            return [Outcome(t.evaluation_id, "failed", error=f"{type(exc).__name__}: {exc}"[:4000])
                    for t in call.tasks]
        except (GetTimeoutError, RayError) as exc:
            return [Outcome(t.evaluation_id, "lost", error=f"worker lost: {type(exc).__name__}: {exc}")
                    for t in call.tasks]

    def _enforce_timeouts(self) -> list[Outcome]:
        outcomes: list[Outcome] = []
        now = time.time()
        for index, calls in enumerate(self._actor_calls):
            if not calls or calls[0].started is None:
                continue
            head = calls[0]
            limit = self.config.timeout_s * len(head.tasks)
            if now - head.started <= limit:
                continue
            self._calls.pop(head.ref, None)
            calls.popleft()
            outcomes += [Outcome(t.evaluation_id, "failed", error=f"timeout: ran past {limit:g} s",
                                 worker=f"actor-{index}", seconds=now - head.started) for t in head.tasks]
            self._replace_actor(index, requeue=True)
        return outcomes

    def _replace_actor(self, index: int, requeue: bool) -> None:
        """Kill and replace actor ``index``; its queued calls go back to the queue."""
        pending = list(self._actor_calls[index])
        for call in pending:
            self._calls.pop(call.ref, None)
            if requeue:
                self._queue.extendleft(reversed(call.tasks))
        with contextlib.suppress(Exception):
            ray.kill(self._actors[index])
        self._add_actor(index)
