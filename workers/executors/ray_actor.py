"""The Ray worker: an actor holding one set-up evaluator and a queue of its own.

Rules it keeps:

- ``push(batches)`` puts ``(n, batch)`` pairs, the actor's ``n``-th batch (from 0), in its
  queue and returns at once; calls may run in any order (the actor is threaded), batches
  never do. One evaluation thread takes them in the order of ``n`` and starts the next the
  moment the last one ends, so a worker with queued work never waits on the driver (a queued Ray call
  would wait for Ray's own dispatch, about 1-2 ms a call on a busy machine).
- ``results(wait_s, batches)`` pushes ``batches`` (as ``push``), then hands back the
  outcomes of every batch finished since the last call, whole batches in order, waiting up
  to ``wait_s`` for the first (a long poll): one call a turn carries both ways.
  A worker that dies just as a batch ends may take that batch's outcomes with it
  before they are fetched: the driver reports the batch lost and it is retried.
- The evaluator is built (its ``__init__``: only here, never in the driver) and set up
  once, on the evaluation thread, which starts with the actor (so a model loads while the
  driver writes the campaign and asks for the first batch); when that fails, whatever it
  raised (``sys.exit``, ``KeyboardInterrupt``, any ``BaseException``), every batch gets
  setup-failure outcomes (nothing ran).
  ``ready()`` answers once the setup has ended (with its failure, if it failed): the run
  waits on it before it writes the campaign, and the driver before it pushes any work. With ``memory_mb``
  the data segment is capped after setup (:func:`workers.limits.cap_memory_growth`).
- Nothing an evaluation raises ends the evaluation thread: what ``run_tasks`` passes
  through (a ``KeyboardInterrupt``, which inline is the user's Ctrl-C) is here the
  evaluator's own and fails its evaluation by name; the worker goes on serving.
- ``close()`` stops the evaluation thread and calls the evaluator's ``teardown`` on it; it
  answers with the teardown's failure, if any. It is called as the run ends, when the driver
  has written off whatever the worker still runs, so the evaluation under way is cut short:
  :class:`Stopped` is raised in the evaluation thread (where the evaluator runs Python; one
  blocked in C stops once it returns), the batch's other evaluations are not begun, and
  the queued batches are dropped. The driver waits a bounded time for the answer, then
  kills the worker: one whose evaluation swallows :class:`Stopped`, or never returns to
  Python, is killed without its teardown.
- With ``memory_mb``, a worker that keeps what its evaluations allocated (a leak, a cache
  that only grows) is spent: after a batch that leaves it holding over
  :data:`SPENT_HELD` of its allowance past its size after setup, or one with a
  ``MemoryError`` while it held over :data:`LEAK_HELD`, it tears its evaluator down and
  takes no more work, and the batch's outcomes say so (``worker_spent``) for the driver to
  start a fresh worker. That batch's ``MemoryError`` failures were the worker's, not their
  configurations': they come back ``lost``, and are retried on the fresh worker.
"""

from __future__ import annotations

import ctypes
import dataclasses
import gc
import threading
import time
from typing import Any

from entropy_atlas.storable import storable_text
from workers import registry
from workers.contract import EvalContext, device_for, setup_seed
from workers.executors.base import ExecutorConfig, teardown_failure_text
from workers.limits import cap_memory_growth, data_segment_bytes
from workers.runner import (
    EvaluationTask,
    InterruptedBatch,
    Outcome,
    headline,
    overrides_batch,
    run_tasks,
    setup_failure_text,
    traceback_tail,
    worker_name,
)

SPENT_HELD = 0.9  # a worker holding this much of its memory allowance after a batch is spent
LEAK_HELD = 0.5  # ... and one holding this much when an evaluation ran out of memory


class Stopped(BaseException):
    """Raised in a worker's evaluation thread by :meth:`EvaluatorActor.close`: the run has
    ended, and the evaluation under way is cut short so that the evaluator can be torn down.
    A ``BaseException``, so that an evaluator's ``except Exception`` lets it through."""


class EvaluatorActor:
    """Decorated with ``ray.remote`` (threaded: ``push`` and ``results`` run beside the
    evaluation thread) by :class:`~workers.executors.ray_executor.RayExecutor`. ``worker``:
    the actor's place in the pool (0, 1, …; a replacement takes the place of the worker it
    replaces), from which, with the campaign's seed, its ``setup``'s ``ctx.seed`` is derived
    (:func:`~workers.contract.setup_seed`)."""

    def __init__(self, config: ExecutorConfig, worker: int = 0) -> None:
        self.config = config
        seed = setup_seed(config.seed, worker)  # setup's; each evaluation gets its own (run_tasks)
        self.ctx = EvalContext(seed=seed, seeds=[seed], device=device_for(config.num_gpus), campaign=config.campaign)
        self._arrived: dict[int, list[EvaluationTask]] = {}  # batches pushed, by their number
        self._next = 0  # the number of the batch to run next
        self._done: list[Outcome] = []
        self._cv = threading.Condition()
        self._set_up = threading.Event()
        self._setup_error: str | None = None
        self._closing = False  # close() was called: the thread stops and tears the evaluator down
        self._running = False  # a batch is under way on the evaluation thread (close() cuts it short)
        self._teardown_error: str | None = None
        self._memory_floor: int | None = None  # with memory_mb: the data segment's size after setup
        self._thread = threading.Thread(target=self._loop, name="atlas-evaluations", daemon=True)
        self._thread.start()

    def ready(self) -> tuple[str, str | None]:
        """Answers once the evaluator's setup has ended: the worker's name (``host:pid``) and
        None when the setup succeeded, else its failure as text. The driver pushes work only
        to an actor that answered, so a batch's time (its timeout) starts after the setup,
        and nothing is charged to a worker that dies while it sets up (that call then fails)."""
        self._set_up.wait()
        return worker_name(), self._setup_error

    def push(self, batches: list[tuple[int, list[EvaluationTask]]]) -> None:
        if not batches:
            return
        with self._cv:
            self._arrived.update(batches)
            self._cv.notify_all()

    def results(self, wait_s: float, batches: list[tuple[int, list[EvaluationTask]]] | None = None) -> list[Outcome]:
        self.push(batches or [])
        with self._cv:
            self._cv.wait_for(lambda: bool(self._done), timeout=wait_s)
            done, self._done = self._done, []
        return done

    def close(self) -> str | None:
        """Stop the evaluation thread and tear the evaluator down on it: the batch it runs is
        cut short (:class:`Stopped` raised in it, once), those queued behind it dropped; the
        teardown's failure as one line, None where it succeeded or there was nothing to tear
        down. The driver waits a bounded time for the answer, then kills the actor."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
            if self._running:
                _raise_in(self._thread, Stopped)
        self._thread.join()
        return self._teardown_error

    def _loop(self) -> None:
        """Set the evaluator up, then run batches in order until :meth:`close`; nothing an
        evaluator raises ends this thread (it would leave the actor alive and deaf)."""
        evaluator = None
        try:
            evaluator, error = self._setup()
            self._setup_error = None if error is None else setup_failure_text(error)
        finally:
            self._set_up.set()
        try:
            while True:
                with self._cv:
                    self._cv.wait_for(lambda: self._next in self._arrived or self._closing)
                    if self._closing:
                        break
                    batch = self._arrived.pop(self._next)
                    self._next += 1
                    self._running = True
                spent = None
                if evaluator is None:
                    outcomes = _setup_failed(batch, self._setup_error or "evaluator setup failed")
                else:
                    outcomes = self._evaluate(evaluator, batch)
                    spent = self._spent(outcomes)
                if spent is not None:  # torn down before the driver hears of it: it kills this actor then
                    self._teardown_error = _teardown(evaluator)
                    evaluator = None
                    outcomes = _marked_spent(outcomes, spent)
                with self._cv:
                    self._running = False
                    self._done.extend(outcomes)
                    self._cv.notify_all()
                if spent is not None:
                    return
        except Stopped:  # close() landed between two evaluator calls: the batch is written off all the same
            pass
        if evaluator is not None:
            self._teardown_error = _teardown(evaluator)

    def _spent(self, outcomes: list[Outcome]) -> str | None:
        """Why this worker is spent after a batch with ``outcomes`` (see the module's
        rules), or None. The data segment is read once a batch; only past a threshold
        does a collection confirm the memory is held."""
        if self._memory_floor is None or self.config.memory_mb is None:
            return None
        allowance = self.config.memory_mb * 2**20
        ran_out = any(_ran_out_of_memory(o) for o in outcomes)
        threshold = LEAK_HELD if ran_out else SPENT_HELD

        def held() -> float:
            now = data_segment_bytes()
            return 0.0 if now is None else (now - self._memory_floor) / allowance

        if held() <= threshold:
            return None
        gc.collect()
        fraction = held()
        if fraction <= threshold:
            return None
        return (f"worker spent: it holds {fraction:.0%} of its memory_mb ({self.config.memory_mb:g} MiB) "
                "after its evaluations; a fresh worker takes over")

    def _evaluate(self, evaluator: Any, batch: list[EvaluationTask]) -> list[Outcome]:
        """The batch's outcomes: one ``run_tasks`` call for a batching evaluator, one per
        task otherwise, so that what escapes ``run_tasks`` fails only the call it came from.
        A ``KeyboardInterrupt`` there is the evaluator's own (no Ctrl-C reaches this
        thread): it fails its evaluation by its name, and the worker goes on. After
        :meth:`close` (its :class:`Stopped` fails the evaluation it cut short, an outcome
        nobody reads) the rest of the batch is not begun."""
        outcomes: list[Outcome] = []
        for group in [batch] if overrides_batch(evaluator) else [[t] for t in batch]:
            if self._closing:  # close(): the rest of the batch is not begun
                break
            start = time.perf_counter()
            try:
                outcomes += run_tasks(evaluator, group, self.config.measure_names, self.ctx)
            except Exception as exc:  # a fault outside the evaluator fails the batch; the worker goes on
                outcomes += _failed(group, f"worker: {_raised(exc)}", time.perf_counter() - start)
            except BaseException as exc:  # passed through by run_tasks (a Ctrl-C inline): here the evaluator's
                raised = exc.__cause__ if isinstance(exc, InterruptedBatch) and exc.__cause__ is not None else exc
                outcomes += _failed(group, _raised(raised, by_evaluator=True), time.perf_counter() - start)
        return outcomes

    def _setup(self) -> tuple[Any, BaseException | None]:
        """The evaluator built (its ``__init__`` runs here, in the worker) and set up, or
        what either raised, whatever it was (``sys.exit``, ``KeyboardInterrupt``, any
        ``BaseException``: this thread must answer ``ready``); an unusable
        ``max_batch_size`` fails it too."""
        try:
            evaluator = registry.build(self.config.kind, self.config.config, self.config.target)
            registry.batch_size(evaluator)
            evaluator.setup(self.config.config, self.ctx)
            if self.config.memory_mb is not None and cap_memory_growth(self.config.memory_mb) is not None:
                self._memory_floor = data_segment_bytes()
            return evaluator, None
        except BaseException as exc:
            return None, exc


def _raised(exc: BaseException, by_evaluator: bool = False) -> str:
    """``Name: message`` of what an evaluation raised (:func:`~workers.runner.headline`),
    storable; ``by_evaluator``: what the evaluator itself raised, said so (with
    its traceback's last lines, as ``run_tasks`` keeps them for any other exception)."""
    text = headline(exc)
    if by_evaluator:
        text = f"{text} (raised by the evaluator)\n{traceback_tail(exc)}"
    return storable_text(text)


def _failed(tasks: list[EvaluationTask], error: str, seconds: float) -> list[Outcome]:
    """``tasks`` failed with ``error`` on this worker, ``seconds`` spent between them."""
    each = seconds / max(1, len(tasks))
    return [Outcome(t.evaluation_id, "failed", error=error, worker=worker_name(), seconds=each) for t in tasks]


def _ran_out_of_memory(outcome: Outcome) -> bool:
    return outcome.status == "failed" and (outcome.error or "").startswith("MemoryError")


def _marked_spent(outcomes: list[Outcome], reason: str) -> list[Outcome]:
    """A spent worker's last batch: each marked ``worker_spent``, its ``MemoryError``
    failures ``lost`` (the worker's memory, not the configuration's: run again)."""
    return [dataclasses.replace(o, worker_spent=True, **({"status": "lost", "error": f"{reason} ({o.error})"}
                                                          if _ran_out_of_memory(o) else {}))
            for o in outcomes]


def _setup_failed(tasks: list[EvaluationTask], error: str) -> list[Outcome]:
    """The outcomes of ``tasks`` on a worker whose setup failed with ``error`` (none ran)."""
    return [Outcome(t.evaluation_id, "failed", error=error, worker=worker_name(), setup_failed=True) for t in tasks]


def _raise_in(thread: threading.Thread, exc_type: type[BaseException]) -> bool:
    """Have ``exc_type`` raised in ``thread`` where it next runs Python (CPython's
    ``PyThreadState_SetAsyncExc``); whether the thread was found."""
    if thread.ident is None or not thread.is_alive():
        return False
    return ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(exc_type)) == 1


def _teardown(evaluator: Any) -> str | None:
    """Call the evaluator's ``teardown``; its failure (any ``BaseException``) as one line."""
    try:
        evaluator.teardown()
    except BaseException as exc:
        return teardown_failure_text(exc, worker_name())
    return None
