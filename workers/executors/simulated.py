"""A simulated worker pool: many workers, no processes, each evaluation taking a latency on a clock.

For benchmarks and tests of the scheduler at cluster sizes this machine does not have.
The rules it keeps are those of :class:`~workers.executors.ray_executor.RayExecutor`:

- ``workers`` workers, each holding at most ``depth`` tasks: the one it runs and those
  queued behind it. Tasks wait in the executor's queue until a worker has room, and go
  breadth-first (every idle worker gets one before any gets a second).
- A worker starts its next task the instant its current one finishes, so it never waits
  on the driver while it holds a queued task. A start is reported (``on_start``) when the
  driver first learns of it: at ``submit`` for a task that starts at once, at the ``poll``
  that returns its predecessor otherwise.
- A task finishes ``latency`` seconds after it starts: ``latency_s`` (``fixed``), or drawn
  from an exponential or a uniform on [0, 2 ``latency_s``] with mean ``latency_s``. One
  that would run past ``timeout_s`` fails at ``timeout_s`` with a ``timeout`` error.
- Results are the configured evaluator's own, computed in-process when the task finishes
  (its CPU time is the driver's; use a cheap evaluator).

Time is read from a clock: :class:`RealClock` (``time.monotonic``; ``poll`` sleeps until
the next finish) or :class:`SimulatedClock` (``poll`` jumps to the next finish at once),
on which a run's evaluations per clock second are exactly what the pool can do.
"""

from __future__ import annotations

import collections
import heapq
import time
from typing import Protocol

import numpy as np

from workers.executors.base import ExecutorConfig
from workers.executors.in_process import InProcessExecutor
from workers.exit_guard import exit_refused
from workers.runner import EvaluationTask, Outcome, run_tasks, setup_failure

DISTRIBUTIONS = ("fixed", "exponential", "uniform")


class Clock(Protocol):
    def now(self) -> float: ...

    def wait_until(self, t: float) -> None: ...


class RealClock:
    """Wall time: ``wait_until`` sleeps."""

    def now(self) -> float:
        return time.monotonic()

    def wait_until(self, t: float) -> None:
        delay = t - time.monotonic()
        if delay > 0:
            time.sleep(delay)


class SimulatedClock:
    """Time that passes only when waited for: ``wait_until`` jumps there at once."""

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def wait_until(self, t: float) -> None:
        self.t = max(self.t, t)


class SimulatedExecutor(InProcessExecutor):
    """``workers`` simulated workers of ``depth`` tasks each (see the module's rules)."""

    reports_starts_late = True

    def __init__(self, config: ExecutorConfig, workers: int, latency_s: float, depth: int = 2,
                 distribution: str = "fixed", clock: Clock | None = None, seed: int = 0) -> None:
        super().__init__(config)
        if workers < 1 or depth < 1 or latency_s < 0:
            raise ValueError("workers and depth must be >= 1 and latency_s >= 0")
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {', '.join(DISTRIBUTIONS)}")
        self.workers = workers
        self.depth = depth
        self.latency_s = latency_s
        self.distribution = distribution
        self.clock: Clock = clock or RealClock()
        self._rng = np.random.default_rng(seed)
        self._queue: collections.deque[EvaluationTask] = collections.deque()
        self._held: list[collections.deque[EvaluationTask]] = [collections.deque() for _ in range(workers)]
        self._finishing: list[tuple[float, int, int]] = []  # heap of (finish time, order, worker)
        self._order = 0
        self._timed_out: set[int] = set()
        self.started = 0
        self.finished = 0
        self.handoffs = 0  # tasks a worker held queued when its previous one finished

    # -- lifecycle -----------------------------------------------------------
    def capacity(self) -> int:
        return self.workers

    def in_flight(self) -> int:
        return len(self._queue) + sum(len(h) for h in self._held)

    # -- work ----------------------------------------------------------------
    def submit(self, tasks: list[EvaluationTask]) -> None:
        self._queue.extend(tasks)
        self._report_started(self._place(self.clock.now()))

    def poll(self, timeout: float) -> list[Outcome]:
        self.start()
        if self._setup_error is not None:
            tasks = list(self._queue) + [t for h in self._held for t in h]
            self._queue.clear()
            for held in self._held:
                held.clear()
            self._finishing.clear()
            return setup_failure(tasks, self._setup_error)
        if not self._finishing:
            return []
        deadline = self.clock.now() + timeout
        if self._finishing[0][0] > deadline:
            self.clock.wait_until(deadline)
            return []
        self.clock.wait_until(self._finishing[0][0])
        now = self.clock.now()
        done: list[EvaluationTask] = []
        started: list[int] = []
        while self._finishing and self._finishing[0][0] <= now:
            finish, _, index = heapq.heappop(self._finishing)
            held = self._held[index]
            done.append(held.popleft())
            if held:
                self.handoffs += 1
                started.append(self._begin(index, finish))
        started += self._place(now)
        self._report_started(started)
        return self._outcomes(done)

    def _place(self, now: float) -> list[int]:
        """Hand queued tasks to workers with room, breadth-first; the ids that started."""
        started: list[int] = []
        for fill in range(1, self.depth + 1):
            for index, held in enumerate(self._held):
                if not self._queue:
                    return started
                if len(held) < fill:
                    held.append(self._queue.popleft())
                    if len(held) == 1:
                        started.append(self._begin(index, now))
        return started

    def _begin(self, index: int, now: float) -> int:
        task = self._held[index][0]
        latency = self._latency()
        if latency > self.config.timeout_s:
            self._timed_out.add(task.evaluation_id)
        finish = now + min(latency, self.config.timeout_s)
        heapq.heappush(self._finishing, (finish, self._order, index))
        self._order += 1
        self.started += 1
        return task.evaluation_id

    def _latency(self) -> float:
        if self.distribution == "exponential":
            return float(self._rng.exponential(self.latency_s))
        if self.distribution == "uniform":
            return float(self._rng.uniform(0.0, 2.0 * self.latency_s))
        return self.latency_s

    def _outcomes(self, tasks: list[EvaluationTask]) -> list[Outcome]:
        assert self._evaluator is not None
        self.finished += len(tasks)
        ran = [t for t in tasks if t.evaluation_id not in self._timed_out]
        with exit_refused():
            outcomes = run_tasks(self._evaluator, ran, self.config.measure_names, self._ctx) if ran else []
        for t in tasks:
            if t.evaluation_id in self._timed_out:
                self._timed_out.discard(t.evaluation_id)
                outcomes.append(Outcome(t.evaluation_id, "failed", worker="simulated", seconds=self.config.timeout_s,
                                        error=f"timeout: ran past {self.config.timeout_s:g} s"))
        return outcomes
