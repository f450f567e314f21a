"""What a proposer hands the scheduler besides its proposals is guarded as its ask is.

A plug-in (here :class:`Guarded`, a ``random`` proposer that records one call per ask and
whose ``take_calls`` or ``state`` a test replaces) may raise there or return anything:

- a ``take_calls`` that raises stops the run with one line (``raised in take_calls``), and
  one that returns what ``proposer_calls`` cannot hold (not a list, an item not a dict, a
  field unknown, missing, of the wrong type or not JSON-storable) with one line naming it;
  either way the turn is written as far as it got (the rows asked before, each batch with
  its calls; the batch whose calls are lost goes with them), and a resume finishes;
- a ``state()`` larger than ``ATLAS_MAX_PROPOSER_STATE_MB`` (64) stops the run as a
  ``state`` that raised: nothing of the turn written, the last checkpoint kept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from archive.store import Store
from entropy_atlas import settings
from entropy_atlas.settings import SettingError
from search import api
from search.proposers.base import Proposal, ProposerContext
from search.proposers.random_search import RandomProposer
from search.scheduler import ProposerFailed
from tests.conftest import quadratic_spec
from tests.test_plugins import PLUGIN, install_plugin

#: What the plug-in does instead of its own ``take_calls``/``state``/``ask`` (absent: its own).
BEHAVIOUR: dict[str, Callable[..., Any]] = {}
#: Every state the plug-in returned, across runs.
STATES: list[Any] = []


def call_of(proposals: list[Proposal]) -> dict[str, Any]:
    """The call an ask of ``proposals`` records: named by its first point's first coordinate."""
    x0 = float(proposals[0].x[0])
    return {"proposer": Guarded.name, "key": f"x0={x0:.12g}", "request": {"x0": x0}, "status": "ok"}


class Guarded(RandomProposer):
    """``random``, named ``guarded``, with a call per ask, and ``take_calls``, ``state`` and
    ``ask`` replaceable."""

    name = "guarded"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self._calls: list[dict[str, Any]] = []

    def ask(self, n: int) -> Any:
        act = BEHAVIOUR.get("ask")
        proposals = act(self, n) if act else super().ask(n)
        self._calls.append(call_of(proposals))
        return proposals

    def take_calls(self) -> Any:
        calls, self._calls = self._calls, []
        act = BEHAVIOUR.get("take_calls")
        return act(self, calls) if act else calls

    def state(self) -> Any:
        act = BEHAVIOUR.get("state")
        state = act(self) if act else super().state()
        STATES.append(state)
        return state


@pytest.fixture
def guarded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Callable[..., Any]]]:
    install_plugin(tmp_path / "site", monkeypatch, "tests.test_proposer_guards:Guarded")
    monkeypatch.delenv("ATLAS_MAX_PROPOSER_STATE_MB", raising=False)
    BEHAVIOUR.clear()
    STATES.clear()
    yield BEHAVIOUR
    BEHAVIOUR.clear()
    STATES.clear()


def spec_of(budget: int = 16) -> dict[str, Any]:
    """A campaign of the plug-in: ``budget`` rows in batches of 4, 8 in flight (two asks a turn)."""
    return quadratic_spec(search__algorithm=PLUGIN, search__budget=budget, search__batch_size=4,
                          search__max_in_flight=8)


def stored(url: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], bytes | None]:
    """The campaign's rows (by seq), its calls and its checkpoint."""
    store = Store(url)
    try:
        cid = store.require_campaign("quad").id
        rows = sorted(store.evaluations(cid), key=lambda r: r["seq"])
        return rows, store.calls(cid), store.load_checkpoint(cid, Guarded.name)
    finally:
        store.close()


def assert_calls_go_with_their_rows(url: str) -> None:
    """Each batch of 4 rows is stored with the one call of the ask that made it, in order."""
    rows, calls, _ = stored(url)
    assert [c["request"]["x0"] for c in calls] == [r["x"][0] for r in rows[::4]]
    assert all(c["proposer"] == "guarded" and c["status"] == "ok" and c["created_at"] > 0 for c in calls)


def after(k: int, act: Callable[[Guarded, list[dict[str, Any]]], Any]) -> Callable[..., Any]:
    """A ``take_calls`` that is the proposer's own for its first ``k`` takes, then ``act``."""
    count = {"takes": 0}

    def take(proposer: Guarded, calls: list[dict[str, Any]]) -> Any:
        count["takes"] += 1
        return act(proposer, calls) if count["takes"] > k else calls

    return take


def stop_then_finish(spec: dict[str, Any], url: str, match: str, once: bool = True) -> str:
    """Run ``spec`` until the plug-in's misbehaviour stops it (``match``: one line), then
    resume with the plug-in behaving: the budget is reached, each row done (``once``: with
    one attempt; else the turn that was not written ran again), each batch with its call."""
    with pytest.raises(ProposerFailed, match=match) as stop:
        api.run(spec, storage=url, executor="inline")
    line = str(stop.value)
    assert "\n" not in line and "Traceback" not in line
    assert_calls_go_with_their_rows(url)
    BEHAVIOUR.clear()
    assert api.run(spec, storage=url, executor="inline").finished == spec["search"]["budget"]
    rows, _, _ = stored(url)
    assert [r["seq"] for r in rows] == list(range(spec["search"]["budget"]))
    assert all(r["status"] == "done" and (r["attempts"] == 1 or not once) for r in rows)
    assert_calls_go_with_their_rows(url)
    return line


def _raises(proposer: Guarded, calls: list[dict[str, Any]]) -> Any:
    raise RuntimeError("the model client is gone\nsecond line")


# -- 1. take_calls that raises ---------------------------------------------------------------
def test_a_take_calls_that_raises_stops_the_run_with_one_line_and_the_turn_written(
        guarded: dict, storage_url: str) -> None:
    guarded["take_calls"] = after(1, _raises)
    line = stop_then_finish(spec_of(), storage_url, "raised in take_calls")
    assert re.sub(r":\d+,", ":N,", line) == (
        "campaign 'quad': proposer guarded raised in take_calls: RuntimeError: the model client is gone "
        "(at test_proposer_guards.py:N, in _raises); this turn's 0 results and 4 new rows are written; "
        "fix the proposer (or its options) and `api.resume('quad', …)`")


def test_after_a_stop_in_take_calls_only_the_batches_with_their_calls_are_written(
        guarded: dict, sqlite_url: str) -> None:
    guarded["take_calls"] = after(1, _raises)
    with pytest.raises(ProposerFailed):
        api.run(spec_of(), storage=sqlite_url, executor="inline")
    rows, calls, checkpoint = stored(sqlite_url)
    assert [r["seq"] for r in rows] == [0, 1, 2, 3] and all(r["status"] == "pending" for r in rows)
    assert len(calls) == 1 and checkpoint == STATES[-1]  # the state after the ask whose calls were lost


def test_an_ask_that_raises_is_named_before_a_take_calls_that_raises_after_it(
        guarded: dict, sqlite_url: str) -> None:
    def ask(proposer: Guarded, n: int) -> Any:
        raise ValueError("no proposals")

    guarded["ask"], guarded["take_calls"] = ask, _raises
    with pytest.raises(ProposerFailed, match="raised in ask: ValueError: no proposals") as stop:
        api.run(spec_of(), storage=sqlite_url, executor="inline")
    assert "take_calls" not in str(stop.value)


def test_a_ctrl_c_in_take_calls_is_a_stop_not_a_proposer_failure(guarded: dict, sqlite_url: str) -> None:
    def interrupted(proposer: Guarded, calls: list[dict[str, Any]]) -> Any:
        raise KeyboardInterrupt

    guarded["take_calls"] = after(1, interrupted)
    with pytest.raises(KeyboardInterrupt):
        api.run(spec_of(), storage=sqlite_url, executor="inline")
    BEHAVIOUR.clear()
    assert api.run(spec_of(), storage=sqlite_url, executor="inline").finished == 16


# -- 2. take_calls that returns what proposer_calls cannot hold -----------------------------
def _each(**fields: Any) -> Callable[[Guarded, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Every call with ``fields`` set (a value :data:`DROP`: the field left out)."""
    return lambda p, calls: [{k: v for k, v in {**c, **fields}.items() if v is not DROP} for c in calls]


DROP = object()

MALFORMED: dict[str, tuple[Callable[..., Any], str]] = {
    "None": (lambda p, calls: None, "returned None from take_calls, not a list of calls (dicts)"),
    "a dict": (lambda p, calls: calls[0], "returned a dict from take_calls, not a list of calls (dicts)"),
    "a generator": (lambda p, calls: (c for c in calls), "returned a generator from take_calls, not a list"),
    "[None]": (lambda p, calls: [None], "returned None as call 0 from take_calls, not a dict"),
    "the second a str": (lambda p, calls: [*calls, "call"], "returned a str as call 1 from take_calls, not a dict"),
    "an unknown field": (_each(prompt="hi"), "returned call 0 from take_calls with the field 'prompt', which "
                                             "the archive does not keep (fields: proposer, key, request, "),
    "no status": (_each(status=DROP), "returned call 0 from take_calls without 'status' (a call gives proposer, "
                                      "key, request, status)"),
    "no request": (_each(request=DROP), "returned call 0 from take_calls without 'request'"),
    "key=123": (_each(key=123), "returned call 0 from take_calls with key=123, not a str of at most 64 characters"),
    "a long key": (_each(key="k" * 65), "returned call 0 from take_calls with key='kkkk"),
    "a long status": (_each(status="s" * 17), "with status='sssssssssssssssss', not a str of at most 16 characters"),
    "proposer None": (_each(proposer=None), "with proposer=None, not a str of at most 64 characters"),
    "reply bytes": (_each(reply=b"ok"), "with reply=b'ok', not a str"),
    "a NUL in reply": (_each(reply="a\x00b"), "with a reply holding a NUL character (\\0), which storage refuses"),
    "object() in request": (_each(request={"k": object()}), "with request that JSON cannot store: Object of type "
                                                            "object is not JSON serializable"),
    "NaN in usage": (_each(usage={"tokens": float("nan")}), "with usage that JSON cannot store: Out of range float "
                                                            "values are not JSON compliant"),
    "a tuple key in outcome": (_each(outcome={(1, 2): 3}), "with outcome that JSON cannot store: keys must be "),
    "latency_s a str": (_each(latency_s="1.5"), "with latency_s='1.5', not a finite number of seconds or None"),
    "latency_s inf": (_each(latency_s=float("inf")), "with latency_s=inf, not a finite number of seconds or None"),
    "latency_s True": (_each(latency_s=True), "with latency_s=True, not a finite number of seconds or None"),
    "created_at None": (_each(created_at=None), "with created_at=None, not a finite number of seconds"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_calls_the_archive_cannot_hold_stop_the_run_with_one_line(guarded: dict, storage_url: str,
                                                                    case: str) -> None:
    act, problem = MALFORMED[case]
    guarded["take_calls"] = after(1, act)
    line = stop_then_finish(spec_of(), storage_url, "proposer guarded ")
    assert line.startswith("campaign 'quad': proposer guarded returned "), line
    assert problem in line, line
    assert line.endswith("; this turn's 0 results and 4 new rows are written; fix the proposer (or its options) "
                         "and `api.resume('quad', …)`"), line


def test_calls_with_different_optional_fields_are_all_written(guarded: dict, storage_url: str) -> None:
    """SQLAlchemy writes a list of rows with the first row's fields: a later call's
    ``reply`` was dropped, or a field the first gives and a later one leaves out failed."""
    def ask(proposer: Guarded, n: int) -> list[Proposal]:
        return RandomProposer.ask(proposer, n)

    def take(proposer: Guarded, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        base = calls[0]
        return [{**base, "key": "a", "latency_s": 0.5},
                {**base, "key": "b", "reply": "the reply", "usage": {"tokens": 7}, "status": "error", "error": "x"},
                {**base, "key": "c"}]

    guarded["ask"], guarded["take_calls"] = ask, take
    api.run(spec_of(budget=4), storage=storage_url, executor="inline")
    _, calls, _ = stored(storage_url)
    assert [(c["key"], c["latency_s"], c["reply"], c["usage"], c["status"], c["error"]) for c in calls] == [
        ("a", 0.5, None, None, "ok", None), ("b", None, "the reply", {"tokens": 7}, "error", "x"),
        ("c", None, None, None, "ok", None)]


def test_the_command_line_shows_a_failed_take_calls_as_one_line(guarded: dict, tmp_path: Path) -> None:
    from tests.test_proposer_output import cli_error_line

    guarded["take_calls"] = after(1, _each(status=DROP))
    line = cli_error_line(tmp_path, spec_of())
    assert line.startswith("error: campaign 'quad': proposer guarded returned call 0 from take_calls without "
                           "'status'")


# -- 3. a state() larger than ATLAS_MAX_PROPOSER_STATE_MB -----------------------------------
def grows_after(k: int, size: int) -> Callable[[Guarded], bytes]:
    """A ``state`` that is the proposer's own for its first ``k`` states, then ``size`` bytes."""
    count = {"states": 0}

    def state(proposer: Guarded) -> bytes:
        count["states"] += 1
        return bytes(size) if count["states"] > k else RandomProposer.state(proposer)

    return state


def test_a_state_over_the_default_64_mb_stops_the_run_with_the_last_checkpoint_kept(
        guarded: dict, sqlite_url: str) -> None:
    guarded["state"] = grows_after(2, 64 * 2**20 + 1)
    with pytest.raises(ProposerFailed) as stop:
        api.run(spec_of(), storage=sqlite_url, executor="inline")
    line = str(stop.value)
    assert line.startswith("campaign 'quad': proposer guarded: state() returned 67,108,865 bytes (64 MB), over "
                           "ATLAS_MAX_PROPOSER_STATE_MB=64 (a checkpoint is written every turn; raise it where the "
                           "state is meant to be this large); this turn ("), line
    assert "results) is not written; its evaluations run again on resume" in line and "\n" not in line
    _, _, checkpoint = stored(sqlite_url)
    assert checkpoint == STATES[-2]  # the last state written, not the one refused
    BEHAVIOUR.clear()
    assert api.run(spec_of(), storage=sqlite_url, executor="inline").finished == 16


def test_the_bound_is_the_setting(guarded: dict, storage_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_MAX_PROPOSER_STATE_MB", "0.01")  # 10,485 bytes; random's own state is ~300
    guarded["state"] = grows_after(2, 20_000)
    with pytest.raises(ProposerFailed, match=r"state\(\) returned 20,000 bytes \(0.0191 MB\), over "
                                             r"ATLAS_MAX_PROPOSER_STATE_MB=0.01 "):
        api.run(spec_of(), storage=storage_url, executor="inline")
    BEHAVIOUR.clear()
    assert api.run(spec_of(), storage=storage_url, executor="inline").finished == 16
    rows, _, _ = stored(storage_url)
    assert [r["seq"] for r in rows] == list(range(16)) and all(r["status"] == "done" for r in rows)


def test_the_setting_is_a_positive_number_of_megabytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATLAS_MAX_PROPOSER_STATE_MB", raising=False)
    assert settings.max_proposer_state_mb() == 64.0
    monkeypatch.setenv("ATLAS_MAX_PROPOSER_STATE_MB", "0.5")
    assert settings.max_proposer_state_mb() == 0.5
    for raw, message in [("abc", "ATLAS_MAX_PROPOSER_STATE_MB='abc': must be a number of megabytes > 0"),
                         ("0", "ATLAS_MAX_PROPOSER_STATE_MB=0: must be a finite number of megabytes > 0"),
                         ("inf", "ATLAS_MAX_PROPOSER_STATE_MB=inf: must be a finite number of megabytes > 0")]:
        monkeypatch.setenv("ATLAS_MAX_PROPOSER_STATE_MB", raw)
        with pytest.raises(SettingError) as err:
            settings.max_proposer_state_mb()
        assert str(err.value) == message


def test_a_malformed_bound_is_one_line_before_anything_is_written(guarded: dict, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from search.cli import app

    monkeypatch.setenv("ATLAS_MAX_PROPOSER_STATE_MB", "-1")
    path = tmp_path / "guarded.yaml"
    path.write_text(yaml.safe_dump(spec_of()))
    db = tmp_path / "a.db"
    result = CliRunner().invoke(app, ["run", str(path), "--storage", f"sqlite:///{db}", "--executor", "inline"])
    assert result.exit_code == 2, result.output
    assert [t for t in result.stderr.strip().splitlines() if not t.startswith("warning:")] == [
        "error: ATLAS_MAX_PROPOSER_STATE_MB=-1: must be a finite number of megabytes > 0"]
    assert not db.exists()  # refused before the storage is opened, as a malformed ATLAS_LEASE_TTL is
