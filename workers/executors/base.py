"""What every executor does: take tasks, report outcomes, respect a per-evaluation timeout."""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any

from entropy_atlas.errors import AtlasError
from entropy_atlas.storable import storable_text
from workers.runner import EvaluationTask, Outcome

SETUP_CHECK_S = 30.0  # how long a run waits for its workers' setup before it writes the campaign


class ExecutorError(AtlasError, RuntimeError):
    """An executor that cannot be had: an unknown name, or a cluster without the resources asked.
    ``resumes_when_back``: the run stopped because its cluster went; the scheduler adds the
    resume in its caller's words."""

    resumes_when_back = False


@dataclasses.dataclass
class ExecutorConfig:
    """Plain values an executor needs (no campaign objects cross into workers/). ``seed``:
    the campaign's ``search.seed``, from which each worker's ``setup`` seed is derived
    (:func:`workers.contract.setup_seed`). ``whole_batches``: the campaign's
    ``search.reproducible``; the inline executor then hands back exactly one submitted batch
    a poll, whatever the evaluations' times (:class:`~workers.executors.inline.InlineExecutor`),
    and Ray's outcomes are held for their batch (:class:`~workers.executors.ordered.OrderedBatches`)."""

    kind: str
    config: dict[str, Any]
    target: str | None
    measure_names: list[str]
    campaign: str = ""
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    timeout_s: float = 900.0
    max_in_flight: int = 16
    custom_resources: dict[str, float] = dataclasses.field(default_factory=dict)
    memory_mb: float | None = None
    seed: int = 0
    whole_batches: bool = False

    @property
    def memory_bytes(self) -> int | None:
        """``memory_mb`` in bytes, as Ray's ``memory`` resource counts it."""
        return None if self.memory_mb is None else int(self.memory_mb * 2**20)


class Executor(abc.ABC):
    """Runs tasks and hands back :class:`Outcome` objects as they finish.

    ``lost`` outcomes mean the worker died; the caller decides whether to retry. An
    executor calls ``on_start`` with the ids of evaluations as workers start them.

    ``reports_starts_late``: ``False`` (inline) means an evaluation starts only after
    ``on_start`` returns, so a charge must be durable by then; ``True`` (Ray, simulated)
    means workers may have started it already when ``on_start`` is told, so the caller
    may persist the charge with its next write.
    """

    reports_starts_late: bool = False

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.on_start: Callable[[list[int]], None] | None = None

    def _report_started(self, evaluation_ids: list[int]) -> None:
        """Tell ``on_start`` (the scheduler: it charges the attempts) which evaluations a
        worker has started."""
        if evaluation_ids and self.on_start is not None:
            self.on_start(evaluation_ids)

    @abc.abstractmethod
    def start(self) -> None:
        """Start workers (idempotent)."""

    def setup_problem(self, wait_s: float = SETUP_CHECK_S) -> str | None:
        """Why the evaluator could not be set up (``evaluator setup failed: …``), where a
        worker has said so within ``wait_s`` of :meth:`start`; None when every setup that
        ended in time succeeded, or none ended. A run asks before it writes the campaign, so
        that a config the evaluator refuses leaves nothing behind; a setup that ends later
        fails the run as before (the scheduler stops at its first setup failure)."""
        return None

    @abc.abstractmethod
    def capacity(self) -> int:
        """How many evaluations it can run at once."""

    @abc.abstractmethod
    def submit(self, tasks: list[EvaluationTask]) -> None:
        """Queue tasks; they start as workers free up."""

    @abc.abstractmethod
    def poll(self, timeout: float) -> list[Outcome]:
        """Outcomes that finished, waiting at most ``timeout`` seconds for the first."""

    def take_finished(self) -> list[Outcome]:
        """Outcomes finished but not returned because a Ctrl-C cut :meth:`poll` short (the
        inline executor's batch so far); none where every outcome is returned as it comes."""
        return []

    @abc.abstractmethod
    def in_flight(self) -> int:
        """Tasks submitted and not yet reported."""

    @abc.abstractmethod
    def shutdown(self) -> None:
        """Stop the workers this executor started."""

    def __enter__(self) -> Executor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def teardown_failure_text(exc: BaseException, worker: str | None = None) -> str:
    """The one line a failed ``teardown`` is warned with (``worker``: where it ran)."""
    where = f" on {worker}" if worker else ""
    if isinstance(exc, SystemExit):
        return f"the evaluator's teardown{where} called sys.exit({exc.code!r:.200}); ignored"
    try:
        message = str(exc).strip().splitlines()
    except Exception:  # an exception whose __str__ raises
        message = ["<its message could not be read>"]
    said = f": {message[0][:500]}" if message else ""
    return storable_text(f"the evaluator's teardown{where} failed: {type(exc).__name__}{said}")
