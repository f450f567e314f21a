"""A proposer plug-in for tests: what a third-party package registers under the
``entropy_atlas.proposers`` entry-point group (see tests/test_plugins.py)."""

from __future__ import annotations

import numpy as np

from search.proposers.base import Observation, Proposal, Proposer, ProposerContext


class GridWalkProposer(Proposer):
    """Walks the cube's diagonal in ``steps`` points; each proposal's meta keeps the batch
    size and the dimension its context gave, and ``told`` counts the results told."""

    name = "grid-walk"
    option_names = ("steps",)

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.steps = self.option("steps", 10, lambda v: isinstance(v, int) and v > 0, "must be an integer > 0")
        self.asked = 0
        self.told = 0

    def ask(self, n: int) -> list[Proposal]:
        out = []
        for _ in range(n):
            u = (self.asked % self.steps + 0.5) / self.steps
            meta = {"batch_size": self.ctx.batch_size, "dim": self.ctx.space.dim}
            out.append(Proposal(np.full(self.ctx.space.dim, u), meta=meta))
            self.asked += 1
        return out

    def tell(self, observations: list[Observation]) -> None:
        self.told += len(observations)


class FlakyProposer(GridWalkProposer):
    """:class:`GridWalkProposer` that raises in its ``fail_ask``-th ask or its
    ``fail_tell``-th tell of each run (0: never), as a plug-in with a bug would."""

    name = "flaky"
    option_names = ("steps", "fail_ask", "fail_tell")

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.fail_ask = self.int_option("fail_ask", 0, minimum=0)
        self.fail_tell = self.int_option("fail_tell", 0, minimum=0)
        self.asks = self.tells = 0

    def ask(self, n: int) -> list[Proposal]:
        self.asks += 1
        if self.asks == self.fail_ask:
            raise ZeroDivisionError("the step size came out as 0/0\nsecond line")
        return super().ask(n)

    def tell(self, observations: list[Observation]) -> None:
        self.tells += 1
        if self.tells == self.fail_tell:
            raise KeyError("emitter")
        super().tell(observations)


class _OnEachAsk(GridWalkProposer):
    """:class:`GridWalkProposer` that counts its asks (``asks``) and calls :meth:`on_ask`
    with the count before each."""

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.asks = 0

    def ask(self, n: int) -> list[Proposal]:
        self.asks += 1
        self.on_ask(self.asks)
        return super().ask(n)

    def on_ask(self, k: int) -> None:
        """Before the ``k``-th ask."""


class InterruptedProposer(_OnEachAsk):
    """Its second ask meets a Ctrl-C inside compiled code, which hands it back as a
    ``SystemError`` with the interrupt as its context (as numba does)."""

    name = "interrupted"

    def on_ask(self, k: int) -> None:
        if k == 2:
            try:
                raise KeyboardInterrupt
            except KeyboardInterrupt:
                raise SystemError("CPUDispatcher(<function _sample>) returned a result with an exception set")  # noqa: B904 - as numba raises it


class SlowAskProposer(_OnEachAsk):
    """Its asks take 0.3 s (a model's fit), and its ``interrupt_at``-th ask meets a Ctrl-C
    (0: never)."""

    name = "slow-ask"
    option_names = ("steps", "interrupt_at")

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.interrupt_at = self.int_option("interrupt_at", 0, minimum=0)

    def on_ask(self, k: int) -> None:
        import time

        time.sleep(0.3)
        if k == self.interrupt_at:
            raise KeyboardInterrupt


class SwallowsCtrlCProposer(_OnEachAsk):
    """Its second ask meets a Ctrl-C that compiled code swallows (a ctypes callback prints
    "Exception ignored" and drops it): only the request remains."""

    name = "swallows"

    def on_ask(self, k: int) -> None:
        import contextlib
        import signal

        from entropy_atlas import interrupts

        if k == 2:
            with contextlib.suppress(KeyboardInterrupt):
                interrupts.interrupt(signal.SIGINT, None)


class CtrlCInTellProposer(GridWalkProposer):
    """:class:`GridWalkProposer` whose second tell meets a Ctrl-C (a CMA-ES generation's
    update, after the results left flight and before they were written)."""

    name = "ctrl-c-in-tell"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.tells = 0

    def tell(self, observations: list[Observation]) -> None:
        self.tells += 1
        if self.tells == 2:
            raise KeyboardInterrupt
        super().tell(observations)


class FitsAModelProposer(_OnEachAsk):
    """Says its asks are slow (``asks_are_slow``, as ``bo``'s fit) and its second ask meets
    a Ctrl-C at once: the first in a new process, with no slow ask timed yet."""

    name = "fits-a-model"
    asks_are_slow = True

    def on_ask(self, k: int) -> None:
        if k == 2:
            raise KeyboardInterrupt
