"""Executors whose evaluator lives in the scheduler's own process (inline, simulated)."""

from __future__ import annotations

import logging

from workers import registry
from workers.contract import EvalContext, Evaluator, device_for, setup_seed
from workers.executors.base import SETUP_CHECK_S, Executor, ExecutorConfig, teardown_failure_text
from workers.exit_guard import exit_refused
from workers.runner import setup_failure_text

log = logging.getLogger("entropy_atlas.executor")


class InProcessExecutor(Executor):
    """Builds and sets up the evaluator once, on first use, in this process.

    A setup failure is kept in ``_setup_error`` (not raised): the subclass fails every
    task with it, as a worker whose setup failed does. Whatever ``__init__`` or ``setup``
    raises is such a failure (``sys.exit``, ``GeneratorExit``, any ``BaseException``), but
    a ``KeyboardInterrupt``: in this process it may be the user's Ctrl-C, which stops the
    run (before the campaign is written). An unusable ``max_batch_size`` is one too, and so
    is ``os._exit`` called meanwhile (:mod:`workers.exit_guard`), here and in ``teardown``.

    ``setup`` gets ``ctx.seed`` = :func:`~workers.contract.setup_seed` of the campaign's seed
    (``config.seed``) for worker 0; each evaluation its own seed (:func:`~workers.runner.run_tasks`)."""

    def __init__(self, config: ExecutorConfig) -> None:
        super().__init__(config)
        self._evaluator: Evaluator | None = None
        self._setup_error: BaseException | None = None
        seed = setup_seed(config.seed)  # the inline executor's one worker is worker 0
        self._ctx = EvalContext(seed=seed, seeds=[seed], device=device_for(config.num_gpus), campaign=config.campaign)
        if config.num_gpus > 0 and self._ctx.device == "cpu":  # Ray refuses such a campaign; here it runs
            log.warning("resources.num_gpus asks for %g GPU per evaluation, but torch sees none here: the "
                        "evaluations run on the CPU (ctx.device 'cpu')", config.num_gpus)
        self._chunk = 1  # the evaluator's max_batch_size, once it is built

    def start(self) -> None:
        if self._evaluator is not None or self._setup_error is not None:
            return
        try:
            with exit_refused():
                evaluator = registry.build(self.config.kind, self.config.config, self.config.target)
                self._chunk = registry.batch_size(evaluator)
                evaluator.setup(self.config.config, self._ctx)
            self._evaluator = evaluator
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the evaluator's own failure, whatever it raised
            self._setup_error = exc

    def setup_problem(self, wait_s: float = SETUP_CHECK_S) -> str | None:
        """The setup runs in :meth:`start`, so its outcome is known at once."""
        self.start()
        return None if self._setup_error is None else setup_failure_text(self._setup_error)

    def shutdown(self) -> None:
        """Tear the evaluator down. Its failure (an exception, ``sys.exit``, any
        ``BaseException`` but a Ctrl-C) is a one-line warning: the run's results are
        written by then, and a finished run stays finished (its summary and map follow)."""
        evaluator, self._evaluator = self._evaluator, None
        if evaluator is None:
            return
        try:
            with exit_refused():
                evaluator.teardown()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            log.warning("%s", teardown_failure_text(exc))

