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
- The evaluator is set up once, on the evaluation thread, which starts with the actor (so
  a model loads while the driver writes the campaign and asks for the first batch); when
  that fails every batch gets setup-failure outcomes (nothing ran).
  ``ready()`` answers once the setup has ended (with its failure, if it failed): the run
  waits on it before it writes the campaign, and the driver before it pushes any work. With ``memory_mb``
  the data segment is capped after setup (:func:`workers.limits.cap_memory_growth`).
"""

from __future__ import annotations

import threading
from typing import Any

from entropy_atlas.storable import storable_text
from workers import registry
from workers.contract import EvalContext
from workers.executors.base import ExecutorConfig
from workers.limits import cap_memory_growth
from workers.runner import EvaluationTask, Outcome, run_tasks, setup_failure, setup_failure_text, worker_name


class EvaluatorActor:
    """Decorated with ``ray.remote`` (threaded: ``push`` and ``results`` run beside the
    evaluation thread) by :class:`~workers.executors.ray_executor.RayExecutor`."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        device = "cpu"
        if config.num_gpus > 0:
            try:
                import torch

                if torch.cuda.is_available():
                    device = "cuda:0"
            except ImportError:
                pass
        self.ctx = EvalContext(device=device, campaign=config.campaign)
        self._arrived: dict[int, list[EvaluationTask]] = {}  # batches pushed, by their number
        self._next = 0  # the number of the batch to run next
        self._done: list[Outcome] = []
        self._cv = threading.Condition()
        self._set_up = threading.Event()
        self._setup_error: str | None = None
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

    def _loop(self) -> None:
        evaluator, error = self._setup()
        self._setup_error = None if error is None else setup_failure_text(error)
        self._set_up.set()
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._next in self._arrived)
                batch = self._arrived.pop(self._next)
                self._next += 1
            if evaluator is None:
                outcomes = setup_failure(batch, error)  # type: ignore[arg-type]
            else:
                try:
                    outcomes = run_tasks(evaluator, batch, self.config.measure_names, self.ctx)
                except Exception as exc:  # a fault outside the evaluator fails the batch; the worker goes on
                    error = storable_text(f"worker: {type(exc).__name__}: {exc}")
                    outcomes = [Outcome(t.evaluation_id, "failed", error=error, worker=worker_name()) for t in batch]
            with self._cv:
                self._done.extend(outcomes)
                self._cv.notify_all()

    def _setup(self) -> tuple[Any, BaseException | None]:
        try:
            evaluator = registry.build(self.config.kind, self.config.config, self.config.target)
            evaluator.setup(self.config.config, self.ctx)
            if self.config.memory_mb is not None:
                cap_memory_growth(self.config.memory_mb)
            return evaluator, None
        except (Exception, SystemExit) as exc:
            return None, exc
