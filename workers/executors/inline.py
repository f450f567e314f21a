"""The inline executor: evaluations run in the scheduler's own process, in order.

For debugging, fast tests and cheap evaluators. Timeouts use ``SIGALRM`` when running
on the main thread of a POSIX process. Elsewhere (a run started from a
``threading.Thread``) they cannot be enforced: the run says so once, as a warning on
``entropy_atlas.executor``, and goes on without them (the Ray executor, or the main
thread, enforces them). A caller's own ``SIGALRM`` handler and ``ITIMER_REAL`` timer are
set aside while a poll runs evaluations and put back at its end, the timer with its time
left less what the poll took (fired at once where that has passed). An evaluation that
changes the working directory has it changed back by the end of the poll. One that calls
``os._exit`` fails with that as its error (:mod:`workers.exit_guard`); it had ended the run.

A poll runs evaluations until ``timeout`` has passed (at least one chunk), so results reach
the store often; how many a poll hands back then follows the evaluations' times, and so do
the groups the proposer is told them in. With ``whole_batches`` (``search.reproducible``) a
poll runs exactly the oldest batch submitted, whatever the time, and hands back it alone:
the proposer is told batch by batch and asked after each, the same sequence on every run of
the same file (an instant evaluator, a slow one, a loaded machine), at the cost of a write a
batch rather than one every ``timeout``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from workers.executors.base import ExecutorConfig
from workers.executors.in_process import InProcessExecutor, log
from workers.exit_guard import exit_refused
from workers.runner import EvaluationTask, EvaluationTimeout, Outcome, run_tasks, setup_failure, worker_name


class InlineExecutor(InProcessExecutor):
    def __init__(self, config: ExecutorConfig) -> None:
        super().__init__(config)
        self._queue: collections.deque[EvaluationTask] = collections.deque()
        self._batches: collections.deque[int] = collections.deque()  # the queue's batches' sizes, oldest first
        self._batch_ended = False  # whether this poll has run a batch's last task
        self._finished: list[Outcome] = []  # outcomes a Ctrl-C cut off from their poll
        self._said_unenforced = False  # whether the run was told its timeouts cannot be enforced here

    def capacity(self) -> int:
        return self._chunk if self._evaluator is not None else 1

    def submit(self, tasks: list[EvaluationTask]) -> None:
        self._queue.extend(tasks)
        if tasks:
            self._batches.append(len(tasks))

    def in_flight(self) -> int:
        return len(self._queue)

    def poll(self, timeout: float) -> list[Outcome]:
        self.start()
        if self._setup_error is not None:
            tasks = list(self._queue)
            self._queue.clear()
            self._batches.clear()
            return setup_failure(tasks, self._setup_error)
        assert self._evaluator is not None
        chunk = self._chunk
        deadline = time.monotonic() + timeout
        outcomes: list[Outcome] = []
        self._batch_ended = False
        try:
            with _Alarm() as alarm, _same_directory(), exit_refused():
                self._warn_if_unenforced(alarm)
                while self._queue and not self._poll_done(outcomes, deadline):
                    batch = [self._queue.popleft() for _ in range(self._next_chunk(chunk))]
                    self._report_started([t.evaluation_id for t in batch])
                    outcomes += self._run_with_timeout(batch, alarm)
        except KeyboardInterrupt as exc:  # what finished before the Ctrl-C is kept for the scheduler's stop
            self._finished = outcomes + list(getattr(exc, "finished", []))
            raise
        return outcomes

    def _poll_done(self, outcomes: list[Outcome], deadline: float) -> bool:
        """Whether a poll hands back what it ran: with ``whole_batches``, once a batch has
        run in full (and not before, whatever the time); else once ``deadline`` has passed
        after at least one chunk (results reach the store often)."""
        if self.config.whole_batches:
            return self._batch_ended
        return bool(outcomes) and time.monotonic() >= deadline

    def _next_chunk(self, chunk: int) -> int:
        """How many queued tasks run next: ``chunk`` (the evaluator's batch) at most and,
        with ``whole_batches``, no more than the oldest batch has left, so that a batch ends
        a poll on its own (``_batch_ended``). Counts them off the queue's batch sizes."""
        n = min(chunk, len(self._queue))
        if self.config.whole_batches and self._batches:
            n = min(n, self._batches[0])
        left = n
        while left and self._batches:
            taken = min(left, self._batches[0])
            left -= taken
            self._batches[0] -= taken
            if self._batches[0] == 0:
                self._batches.popleft()
                self._batch_ended = True
        return n

    def _warn_if_unenforced(self, alarm: _Alarm) -> None:
        """One warning a run where ``timeout_s`` cannot be enforced (no ``SIGALRM`` here:
        not the main thread, or not POSIX), where it had been dropped without a word."""
        if alarm.usable or self._said_unenforced:
            return
        self._said_unenforced = True
        where = "off the main thread" if hasattr(signal, "setitimer") else "on this platform (no SIGALRM)"
        log.warning("timeout_s (%g s) cannot be enforced by the inline executor %s: evaluations run to their "
                    "end; use the Ray executor, or run from the main thread", self.config.timeout_s, where)

    def take_finished(self) -> list[Outcome]:
        finished, self._finished = self._finished, []
        return finished

    def _run_with_timeout(self, batch: list[EvaluationTask], alarm: _Alarm) -> list[Outcome]:
        assert self._evaluator is not None
        limit = self.config.timeout_s * len(batch)
        if not alarm.usable:
            return run_tasks(self._evaluator, batch, self.config.measure_names, self._ctx)
        start = time.perf_counter()
        try:
            with alarm.armed(limit):
                return run_tasks(self._evaluator, batch, self.config.measure_names, self._ctx)
        except EvaluationTimeout as exc:
            seconds = time.perf_counter() - start
            return [Outcome(t.evaluation_id, "failed", error=f"timeout: {exc}", worker=worker_name(),
                            seconds=seconds) for t in batch]


@contextlib.contextmanager
def _same_directory() -> Iterator[None]:
    """Change back to this process's working directory where an evaluation changed it: the
    scheduler's relative paths (a default ``sqlite:///atlas.db``, the map's folder) stay its
    own. A working directory already gone is left as it is."""
    try:
        cwd: str | None = os.getcwd()
    except OSError:
        cwd = None
    try:
        yield
    finally:
        if cwd is not None:
            with contextlib.suppress(OSError):
                if os.getcwd() != cwd:
                    os.chdir(cwd)


class _Alarm:
    """``SIGALRM`` as a per-evaluation timeout: the handler is installed once per poll
    (and the previous one put back after it), the timer armed around each batch. Usable
    only on the main thread of a POSIX process.

    A timer the caller had running (``signal.setitimer(ITIMER_REAL, …)``) is set aside
    with its handler and put back at the end: its time left less the time the poll took,
    and its interval; one whose time has passed fires at once (in a microsecond), under
    the caller's own handler."""

    def __init__(self) -> None:
        self.usable = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        self._limit: float | None = None  # the armed batch's limit; None: an alarm now is ignored
        self._previous: Any = None
        self._timer: tuple[float, float] = (0.0, 0.0)  # the caller's timer when the poll began: (left, interval)
        self._entered = 0.0

    def __enter__(self) -> _Alarm:
        if self.usable:
            self._timer = signal.setitimer(signal.ITIMER_REAL, 0)  # stopped: the caller's fires after the poll
            self._entered = time.monotonic()
            self._previous = signal.signal(signal.SIGALRM, self._on_alarm)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.usable:
            signal.setitimer(signal.ITIMER_REAL, 0)
            if self._previous is not None:  # None: a handler not set from Python, which cannot be put back
                signal.signal(signal.SIGALRM, self._previous)
            self._restore_timer()

    def _restore_timer(self) -> None:
        """The caller's timer again, less the time the poll took (at least a microsecond:
        at once where it has passed); nothing where none was running."""
        left, interval = self._timer
        if left <= 0:
            return
        signal.setitimer(signal.ITIMER_REAL, max(left - (time.monotonic() - self._entered), 1e-6), interval)

    def _on_alarm(self, _signum: int, _frame: FrameType | None) -> None:
        if self._limit is not None:  # an alarm that lands after the batch returned is ignored
            raise EvaluationTimeout(f"ran past {self._limit:g} s")  # the Ray executor's words

    @contextlib.contextmanager
    def armed(self, limit: float) -> Iterator[None]:
        self._limit = limit
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            yield
        finally:
            self._limit = None
            signal.setitimer(signal.ITIMER_REAL, 0)
