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

from workers import registry
from workers.contract import EvalContext, Evaluator
from workers.executors.base import Executor, ExecutorConfig
from workers.runner import EvaluationTask, Outcome, run_tasks, worker_name


class EvaluationTimeout(BaseException):  # escapes the evaluator's own except Exception
    """Raised inside an evaluation that ran past its timeout."""


class InlineExecutor(Executor):
    def __init__(self, config: ExecutorConfig) -> None:
        super().__init__(config)
        self._queue: collections.deque[EvaluationTask] = collections.deque()
        self._evaluator: Evaluator | None = None
        self._setup_error: str | None = None
        self._ctx = EvalContext(device="cpu", campaign=config.campaign)

    def start(self) -> None:
        if self._evaluator is not None or self._setup_error is not None:
            return
        try:
            evaluator = registry.build(self.config.kind, self.config.config, self.config.target)
            evaluator.setup(self.config.config, self._ctx)
            self._evaluator = evaluator
        except Exception as exc:
            self._setup_error = f"evaluator setup failed: {type(exc).__name__}: {exc}"

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
            while self._queue:
                t = self._queue.popleft()
                outcomes.append(Outcome(t.evaluation_id, "failed", error=self._setup_error, worker=worker_name()))
            return outcomes
        assert self._evaluator is not None
        chunk = max(1, getattr(self._evaluator, "max_batch_size", 1) or 1)
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(chunk, len(self._queue)))]
            outcomes += self._run_with_timeout(batch)
        return outcomes

    def _run_with_timeout(self, batch: list[EvaluationTask]) -> list[Outcome]:
        assert self._evaluator is not None
        limit = self.config.timeout_s * len(batch)
        use_alarm = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        if not use_alarm:
            return run_tasks(self._evaluator, batch, self.config.measure_names, self._ctx)

        def on_alarm(_signum: int, _frame: FrameType | None) -> None:
            raise EvaluationTimeout(f"timed out after {limit:g} s")

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit)
        start = time.perf_counter()
        try:
            return run_tasks(self._evaluator, batch, self.config.measure_names, self._ctx)
        except EvaluationTimeout as exc:
            seconds = time.perf_counter() - start
            return [Outcome(t.evaluation_id, "failed", error=f"timeout: {exc}", worker=worker_name(),
                            seconds=seconds) for t in batch]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def shutdown(self) -> None:
        if self._evaluator is not None:
            try:
                self._evaluator.teardown()
            finally:
                self._evaluator = None
