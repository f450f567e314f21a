"""What a proposer hands the scheduler is checked before it is stored or evaluated.

A plug-in (here :class:`Misbehaving`, a ``random`` proposer whose ``ask``, ``state`` or
``restore`` a test replaces) may return anything. The scheduler repairs what has one plain
meaning (params clipped into their bounds, an ``int`` rounded, unknown and inactive keys
dropped; coordinates clipped into the cube) and stops the run with one line
(:class:`ProposerFailed`) on anything else, the turn written as for an ask that raised: no
row ever holds params outside the space, and a resume finishes the budget. A progress
callback that raises stops the run as a Ctrl-C does, then its exception propagates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.store import Store
from search import api
from search.proposers.base import History, Observation, Proposal
from search.proposers.random_search import RandomProposer
from search.scheduler import ProposerFailed
from search.space import SearchSpace
from search.spec import parse_spec
from tests.conftest import quadratic_spec
from tests.test_plugins import PLUGIN, install_plugin

#: What the plug-in does instead of its own ``ask``/``state``/``restore`` (absent: its own).
BEHAVIOUR: dict[str, Callable[..., Any]] = {}
#: Every observation the plug-in was told, across runs.
TOLD: list[Observation] = []


class Misbehaving(RandomProposer):
    """``random``, named ``bad``, with its ``ask``, ``state`` and ``restore`` replaceable."""

    name = "bad"

    def ask(self, n: int) -> Any:
        act = BEHAVIOUR.get("ask")
        return act(self, n) if act else super().ask(n)

    def tell(self, observations: list[Observation]) -> None:
        TOLD.extend(observations)

    def state(self) -> Any:
        act = BEHAVIOUR.get("state")
        return act(self) if act else super().state()

    def restore(self, state: bytes | None, history: History) -> None:
        act = BEHAVIOUR.get("restore")
        if act:
            act(self)
        super().restore(state, history)


@pytest.fixture
def bad(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Callable[..., Any]]]:
    install_plugin(tmp_path / "site", monkeypatch, "tests.test_proposer_output:Misbehaving")
    BEHAVIOUR.clear()
    TOLD.clear()
    yield BEHAVIOUR
    BEHAVIOUR.clear()
    TOLD.clear()


MIXED = {"a": {"type": "float", "low": 0.0, "high": 1.0}, "b": {"type": "float", "low": 0.0, "high": 1.0},
         "n": {"type": "int", "low": 1, "high": 5}, "c": {"type": "categorical", "choices": ["p", "q"]}}


def spec_of(space: dict[str, Any] | None = None, budget: int = 16) -> dict[str, Any]:
    """A campaign of the plug-in: ``budget`` rows in batches of 4, 8 in flight."""
    extra = {"space": space} if space else {}
    return quadratic_spec(search__algorithm=PLUGIN, search__budget=budget, search__batch_size=4,
                          search__max_in_flight=8, **extra)


def rows_of(url: str) -> list[dict[str, Any]]:
    store = Store(url)
    try:
        return store.evaluations(store.require_campaign("quad").id)
    finally:
        store.close()


def space_of(spec: dict[str, Any]) -> SearchSpace:
    return SearchSpace(parse_spec(spec).space)


def assert_rows_in_space(url: str, spec: dict[str, Any]) -> None:
    """Every stored row's params are the space's own (no repair needed), its x is in the
    cube and decodes to them."""
    space = space_of(spec)
    for row in rows_of(url):
        params, problems = space.coerce(row["params"])
        assert not problems and params == row["params"], row
        x = np.asarray(row["x"], dtype=float)
        assert x.shape == (space.dim,) and np.all((x >= 0) & (x <= 1)), row
        assert space.decode(x) == row["params"], row


def stop_then_finish(spec: dict[str, Any], url: str, match: str, once: bool = True) -> ProposerFailed:
    """Run ``spec`` until the plug-in's misbehaviour stops it (``match``), check the rows,
    then resume with the plug-in behaving: the budget is reached, each row done (``once``:
    with one attempt; else the turn that was not written ran again)."""
    with pytest.raises(ProposerFailed, match=match) as stop:
        api.run(spec, storage=url, executor="inline")
    assert "\n" not in str(stop.value)
    assert_rows_in_space(url, spec)
    BEHAVIOUR.clear()
    stats = api.run(spec, storage=url, executor="inline")
    assert stats.finished == spec["search"]["budget"]
    rows = rows_of(url)
    assert sorted(r["seq"] for r in rows) == list(range(spec["search"]["budget"]))
    assert all(r["status"] == "done" and (r["attempts"] == 1 or not once) for r in rows)
    assert_rows_in_space(url, spec)
    return stop.value


def after(k: int, act: Callable[[Misbehaving, int], Any]) -> Callable[[Misbehaving, int], Any]:
    """An ask that is the proposer's own for its first ``k`` asks, then ``act``."""
    count = {"asks": 0}

    def ask(proposer: Misbehaving, n: int) -> Any:
        count["asks"] += 1
        return act(proposer, n) if count["asks"] > k else RandomProposer.ask(proposer, n)

    return ask


def with_params(params: Any, x: Any = None) -> Callable[[Misbehaving, int], list[Proposal]]:
    """An ask whose every proposal gives ``params`` (and ``x``, else the cube's centre)."""
    def ask(proposer: Misbehaving, n: int) -> list[Proposal]:
        point = np.full(proposer.ctx.space.dim, 0.5) if x is None else x
        return [Proposal(point, params=params) for _ in range(n)]

    return ask


def with_x(x: Any) -> Callable[[Misbehaving, int], list[Proposal]]:
    """An ask whose every proposal is the point ``x``."""
    return lambda proposer, n: [Proposal(np.asarray(x, dtype=float)) for _ in range(n)]


# -- 1. params: repaired where the repair is plain, else a one-line stop ---------------
def test_params_outside_the_space_are_repaired_and_x_encodes_them(bad: dict, sqlite_url: str) -> None:
    """Out of bounds clipped, an int rounded, unknown and inactive keys dropped; the stored
    x is the repaired params' encoding (it was the centre whatever the params)."""
    space = {**MIXED, "v": {"type": "float", "low": 0.0, "high": 2.0, "when": {"c": "q"}}}
    bad["ask"] = with_params({"a": 1e9, "b": -4, "n": 3.6, "c": "p", "v": 1.0, "zzz": object()})
    spec = spec_of(space, budget=8)
    api.run(spec, storage=sqlite_url, executor="inline")
    rows = rows_of(sqlite_url)
    assert len(rows) == 8 and all(r["status"] == "done" for r in rows)
    assert {repr(r["params"]) for r in rows} == {repr({"a": 1.0, "b": 0.0, "n": 4, "c": "p"})}
    assert rows[0]["x"] == pytest.approx([1.0, 0.0, 0.7, 0.25, 0.5])
    assert_rows_in_space(sqlite_url, spec)


def test_params_that_decode_from_x_keep_the_proposers_x(bad: dict, sqlite_url: str) -> None:
    """A proposer that gives x and the params x decodes to (the llm fallback) keeps its x,
    off the centres of int and categorical coordinates too."""
    x = [0.1, 0.2, 0.33, 0.77]
    bad["ask"] = lambda p, n: [Proposal(np.array(x), params=p.ctx.space.decode(np.array(x))) for _ in range(n)]
    api.run(spec_of(MIXED, budget=4), storage=sqlite_url, executor="inline")
    assert all(r["x"] == x and r["params"] == {"a": 0.1, "b": 0.2, "n": 2, "c": "q"} for r in rows_of(sqlite_url))


@pytest.mark.parametrize(("params", "problem"), [
    ({}, "a: missing"),
    ({"a": 0.5}, "b: missing"),
    ({"a": "abc", "b": 0.5}, "a: 'abc' is not a number"),
    ({"a": "0.5", "b": 0.5}, "a: '0.5' is not a number"),
    ({"a": math.nan, "b": 0.5}, "a: nan is not finite"),
    ({"a": math.inf, "b": 0.5}, "a: inf is not finite"),
    ({"a": None, "b": 0.5}, "a: None is not a number"),
    ({"a": True, "b": 0.5}, "a: True is not a number"),
    ({"a": object(), "b": 0.5}, "a: <object object at"),
    ([0.5, 0.5], "expected a mapping of parameter values, got list"),
])
def test_params_that_cannot_be_repaired_stop_the_run(bad: dict, sqlite_url: str, params: Any, problem: str) -> None:
    bad["ask"] = after(2, with_params(params))
    stop = stop_then_finish(spec_of(), sqlite_url, "proposed params the space cannot take")
    assert str(stop).startswith(f"campaign 'quad': proposer bad proposed params the space cannot take "
                                f"(proposal 0): {problem}")
    assert str(stop).endswith("fix the proposer (or its options) and `api.resume('quad', …)`")


def test_a_categorical_value_not_among_the_choices_stops_the_run(bad: dict, sqlite_url: str) -> None:
    bad["ask"] = with_params({"a": 0.5, "b": 0.5, "n": 2, "c": "P"})
    stop_then_finish(spec_of(MIXED), sqlite_url, r"\(proposal 0\): c: 'P' is not one of \['p', 'q'\]")


# -- 2. x: a non-finite coordinate stops the run, one outside the cube is clipped --------
@pytest.mark.parametrize("space", [None, MIXED, {"c": {"type": "categorical", "choices": ["p", "q", "r"]},
                                                 "a": {"type": "float", "low": 0, "high": 1},
                                                 "b": {"type": "int", "low": 0, "high": 1}}],
                         ids=["float", "mixed", "categorical-first"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_coordinate_stops_the_run(bad: dict, sqlite_url: str, space: Any, value: float) -> None:
    def ask(p: Misbehaving, n: int) -> list[Proposal]:
        out = RandomProposer.ask(p, n)
        out[1].x[0] = value
        return out

    bad["ask"] = after(1, ask)
    stop = stop_then_finish(spec_of(space), sqlite_url, "proposed a point with a non-finite coordinate")
    assert str(stop).startswith("campaign 'quad': proposer bad proposed a point with a non-finite coordinate "
                                "(proposal 1: [")
    assert "this turn's 0 results and 4 new rows are written" in str(stop)


@pytest.mark.parametrize("space", [None, MIXED], ids=["float", "mixed"])
def test_coordinates_outside_the_cube_are_clipped_stored_and_told(bad: dict, sqlite_url: str, space: Any) -> None:
    dim = 2 if space is None else 4
    bad["ask"] = with_x([5.0, -3.0, 0.3, 0.6][:dim])
    spec = spec_of(space, budget=8)
    api.run(spec, storage=sqlite_url, executor="inline")
    rows = rows_of(sqlite_url)
    assert all(r["x"] == [1.0, 0.0, 0.3, 0.6][:dim] and r["status"] == "done" for r in rows)
    assert rows[0]["params"]["a"] == 1.0 and rows[0]["params"]["b"] == 0.0
    assert len(TOLD) == 8 and all(o.x.tolist() == [1.0, 0.0, 0.3, 0.6][:dim] for o in TOLD)
    assert_rows_in_space(sqlite_url, spec)


def test_a_point_without_params_keeps_its_x_on_an_int_space(bad: dict, sqlite_url: str) -> None:
    """x is not re-encoded from its decoded params (a CMA-ES emitter is told the very
    solutions it sampled): 0.33 stays 0.33, not the centre of its int's bin."""
    bad["ask"] = with_x([0.1, 0.2, 0.33, 0.77])
    api.run(spec_of(MIXED, budget=4), storage=sqlite_url, executor="inline")
    assert all(r["x"] == [0.1, 0.2, 0.33, 0.77] for r in rows_of(sqlite_url))
    assert all(o.x.tolist() == [0.1, 0.2, 0.33, 0.77] for o in TOLD)


def test_a_portfolio_member_is_never_told_a_point_outside_the_cube(sqlite_url: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A member that proposes outside the cube: its results reach every member clipped
    (map-elites made NaN children of the raw x, bo's fit failed)."""
    original = RandomProposer.ask
    monkeypatch.setattr(RandomProposer, "ask",
                        lambda self, n: [Proposal(p.x * 4 - 2, meta=p.meta) for p in original(self, n)])
    spec = quadratic_spec(search__algorithm="portfolio", search__budget=40, search__batch_size=4,
                          search__max_in_flight=8)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 40 and stats.counts["failed"] == 0
    rows = rows_of(sqlite_url)
    assert {r["proposer"] for r in rows} >= {"random", "map-elites"}
    assert all(0 <= v <= 1 for r in rows for v in r["x"])
    assert all(0 <= v <= 1 for r in rows if r["proposer"] == "map-elites" for v in r["params"].values())


def test_a_portfolio_member_with_a_non_finite_coordinate_is_named(sqlite_url: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """bo's fit failed at every ask once a member's NaN point was told; now the run stops at
    that ask, naming the member, and a resume without the fault finishes the budget."""
    original = RandomProposer.ask
    monkeypatch.setattr(RandomProposer, "ask", lambda self, n: [Proposal(np.full(2, np.nan)) for _ in range(n)])
    spec = quadratic_spec(search__algorithm="portfolio", search__budget=24, search__batch_size=4,
                          search__max_in_flight=8)
    with pytest.raises(ProposerFailed) as stop:
        api.run(spec, storage=sqlite_url, executor="inline")
    assert "proposer portfolio proposed a point with a non-finite coordinate (proposal 0, from random: [nan, nan])" \
        in str(stop.value)
    assert_rows_in_space(sqlite_url, spec)
    monkeypatch.setattr(RandomProposer, "ask", original)
    assert api.run(spec, storage=sqlite_url, executor="inline").finished == 24
    assert_rows_in_space(sqlite_url, spec)


# -- 3. malformed results: one line naming the proposer and the first problem ------------
def _ragged(p: Misbehaving, n: int) -> list[Proposal]:
    return [Proposal([0.5] * (1 + i % 2)) for i in range(n)]  # type: ignore[arg-type]


def _meta_of(meta: Any) -> Callable[[Misbehaving, int], list[Proposal]]:
    return lambda p, n: [Proposal(x, meta=meta) for x in p.rng.random((n, 2))]


def _labelled(label: Any) -> Callable[[Misbehaving, int], list[Proposal]]:
    return lambda p, n: [Proposal(x, proposer=label) for x in p.rng.random((n, 2))]


MALFORMED = {
    "dimension 3": (with_x([0.5, 0.5, 0.5]), "returned a point of dimension 3, the space has 2 (proposal 0)"),
    "dimension 1": (with_x([0.5]), "returned a point of dimension 1, the space has 2 (proposal 0)"),
    "scalar x": (lambda p, n: [Proposal(0.5) for _ in range(n)],  # type: ignore[arg-type]
                 "returned a point of shape () as proposal 0, not a vector of 2 coordinates"),
    "x None": (lambda p, n: [Proposal(None) for _ in range(n)],  # type: ignore[arg-type]
               "returned x=None as proposal 0's point, not a vector of numbers"),
    "ragged x": (_ragged, "returned a point of dimension 1, the space has 2 (proposal 0)"),
    "x of strings": (lambda p, n: [Proposal(["0.5", "0.5"]) for _ in range(n)],  # type: ignore[arg-type]
                     "returned x=['0.5', '0.5'] as proposal 0's point, not a vector of numbers"),
    "x nested": (with_x([[0.5, 0.5]]), r"returned a point of shape (1, 2) as proposal 0"),
    "a generator": (lambda p, n: (q for q in RandomProposer.ask(p, n)),
                    "returned a generator from ask, not a list of proposals"),
    "an ndarray": (lambda p, n: p.rng.random((n, 2)), "returned an ndarray from ask, not a list of proposals"),
    "None": (lambda p, n: None, "returned None from ask, not a list of proposals"),
    "[None] * n": (lambda p, n: [None] * n, "returned None as proposal 0, not a Proposal"),
    "points as arrays": (lambda p, n: list(p.rng.random((n, 2))), "returned an ndarray as proposal 0, not a Proposal"),
    "object() in meta": (_meta_of({"k": object()}),
                         "returned meta that JSON cannot store with proposal 0: Type is not JSON serializable"),
    "meta a str": (_meta_of("hello"), "returned meta='hello' with proposal 0, not a dict"),
    "proposer=123": (_labelled(123), "labelled proposal 0 proposer=123, not a name (a str)"),
    "a long label": (_labelled("x" * 65), "labelled proposal 0 'xxxx"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_ask_result_stops_the_run_with_one_line(bad: dict, storage_url: str, case: str) -> None:
    act, problem = MALFORMED[case]
    bad["ask"] = after(1, act)
    stop = stop_then_finish(spec_of(), storage_url, "proposer bad ")
    assert str(stop).startswith(f"campaign 'quad': proposer bad {problem}")
    assert "this turn's 0 results and 4 new rows are written" in str(stop)


def test_meta_none_is_stored_empty(bad: dict, sqlite_url: str) -> None:
    bad["ask"] = _meta_of(None)
    api.run(spec_of(budget=4), storage=sqlite_url, executor="inline")
    assert all(r["proposal"] == {} for r in rows_of(sqlite_url))
    assert all(o.meta == {} for o in TOLD)


def cli_error_line(tmp_path: Path, spec: dict[str, Any] | None = None) -> str:
    """``atlas run`` of ``spec`` (:func:`spec_of`'s by default) inline: exit 2, no traceback;
    its one ``error:`` line."""
    import yaml
    from typer.testing import CliRunner

    from search.cli import app

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec or spec_of()))
    result = CliRunner().invoke(app, ["run", str(path), "--storage", f"sqlite:///{tmp_path / 'a.db'}",
                                      "--executor", "inline"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = [t for t in result.stderr.strip().splitlines() if not t.startswith("warning:")]
    return line


def test_the_command_line_shows_a_malformed_result_as_one_line(bad: dict, tmp_path: Path) -> None:
    bad["ask"] = with_x([0.5, 0.5, 0.5])
    line = cli_error_line(tmp_path)
    assert line.startswith("error: campaign 'quad': proposer bad returned a point of dimension 3, the space has 2")


# -- 4. state() that does not return bytes -------------------------------------------------
@pytest.mark.parametrize("state", [None, "state", 7, {"rng": 1}, bytearray(b"x")],
                         ids=["None", "str", "int", "dict", "bytearray"])
def test_a_state_that_is_not_bytes_stops_the_run_with_nothing_of_the_turn_written(
        bad: dict, storage_url: str, state: Any) -> None:
    calls = {"n": 0}

    def bad_state(p: Misbehaving) -> Any:
        calls["n"] += 1
        return state if calls["n"] > 2 else RandomProposer.state(p)

    bad["state"] = bad_state
    stop = stop_then_finish(spec_of(), storage_url, "state", once=False)
    assert str(stop).startswith(f"campaign 'quad': proposer bad: state() returned {type(state).__name__}, not bytes; "
                                "this turn (")
    assert "is not written; its evaluations run again on resume" in str(stop)


# -- 5. restore() that raises ----------------------------------------------------------------
def _cannot_restore(p: Misbehaving) -> None:
    raise RuntimeError("cannot restore\nsecond line")


def test_a_restore_that_raises_stops_the_run_with_one_line_and_nothing_written(bad: dict, sqlite_url: str) -> None:
    spec = spec_of(budget=8)
    api.run(spec, storage=sqlite_url, executor="inline")
    before = rows_of(sqlite_url)
    bad["restore"] = _cannot_restore
    with pytest.raises(ProposerFailed) as stop:
        api.run(spec, storage=sqlite_url, executor="inline", budget=16)
    line = str(stop.value)
    assert line.startswith("campaign 'quad': proposer bad raised in restore: RuntimeError: cannot restore (at ")
    assert "\n" not in line and "nothing of the run was written" in line
    assert rows_of(sqlite_url) == before
    store = Store(sqlite_url)
    try:
        record = store.campaign("quad")
        assert record.status == "stopped" and record.spec["search"]["budget"] == 8  # the new budget not written
    finally:
        store.close()
    BEHAVIOUR.clear()
    assert api.run(spec, storage=sqlite_url, executor="inline", budget=16).finished == 16


def test_the_command_line_shows_a_failed_restore_as_one_line(bad: dict, tmp_path: Path) -> None:
    bad["restore"] = _cannot_restore
    line = cli_error_line(tmp_path)
    assert line.startswith("error: campaign 'quad': proposer bad raised in restore: RuntimeError: cannot restore")


# -- 6. a progress callback that raises --------------------------------------------------------
class CallbackBroke(Exception):
    pass


def test_a_progress_callback_that_raises_keeps_every_result_and_charges_nothing_twice(
        storage_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The callback's exception stops the run as a Ctrl-C does (the outcomes finished are
    written, what is in flight goes back pending uncharged), then propagates as itself; a
    resume finishes the budget with every row run once."""
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.01")
    spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"},
                          search__algorithm="random", search__budget=120, search__batch_size=4,
                          search__max_in_flight=8)
    error = CallbackBroke("the bar broke")
    seen: list[int] = []

    def progress(stats: Any) -> None:
        seen.append(stats.finished)
        if stats.finished > 0:
            raise error

    with pytest.raises(CallbackBroke) as raised:
        api.run(spec, storage=storage_url, executor="inline", progress=progress)
    assert raised.value is error
    rows = rows_of(storage_url)
    assert all(r["status"] in ("done", "pending") for r in rows), [(r["status"], r["attempts"]) for r in rows]
    assert all(r["attempts"] == (r["status"] == "done") for r in rows)
    assert sum(r["status"] == "done" for r in rows) > seen[-1] > 0  # and the outcomes polled before it
    stats = api.run(spec, storage=storage_url, executor="inline")
    assert stats.finished == 120
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in rows_of(storage_url))


def test_a_ctrl_c_in_a_progress_callback_keeps_the_outcomes_polled_before_it(
        storage_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The callback runs between a poll and the turn that writes what it polled: a Ctrl-C
    there wrote none of it (the evaluations ran again on resume); now it is written."""
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.01")
    spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"},
                          search__algorithm="random", search__budget=120, search__batch_size=4,
                          search__max_in_flight=8)
    seen: list[int] = []

    def progress(stats: Any) -> None:
        seen.append(stats.finished)
        if stats.finished > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.run(spec, storage=storage_url, executor="inline", progress=progress)
    rows = rows_of(storage_url)
    assert all(r["attempts"] == (r["status"] == "done") for r in rows)
    assert sum(r["status"] == "done" for r in rows) > seen[-1] > 0  # the outcomes polled before it, written
    api.run(spec, storage=storage_url, executor="inline")
    assert all(r["status"] == "done" and r["attempts"] == 1 for r in rows_of(storage_url))
