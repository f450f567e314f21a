"""What the scheduler takes from an ask but not as proposed is said, once a run.

A proposal outside the space (a coordinate of ``x`` outside [0, 1], a value of ``params``
outside its bounds) is clipped as before, and now stored with ``clipped: true`` in its
proposal dict and warned of once a run for each label; an ask that returns more than it was
asked has the rest dropped, with one warning. Before, both were silent: a proposer whose
encoding was off evaluated the same clipped corner 30 times without a word.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from search import api
from search.proposals import ProposalRows
from search.proposers.base import Proposal
from search.proposers.random_search import RandomProposer
from search.space import SearchSpace, outside_note
from search.spec import parse_spec
from tests.conftest import quadratic_spec
from tests.test_plugins import install_plugin
from tests.test_proposer_output import BEHAVIOUR, MIXED, rows_of, spec_of, with_params, with_x

LOGGER = "entropy_atlas.proposals"


@pytest.fixture
def bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The ``bad`` plug-in of :mod:`tests.test_proposer_output`, whose ask a test replaces."""
    install_plugin(tmp_path / "site", monkeypatch, "tests.test_proposer_output:Misbehaving")
    BEHAVIOUR.clear()
    yield BEHAVIOUR
    BEHAVIOUR.clear()


def _space(space: dict[str, Any]) -> SearchSpace:
    return SearchSpace(parse_spec(quadratic_spec(space=space)).space)


VECTOR = _space({"x": {"type": "float", "low": -5.0, "high": 5.0, "size": 4},
                 "n": {"type": "int", "low": 1, "high": 5}})


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_a_point_outside_the_cube_is_marked_and_warned_of_once(caplog: pytest.LogCaptureFixture) -> None:
    rows = ProposalRows(VECTOR, "hill-climb")
    inside = np.full(5, 0.5)
    outside = np.array([0.5, 1.8, 0.2, 0.5, 0.5])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        first = rows.rows([Proposal(inside), Proposal(outside, meta={"gen": 1})], 2, 0)
        again = rows.rows([Proposal(outside)], 1, 2)
    assert _warnings(caplog) == ["proposer hill-climb proposed points outside the space (x[1]: 1.8 > 1 in the unit "
                                 "cube); they are clipped to its bounds"]
    assert first[0].proposal == {} and first[1].proposal == {"gen": 1, "clipped": True}
    assert first[1].x == [0.5, 1.0, 0.2, 0.5, 0.5] and first[1].params["x"][1] == 5.0
    assert again[0].proposal == {"clipped": True}


def test_a_point_on_the_cubes_faces_is_not_clipped(caplog: pytest.LogCaptureFixture) -> None:
    """search/proposals.py ProposalRows.rows: only an ``x`` outside [0, 1] is clipped, marked and
    warned of; 0 and 1 themselves are inside."""
    rows = ProposalRows(VECTOR, "hill-climb")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        (row,) = rows.rows([Proposal(np.array([0.0, 1.0, 0.0, 1.0, 0.0]))], 1, 0)
    assert "clipped" not in row.proposal
    assert _warnings(caplog) == []


def test_params_outside_their_bounds_are_named_in_the_space_s_units(caplog: pytest.LogCaptureFixture) -> None:
    rows = ProposalRows(VECTOR, "hill-climb")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        made = rows.rows([Proposal(np.full(5, 0.5), params={"x": [99.0, -99.0, 0.0, 1.0], "n": 3}),
                          Proposal(np.full(5, 0.5), params={"x": [1.0, 2.0, 3.0, 4.0], "n": 2.6})], 2, 0)
    assert _warnings(caplog) == ["proposer hill-climb proposed points outside the space (x[0]: 99 > high 5); they "
                                 "are clipped to its bounds"]
    assert made[0].params == {"x": [5.0, -5.0, 0.0, 1.0], "n": 3} and made[0].proposal == {"clipped": True}
    assert made[1].params == {"x": [1.0, 2.0, 3.0, 4.0], "n": 3} and made[1].proposal == {}  # rounded, not clipped


def test_each_label_is_warned_of_once(caplog: pytest.LogCaptureFixture) -> None:
    """A portfolio's members are named by their labels: one warning each."""
    rows = ProposalRows(VECTOR, "portfolio")
    far = np.array([-0.5, 0.5, 0.5, 0.5, 0.5])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        rows.rows([Proposal(far, proposer="random"), Proposal(far, proposer="random"),
                   Proposal(far, proposer="map-elites")], 3, 0)
    assert _warnings(caplog) == [
        "proposer portfolio (from random) proposed points outside the space (x[0]: -0.5 < 0 in the unit cube); "
        "they are clipped to its bounds",
        "proposer portfolio (from map-elites) proposed points outside the space (x[0]: -0.5 < 0 in the unit cube); "
        "they are clipped to its bounds"]


def test_more_proposals_than_asked_are_dropped_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    rows = ProposalRows(VECTOR, "hill-climb")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        made = rows.rows([Proposal(np.full(5, 0.5)) for _ in range(20)], 10, 0)
        rows.rows([Proposal(np.full(5, 0.5)) for _ in range(3)], 2, 10)
        rows.rows([Proposal(np.full(5, 0.5)) for _ in range(2)], 2, 12)
    assert len(made) == 10
    assert _warnings(caplog) == ["proposer hill-climb returned 20 proposals for 10 asked; the extra are dropped"]


def test_a_single_proposal_past_those_asked_is_dropped_and_warned_of(caplog: pytest.LogCaptureFixture) -> None:
    """search/proposals.py ProposalRows.rows: "proposals past the n asked are dropped, warned of
    once a run", the first one past them too."""
    rows = ProposalRows(VECTOR, "hill-climb")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        made = rows.rows([Proposal(np.full(5, 0.5)), Proposal(np.full(5, 0.25))], 1, 0)
    assert len(made) == 1
    assert _warnings(caplog) == ["proposer hill-climb returned 2 proposals for 1 asked; the extra are dropped"]


def test_a_refused_ask_warns_of_nothing(caplog: pytest.LogCaptureFixture) -> None:
    rows = ProposalRows(VECTOR, "hill-climb")
    with caplog.at_level(logging.WARNING, logger=LOGGER), pytest.raises(Exception, match="non-finite"):
        rows.rows([Proposal(np.full(5, 2.0)), Proposal(np.full(5, np.nan))], 2, 0)
    assert _warnings(caplog) == []


@pytest.mark.parametrize(("name", "value", "note"), [
    ("a", 1.5, "a: 1.5 > high 1"), ("a", -0.25, "a: -0.25 < low 0"), ("a", 0.5, None),
    ("n", 5.4, None), ("n", 5.6, "n: 5.6 > high 5"), ("n", 0, "n: 0 < low 1"), ("c", "z", None)])
def test_outside_note(name: str, value: Any, note: str | None) -> None:
    space = _space(MIXED)
    assert outside_note(name, space.params[name], value) == note


def test_a_run_warns_once_and_marks_every_clipped_row(bad: dict, sqlite_url: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    bad["ask"] = with_x([5.0, -3.0, 0.3, 0.6])
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        api.run(spec_of(MIXED, budget=8), storage=sqlite_url, executor="inline")
    assert _warnings(caplog) == ["proposer bad proposed points outside the space (a: 5 > 1 in the unit cube); "
                                 "they are clipped to its bounds"]
    rows = rows_of(sqlite_url)
    assert len(rows) == 8 and all(r["proposal"] == {"clipped": True} and r["x"][:2] == [1.0, 0.0] for r in rows)


def test_a_run_of_params_in_bounds_and_of_as_many_as_asked_warns_of_nothing(
        bad: dict, sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    bad["ask"] = with_params({"a": 0.25, "b": 0.75, "n": 2, "c": "q"})
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        api.run(spec_of(MIXED, budget=8), storage=sqlite_url, executor="inline")
    assert _warnings(caplog) == []
    assert all("clipped" not in r["proposal"] for r in rows_of(sqlite_url))


def test_a_run_whose_ask_returns_twice_as_many_warns_once(bad: dict, sqlite_url: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    bad["ask"] = lambda proposer, n: RandomProposer.ask(proposer, 2 * n)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        stats = api.run(spec_of(budget=12), storage=sqlite_url, executor="inline")
    assert stats.finished == 12
    assert _warnings(caplog) == ["proposer bad returned 8 proposals for 4 asked; the extra are dropped"]
