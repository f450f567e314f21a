"""The inline executor: evaluations run in the scheduler's own process, in order.

For debugging, fast tests and cheap evaluators. Timeouts use ``SIGALRM`` when running
on the main thread of a POSIX process (elsewhere they are not enforced).
"""

from __future__ import annotations

import collections
import signal
import threading
import time
from types import FrameType

from workers.executors.base import ExecutorConfig
from workers.executors.in_process import InProcessExecutor
from workers.runner import EvaluationTask, Outcome, run_tasks, setup_failure, worker_name


class EvaluationTimeout(BaseException):  # escapes the evaluator's own except Exception
    """Raised inside an evaluation that ran past its timeout."""


class InlineExecutor(InProcessExecutor):
    def __init__(self, config: ExecutorConfig) -> None:
        super().__init__(config)
        self._queue: collections.deque[EvaluationTask] = collections.deque()

    def capacity(self) -> int:
        return max(1, getattr(self._evaluator, "max_batch_size", 1) or 1)

    def submit(self, tasks: list[EvaluationTask]) -> None:
        self._queue.extend(tasks)

    def in_flight(self) -> int:
        return len(self._queue)

    def poll(self, timeout: float) -> list[Outcome]:
        self.start()
        outcomes: list[Outcome] = []
        if self._setup_error is not None:
            tasks = list(self._queue)
            self._queue.clear()
            return setup_failure(tasks, self._setup_error)
        assert self._evaluator is not None
        chunk = max(1, getattr(self._evaluator, "max_batch_size", 1) or 1)
        deadline = time.monotonic() + timeout
        while self._queue and (not outcomes or time.monotonic() < deadline):  # results reach the store often
            batch = [self._queue.popleft() for _ in range(min(chunk, len(self._queue)))]
            self._report_started([t.evaluation_id for t in batch])
            outcomes += self._run_with_timeout(batch)
        return outcomes

    def _run_with_timeout(self, batch: list[EvaluationTask]) -> list[Outcome]:
        assert self._evaluator is not None
        limit = self.config.timeout_s * len(batch)
        use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if not use_alarm:
            return run_tasks(self._evaluator, batch, self.config.measure_names, self._ctx)

        armed = [True]

        def on_alarm(_signum: int, _frame: FrameType | None) -> None:
            if armed[0]:  # an alarm that lands after the batch returned is ignored
                raise EvaluationTimeout(f"timed out after {limit:g} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        start = time.perf_counter()
        try:
            signal.setitimer(signal.ITIMER_REAL, limit)
            outcomes = run_tasks(self._evaluator, batch, self.config.measure_names, self._ctx)
            armed[0] = False
            return outcomes
        except EvaluationTimeout as exc:
            seconds = time.perf_counter() - start
            return [Outcome(t.evaluation_id, "failed", error=f"timeout: {exc}", worker=worker_name(),
                            seconds=seconds) for t in batch]
        finally:
            armed[0] = False
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
