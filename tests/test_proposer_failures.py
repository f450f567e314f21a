"""A proposer that fails stops the run as cleanly as a Ctrl-C: nothing recorded lost, none
done twice, and none of what it cut short charged (a proposer's bug crashed no evaluation).

- a ``tell`` or a ``state`` that raised: the turn's results are not written, and their
  evaluations go back ``pending`` with their attempt taken back, so a resume runs them
  (with ``max_retries: 0`` it had marked them failed, "gave up after 1 attempt");
- the same where the ``tell`` raised on the outcomes a Ctrl-C's stop writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from archive.store import Store
from search import api, proposers
from search.proposers.base import Observation, ProposerContext
from search.scheduler import ProposerFailed
from tests.conftest import quadratic_spec
from tests.support.proposers import GridWalkProposer

#: Whether the proposers below fail (a test turns it off to resume with the proposer "fixed").
FAILING = {"on": True}


class TellFailsProposer(GridWalkProposer):
    """:class:`GridWalkProposer` whose first ``tell`` of each run raises while ``FAILING``."""

    name = "tell-fails"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.tells = 0

    def tell(self, observations: list[Observation]) -> None:
        self.tells += 1
        if self.tells == 1 and FAILING["on"]:
            raise KeyError("emitter")
        super().tell(observations)


class StateFailsProposer(GridWalkProposer):
    """:class:`GridWalkProposer` whose second ``state()`` of each run (the first turn's
    results told) raises while ``FAILING``."""

    name = "state-fails"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.states = 0

    def state(self) -> bytes:
        self.states += 1
        if self.states == 2 and FAILING["on"]:
            raise RuntimeError("state exploded")
        return super().state()


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(proposers.BUILTIN, "tell-fails", "tests.test_proposer_failures:TellFailsProposer")
    monkeypatch.setitem(proposers.BUILTIN, "state-fails", "tests.test_proposer_failures:StateFailsProposer")
    FAILING["on"] = True
    yield
    FAILING["on"] = True


def _spec(algorithm: str, **overrides: Any) -> dict[str, Any]:
    spec = quadratic_spec(search__algorithm=algorithm, search__budget=12, search__batch_size=4,
                          search__max_in_flight=4, **overrides)
    spec["resources"]["max_retries"] = 0  # a row left charged would be given up on resume
    return spec


def _rows(url: str) -> list[dict[str, Any]]:
    store = Store(url)
    try:
        return store.evaluations(store.require_campaign("quad").id)
    finally:
        store.close()


def _resumed_fixed(url: str) -> None:
    """A resume by the proposer, no longer failing, runs every evaluation once: none given up."""
    FAILING["on"] = False
    assert api.resume("quad", storage=url, executor="inline").finished == 12
    rows = _rows(url)
    assert [r["status"] for r in rows] == ["done"] * 12, [(r["seq"], r["status"], r["error"]) for r in rows]
    assert all(r["attempts"] == 1 for r in rows)


@pytest.mark.parametrize("algorithm, phase", [("tell-fails", "tell"), ("state-fails", "state")])
def test_a_proposer_that_raises_puts_the_turns_evaluations_back_uncharged(
        sqlite_url: str, algorithm: str, phase: str) -> None:
    """They had been left ``running`` with ``attempts`` 1, and the resume (max_retries 0)
    recorded them failed: "gave up after 1 attempt: its worker or scheduler was lost"."""
    with pytest.raises(ProposerFailed, match=f"raised in {phase}: .*not written"):
        api.run(_spec(algorithm), storage=sqlite_url, executor="inline")
    assert [(r["status"], r["attempts"]) for r in _rows(sqlite_url)] == [("pending", 0)] * 4
    _resumed_fixed(sqlite_url)


def test_a_tell_that_raises_in_a_ctrl_cs_stop_puts_back_what_it_was_told(sqlite_url: str) -> None:
    """A Ctrl-C during the third evaluation: the stop tells the two that finished, and the
    tell raises (an error in the Ctrl-C's handling, so the stop's own). All four go back
    ``pending``, uncharged: the two told had been left ``running``, charged."""
    from tests.support import evaluators

    spec = _spec("tell-fails", evaluator={"kind": "python", "target": "tests.support.evaluators:interrupts_once"})
    evaluators.INTERRUPT_AT.update(call=3, calls=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            api.run(spec, storage=sqlite_url, executor="inline")
    finally:
        evaluators.INTERRUPT_AT.update(call=0, calls=0)
    assert [(r["status"], r["attempts"]) for r in _rows(sqlite_url)] == [("pending", 0)] * 4
    _resumed_fixed(sqlite_url)
