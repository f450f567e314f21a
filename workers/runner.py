"""Run an evaluator on a batch of tasks and turn what it returns into outcomes.

The rules of the evaluator contract are enforced here, once, for every executor: an
exception (any but :data:`PASSED_THROUGH`), a non-dict, an objective that is not a finite
number, or a missing or non-finite measure makes that evaluation ``failed`` with the reason;
metrics are made JSON-safe and storable (:func:`json_safe`), and so is every error text
(:func:`storable_text`, at most :data:`MAX_MESSAGE_CHARS` of a value's text): what an
evaluator returns or raises can fail its evaluation, never the scheduler's write. A result
that cannot even be read (an array where a dict was due, keys that do not sort, a value
whose ``repr`` raises) fails its evaluation too, saying so.

Atlas's own reasons name the cause first and the value that varies last, in one trailing
``(got …)`` (:data:`DETAIL_MARK`): ``objective is not a finite number (got a str: '0.5')``.
Failures are grouped by the text before it (:func:`archive.store.failure_group`), so one cause
is one group however its values differ, and each evaluation's line still shows its value.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import os
import reprlib
import socket
import time
import traceback
from typing import Any

import numpy as np

from entropy_atlas.storable import INT64, storable_text
from workers.contract import EvalContext, Evaluator

MAX_MESSAGE_CHARS = 2000  # of an exception's message kept in an evaluation's error (its traceback's tail besides)

#: Where the varying part of atlas's own failure reasons starts: failures are grouped by
#: the first line's text before it (``archive.store.failure_group``, which spells it too).
DETAIL_MARK = " (got "


class EvaluationTimeout(BaseException):  # escapes the evaluator's own except Exception
    """Raised inside an evaluation that ran past its timeout (the inline executor's alarm)."""


class InterruptedBatch(KeyboardInterrupt):
    """A Ctrl-C during a batch run one task at a time, carrying the outcomes of the tasks
    that had finished before it (``finished``): a clean stop writes them."""

    def __init__(self, finished: list[Outcome]) -> None:
        super().__init__()
        self.finished = finished


#: What an evaluation may raise that is not its own failure: the user's Ctrl-C, and the
#: executor's timeout, which its executor handles for the whole batch.
PASSED_THROUGH: tuple[type[BaseException], ...] = (KeyboardInterrupt, EvaluationTimeout)


def _short_repr() -> reprlib.Repr:
    """``repr`` bounded in length and depth, whose value's own ``repr`` may raise (then
    ``<T instance at 0x…>``): how a returned value is shown in an error."""
    shown = reprlib.Repr()
    shown.maxlevel, shown.maxstring, shown.maxother = 4, 200, 200
    shown.maxlist = shown.maxtuple = shown.maxdict = shown.maxset = 20
    return shown


_SHORT = _short_repr()


def shown(value: Any) -> str:
    """``value`` as an error shows it: a bounded, storable ``repr``."""
    return storable_text(_SHORT.repr(value))


def got(value: Any) -> str:
    """What a reason's trailing detail says a value was: ``got None``, else its type and
    value, ``got a str: '0.5'``, ``got an int: 3``."""
    if value is None:
        return "got None"
    kind = storable_text(type(value).__name__)
    return f"got {'an' if kind[:1].lower() in 'aeiou' or kind.startswith('nd') else 'a'} {kind}: {shown(value)}"


def with_detail(cause: str, detail: str) -> str:
    """``cause (detail)``: a failure reason whose ``cause`` is what it is grouped by and
    ``detail`` (beginning ``got``) what varies between evaluations (:data:`DETAIL_MARK`)."""
    return f"{cause} ({detail})"


@dataclasses.dataclass
class EvaluationTask:
    """One evaluation to run: plain values only."""

    evaluation_id: int
    seq: int
    params: dict[str, Any]
    seed: int
    attempt: int = 1


@dataclasses.dataclass
class Outcome:
    """What came of a task. ``status``: ``done``, ``failed`` or ``lost`` (worker died)."""

    evaluation_id: int
    status: str
    objective: float | None = None
    measures: dict[str, float] | None = None
    metrics: dict[str, Any] | None = None
    error: str | None = None
    worker: str | None = None
    seconds: float = 0.0
    setup_failed: bool = False  # the evaluator could not be set up: the evaluation never ran
    worker_spent: bool = False  # its worker holds most of its memory_mb after this batch: the driver replaces it


def worker_name() -> str:
    """``host:pid`` of the process running evaluations."""
    return _worker_name(os.getpid())


@functools.lru_cache(maxsize=4)
def _worker_name(pid: int) -> str:  # by pid: a forked worker names itself
    return f"{socket.gethostname()}:{pid}"


def overrides_batch(evaluator: Evaluator) -> bool:
    """Whether the evaluator evaluates a whole batch in one call."""
    method = getattr(type(evaluator), "evaluate_batch", None)
    return method is not None and method is not Evaluator.evaluate_batch


def run_tasks(evaluator: Evaluator, tasks: list[EvaluationTask], measure_names: list[str],
              base: EvalContext) -> list[Outcome]:
    """Evaluate ``tasks`` (one call for batching evaluators, else one call each)."""
    name = worker_name()
    if not tasks:
        return []
    if overrides_batch(evaluator):
        ctx = dataclasses.replace(base, seed=tasks[0].seed, seeds=[t.seed for t in tasks],
                                  attempt=max(t.attempt for t in tasks))
        start = time.perf_counter()
        try:
            raw = batch_results(evaluator.evaluate_batch([t.params for t in tasks], ctx), len(tasks))
        except PASSED_THROUGH:
            raise
        except BaseException as exc:  # the evaluator's own failure fails the whole batch
            error = _describe(exc)
            seconds = (time.perf_counter() - start) / len(tasks)
            return [Outcome(t.evaluation_id, "failed", error=error, worker=name, seconds=seconds)
                    for t in tasks]
        seconds = (time.perf_counter() - start) / len(tasks)
        return [_outcome(t, r, measure_names, name, seconds) for t, r in zip(tasks, raw, strict=True)]
    outcomes: list[Outcome] = []
    try:
        for task in tasks:
            ctx = dataclasses.replace(base, seed=task.seed, seeds=[task.seed], attempt=task.attempt)
            start = time.perf_counter()
            try:
                raw = evaluator.evaluate(task.params, ctx)
            except PASSED_THROUGH:
                raise
            except BaseException as exc:  # sys.exit (or any BaseException) in an evaluator fails it, not the worker
                outcomes.append(Outcome(task.evaluation_id, "failed", error=_describe(exc), worker=name,
                                        seconds=time.perf_counter() - start))
                continue
            outcomes.append(_outcome(task, raw, measure_names, name, time.perf_counter() - start))
    except InterruptedBatch:
        raise
    except KeyboardInterrupt as exc:  # those finished before it go with it
        raise InterruptedBatch(outcomes) from exc
    return outcomes


#: The one rule a batch's results break, what :func:`batch_results` refuses them with (its detail follows).
BATCH_RESULTS_RULE = "evaluate_batch must return a list (or any iterable) of one result per params"


def batch_results(returned: Any, n: int) -> list[Any]:
    """What an ``evaluate_batch`` called with ``n`` params ``returned``, as a list of its
    ``n`` results: any iterable of them (a list, a tuple, a generator, an ndarray) is
    read, at most ``n + 1`` items (an endless generator ends there). A :class:`TypeError`
    (:data:`BATCH_RESULTS_RULE`) fails the batch where it is not an iterable, or is a
    dict, a str or bytes (one result, or text, not results), or holds another number of
    results (``got 3 results for 4 params``). What iterating it raises is the evaluator's
    own failure."""
    if returned is None or isinstance(returned, dict | str | bytes | bytearray):
        raise TypeError(with_detail(BATCH_RESULTS_RULE, got(returned)))
    if isinstance(returned, list | tuple):
        results = list(returned)
    else:
        try:
            items = iter(returned)
        except TypeError:
            raise TypeError(with_detail(BATCH_RESULTS_RULE, got(returned))) from None
        results = list(itertools.islice(items, n + 1))
        if len(results) > n:
            raise TypeError(with_detail(BATCH_RESULTS_RULE, f"got more than {n} results for {n} params"))
    if len(results) != n:
        raise TypeError(with_detail(BATCH_RESULTS_RULE, f"got {len(results)} results for {n} params"))
    return results


def setup_failure_text(exc: BaseException) -> str:
    """How an evaluator's failed setup reads, in an outcome and in a refusal."""
    return storable_text(f"evaluator setup failed: {headline(exc)}")


def headline(exc: BaseException) -> str:
    """``Type: message``, or ``Type`` alone where it has no message; the message capped
    (:func:`_capped`), and one whose ``__str__`` raises saying so."""
    try:
        message = str(exc)
    except Exception:
        message = f"<its message could not be read: {shown(exc)}>"
    message = _capped(message)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def setup_failure(tasks: list[EvaluationTask], exc: BaseException) -> list[Outcome]:
    """The outcomes of ``tasks`` whose evaluator could not be set up (none of them ran)."""
    error = setup_failure_text(exc)
    return [Outcome(t.evaluation_id, "failed", error=error, worker=worker_name(), setup_failed=True)
            for t in tasks]


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit: the evaluator called sys.exit({shown(exc.code)})"
    return storable_text(f"{headline(exc)}\n" + traceback_tail(exc))


def traceback_tail(exc: BaseException) -> str:
    """The last lines of ``exc``'s traceback (at most 2,000 characters), kept beside its
    :func:`headline` in an evaluation's error; empty where they cannot be formatted."""
    try:
        return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3)[-3:])[-2000:]
    except Exception:
        return ""


def _capped(message: str) -> str:
    """``message`` cut to :data:`MAX_MESSAGE_CHARS`, saying how much more there was."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return f"{message[:MAX_MESSAGE_CHARS]}… ({len(message) - MAX_MESSAGE_CHARS} more characters)"


def _outcome(task: EvaluationTask, raw: Any, measure_names: list[str], worker: str,
             seconds: float) -> Outcome:
    """What ``raw`` (an evaluation's return value) comes to: done, or failed with the reason;
    failed, saying so, where reading it raised."""
    try:
        return _read_outcome(task, raw, measure_names, worker, seconds)
    except Exception as exc:
        return Outcome(task.evaluation_id, "failed", worker=worker, seconds=seconds,
                       error=f"the evaluator's result could not be read: {_describe(exc)}")


def _read_outcome(task: EvaluationTask, raw: Any, measure_names: list[str], worker: str,
                  seconds: float) -> Outcome:
    def fail(reason: str) -> Outcome:
        kept = json_safe(raw.get("metrics")) if isinstance(raw, dict) else None
        return Outcome(task.evaluation_id, "failed", error=storable_text(_capped(reason)), worker=worker,
                       seconds=seconds, metrics=kept if isinstance(kept, dict) else None)

    if not isinstance(raw, dict):
        return fail(with_detail("the evaluator must return a dict with objective and measures", got(raw)))
    objective = _as_float(raw.get("objective"))
    own_error = storable_text(_capped(raw["error"])) if isinstance(raw.get("error"), str) and raw["error"] else None
    if objective is None:
        if own_error:  # the evaluator's own reason for failing
            return fail(own_error)
        return fail(_objective_problem(raw))
    given = raw.get("measures")
    given = {} if given is None else given  # not `or {}`, which asks an array for its truth
    if not isinstance(given, dict):
        return fail(with_detail("measures must be a dict of name to number", got(given)))
    measures: dict[str, float] = {}
    for m in measure_names:
        if m not in given:
            return fail(with_detail(f"measure {m!r} is missing", f"got measures: {shown(sorted(map(str, given)))}"))
        value = _as_float(given[m])
        if value is None:
            return fail(with_detail(f"measure {m!r} is not a finite number", got(given[m])))
        measures[m] = value
    for extra, value in given.items():  # more measures than the map's, kept by name (as text)
        if extra in measures:
            continue
        key = storable_text(extra if isinstance(extra, str) else str(extra))
        if key not in measures and (v := _as_float(value)) is not None:
            measures[key] = v
    metrics = raw.get("metrics")
    metrics = json_safe({} if metrics is None else metrics)
    if not isinstance(metrics, dict):  # every reader takes metrics by name
        return fail(with_detail("metrics must be a dict", got(raw.get("metrics"))))
    metrics.setdefault("eval_seconds", seconds)
    if own_error:  # an error beside an objective: kept, not dropped
        metrics.setdefault("error", own_error)
    return Outcome(task.evaluation_id, "done", objective=objective, measures=measures,
                   metrics=metrics, worker=worker, seconds=seconds)


def _objective_problem(raw: dict[Any, Any]) -> str:
    """Why ``raw`` (a dict) has no objective: no ``objective`` key, saying which keys it has
    and that the spec's ``objective.name`` only labels the value returned as ``objective``;
    or one that is not a finite number, saying what it is."""
    if "objective" in raw:
        return with_detail("objective is not a finite number", got(raw["objective"]))
    keys = f"got keys: {shown([str(k) for k in raw])}" if raw else "got an empty dict"
    return with_detail("the result has no 'objective' key: return it as {'objective': …}; the spec's "
                       "objective.name only labels it", keys)


def _as_float(value: Any) -> float | None:
    """``value`` as a finite float, or None: a bool or a string is not a number, and an
    integer too large for a float is not a finite one."""
    if isinstance(value, bool | str | bytes):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return out if math.isfinite(out) else None


def json_safe(value: Any, depth: int = 0) -> Any:
    """A JSON-serialisable, storable copy: numpy scalars and arrays become numbers and
    lists, non-finite floats become None, an integer beyond 64 bits a float (or, past a
    float's range, its decimal text), strings and keys :func:`storable_text`, anything else
    its repr."""
    if depth > 20:
        return shown(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if INT64[0] <= value <= INT64[1]:
            return value
        as_float = _as_float(value)
        if as_float is not None:
            return as_float
        try:
            return str(value)
        except ValueError:  # past Python's digit limit for int → str
            return f"<an integer of {value.bit_length()} bits>"
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return json_safe(value.item(), depth + 1)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist(), depth + 1)
    if isinstance(value, dict):
        return {storable_text(str(k)): json_safe(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v, depth + 1) for v in value]
    if callable(getattr(value, "tolist", None)):  # a tensor, a pandas Series: its values
        try:
            return json_safe(value.tolist(), depth + 1)
        except Exception:
            return shown(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            return json_safe(value.item(), depth + 1)
        except Exception:
            return shown(value)
    return shown(value)
