"""The Python API at its edges (`search/api.py`, `archive/handle.py`): a stale handle, wrong
argument types, a resume of nothing, an executor refused at start, inline timeouts off the
main thread or beside a caller's own timer, and a portfolio's members told their own copies."""

from __future__ import annotations

import copy
import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import archive
from archive.errors import CampaignNotFound
from search import api
from search.proposers import build_proposer
from search.proposers.base import Observation
from search.spec import SpecError
from tests.conftest import quadratic_spec
from tests.test_llm import llm_context
from workers.executors import InlineExecutor
from workers.executors.base import ExecutorError
from workers.executors.inline import _Alarm


def small(name: str = "quad", budget: int = 6, **overrides: Any) -> dict[str, Any]:
    return quadratic_spec(name=name, search__budget=budget, search__batch_size=3, search__max_in_flight=3,
                          **overrides)


# -- 1. a handle of a deleted campaign -----------------------------------------------------

def _reads(camp: archive.CampaignHandle, tmp_path: Path) -> dict[str, Any]:
    """Every read of a handle, by name."""
    return {"stats": camp.stats, "elites": camp.elites, "evaluations": camp.evaluations,
            "proposer_counts": camp.proposer_counts, "map_data": camp.map_data,
            "failure_summary": camp.failure_summary, "failed_evaluations": camp.failed_evaluations,
            "refresh": camp.refresh, "export": lambda: camp.export(tmp_path / "out.json"),
            "delete": camp.delete}


def test_a_deleted_campaigns_handle_raises_on_every_read(storage_url: str, tmp_path: Path) -> None:
    """Before: empty stats, elites and exports of a campaign that no longer existed."""
    api.run(small("h1"), storage=storage_url, executor="inline")
    with archive.open(storage_url, readonly=False) as handle:
        stale = handle.campaign("h1")
        assert stale.stats().finished == 6
        archive.open(storage_url, readonly=False).campaign("h1").delete()
        for read, call in _reads(stale, tmp_path).items():
            with pytest.raises(CampaignNotFound, match="campaign 'h1' was deleted"):
                call()
            assert not (tmp_path / "out.json").exists(), read


def test_a_stale_handle_never_reads_the_campaign_that_took_its_id(tmp_path: Path) -> None:
    """SQLite gives a new campaign the id of a deleted one: the stale handle read the new
    campaign's rows, and exported them labelled with its own name."""
    url = f"sqlite:///{tmp_path / 'h2.db'}"
    api.run(small("h1"), storage=url, executor="inline")
    with archive.open(url) as reader:
        stale = reader.campaign("h1")
        with archive.open(url, readonly=False) as writer:
            writer.campaign("h1").delete()
        api.run(small("other", budget=9), storage=url, executor="inline")
        assert reader.campaign("other").record.id == stale.record.id  # the id was reused
        for call in _reads(stale, tmp_path).values():
            with pytest.raises(CampaignNotFound, match="was deleted"):
                call()
        assert not (tmp_path / "out.json").exists()
        api.run(small("h1", budget=3), storage=url, executor="inline")  # a new h1: still not the stale one's
        with pytest.raises(CampaignNotFound, match="was deleted"):
            stale.evaluations()
        assert len(reader.campaign("h1").evaluations()) == 3
    with archive.open(url) as reader:
        assert len(reader.campaign("other").evaluations()) == 9  # the stale delete deleted nothing


# -- 2. an executor refused at start ----------------------------------------------------------

class _RefusedAtStart(InlineExecutor):
    """Starts (its evaluator set up, as a Ray would be), then refuses, as a cluster without
    the resources asked for does; counts its shutdowns."""

    shutdowns = 0

    def start(self) -> None:
        super().start()
        raise ExecutorError("evaluations ask for 5 of 'CPU' each but the cluster has 2")

    def shutdown(self) -> None:
        type(self).shutdowns += 1
        super().shutdown()


def test_an_executor_refused_at_start_is_shut_down(tmp_path: Path) -> None:
    """``run`` started the executor outside the ``try`` that shuts it down: what the start
    had started (a private Ray in the caller's process) was left running."""
    spec = api.as_spec(small())
    ex = _RefusedAtStart(api.executor_config(spec))
    db = tmp_path / "a.db"
    with pytest.raises(ExecutorError, match="ask for 5"):
        api.run(spec, storage=f"sqlite:///{db}", executor=ex)
    assert _RefusedAtStart.shutdowns >= 1
    assert not db.exists()


# -- 4. inline timeouts: off the main thread, beside a caller's timer ------------------------

def test_inline_timeouts_off_the_main_thread_are_named_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Before: ``timeout_s`` silently not enforced in a ``threading.Thread``."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["stats"] = api.run(small(budget=9), storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")
        except BaseException as exc:  # reported below
            out["error"] = exc

    with caplog.at_level(logging.WARNING, logger="entropy_atlas.executor"):
        thread = threading.Thread(target=target)
        thread.start()
        thread.join(120)
    assert "error" not in out and out["stats"].finished == 9
    said = [r.getMessage() for r in caplog.records if "cannot be enforced" in r.getMessage()]
    assert len(said) == 1, said
    assert "timeout_s" in said[0] and "main thread" in said[0] and "Ray" in said[0]


@pytest.fixture
def own_alarm() -> Any:
    """A SIGALRM handler of the caller's, counting its alarms; put back afterwards."""
    fired: list[float] = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(time.monotonic()))
    yield fired
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)


def test_a_callers_timer_and_handler_outlive_an_inline_run(tmp_path: Path, own_alarm: list[float]) -> None:
    """Before: the run set the caller's ``ITIMER_REAL`` to 0 (its handler was put back)."""
    handler = signal.getsignal(signal.SIGALRM)
    began = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 30)
    api.run(small(), storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")
    left, _ = signal.getitimer(signal.ITIMER_REAL)
    assert signal.getsignal(signal.SIGALRM) is handler
    assert 0 < left <= 30 - (time.monotonic() - began) + 0.05
    assert not own_alarm


def test_a_callers_timer_that_passed_during_a_poll_fires_at_its_end(own_alarm: list[float]) -> None:
    signal.setitimer(signal.ITIMER_REAL, 0.05)
    with _Alarm():
        time.sleep(0.2)  # past the caller's 0.05 s: its alarm is held, not lost
    ended = time.monotonic()
    time.sleep(0.05)
    assert len(own_alarm) == 1 and own_alarm[0] - ended < 0.05


# -- 5. a resume of a campaign not there ------------------------------------------------------

def test_resuming_a_campaign_not_there_creates_no_storage(tmp_path: Path) -> None:
    """Before: ``CampaignNotFound``, and a new 73 KB archive left behind."""
    db = tmp_path / "fresh_new.db"
    with pytest.raises(CampaignNotFound, match="'nope'"):
        api.resume("nope", storage=f"sqlite:///{db}", executor="inline")
    assert not db.exists() and not list(tmp_path.iterdir())


def test_resuming_a_campaign_not_in_an_archive_names_those_there(sqlite_url: str) -> None:
    api.run(small(), storage=sqlite_url, executor="inline")
    with pytest.raises(CampaignNotFound, match=r"'nope'.*campaigns: quad"):
        api.resume("nope", storage=sqlite_url, executor="inline")


# -- 6, 7. arguments of the wrong type --------------------------------------------------------

@pytest.mark.parametrize("value", [5, None, [1], b"c.yaml"])
def test_a_spec_of_the_wrong_type_is_named(tmp_path: Path, value: Any) -> None:
    """Before: ``expected str, bytes or os.PathLike object, not int`` from pathlib."""
    with pytest.raises(TypeError, match="spec_or_path: must be a CampaignSpec, a dict, or a campaign file's path"):
        api.run(value, storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("call, match", [
    (lambda db: api.run(small(), storage=5, executor="inline"), "storage: must be a storage URL"),
    (lambda db: api.run(small(), storage=db, executor="inline", progress=5),
     r"progress: must be a callable.*5 \(an int\)"),
    (lambda db: api.run(small(), storage=db, executor=5), "executor: must be an executor's name"),
    (lambda db: api.run(small(), storage=db, executor="ray", address=5), "address: must be"),
    (lambda db: api.resume(5, storage=db, executor="inline"), r"name: must be a campaign's name \(a str\)"),
    (lambda db: api.resume("quad", storage=db, executor="inline", progress="x"), "progress: must be a callable"),
    (lambda db: archive.open(None), r"storage: must be a storage URL.*None \(a NoneType\)"),
    (lambda db: archive.open(db, readonly="no"), "readonly: must be True or False"),
    (lambda db: api.run(small(), storage=db, executor="inline", budget="x"),
     r"^budget: must be an integer or None, got 'x' \(a str\)$"),
    (lambda db: api.run(small(), storage=db, executor="inline", budget=2.5), r"budget: .*got 2\.5 \(a float\)"),
    (lambda db: api.run(small(), storage=db, executor="inline", budget=True), r"budget: .*got True \(a bool\)"),
    (lambda db: api.run(small(), storage=db, executor="inline", name=3),
     r"^name: must be a campaign's name \(a str\) or None, got 3 \(an int\)$"),
    (lambda db: api.resume("quad", storage=db, executor="inline", budget="9"), r"budget: .*got '9' \(a str\)"),
    (lambda db: api.run(small(), storage=db, executor="inline", on_warning="print"),
     r"^on_warning: must be a callable taking a warning's text, or None, got 'print' \(a str\)$"),
])
def test_arguments_of_the_wrong_type_are_named_before_anything_is_written(tmp_path: Path, call: Any,
                                                                         match: str) -> None:
    """Before: a non-callable ``progress`` wrote the campaign, then ``'int' object is not
    callable`` left its rows running; the others were bare errors from the internals."""
    with pytest.raises(TypeError, match=match):
        call(f"sqlite:///{tmp_path / 'a.db'}")
    assert not list(tmp_path.iterdir())


def test_a_budget_of_numpys_integers_is_taken_and_a_value_the_spec_refuses_is_the_specs_error(
        tmp_path: Path) -> None:
    """Before: ``budget="x"`` was a ``SpecError`` naming ``--budget x``, a flag the API has
    not, where README promises a ``TypeError`` naming the argument; ``np.int64(6)`` was
    refused as ``must be an integer``. A value of the right type stays the spec's to refuse."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    assert api.run(small(budget=3), storage=url, executor="inline", budget=np.int64(6)).finished == 6
    with pytest.raises(SpecError, match=r"search\.budget: must be > 0"):
        api.run(small("other"), storage=url, executor="inline", budget=-1)


def test_a_path_is_a_sqlite_files_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``storage=Path("y.db")``, ``archive.open(Path(...))``: ``argument of type 'PosixPath'
    is not iterable`` from archive/engine.py."""
    monkeypatch.chdir(tmp_path)
    assert api.run(small(), storage=Path("y.db"), executor="inline").finished == 6
    assert (tmp_path / "y.db").is_file()
    with archive.open(Path("y.db")) as handle, archive.open(tmp_path / "y.db") as absolute:
        assert handle.campaign("quad").stats().finished == absolute.campaign("quad").stats().finished == 6


@pytest.mark.parametrize("read, match", [
    (lambda h: h.campaign(5), r"name: must be a campaign's name \(a str\), got 5"),
    (lambda h: h.campaign("quad").elites(top="3"), r"top: must be an integer or None, got '3' \(a str\)"),
    (lambda h: h.campaign("quad").elites(top=True), "top: must be an integer or None"),
    (lambda h: h.campaign("quad").failed_evaluations(limit="a"), "limit: must be an integer or None"),
    (lambda h: h.campaign("quad").failure_summary(limit=2.5), "limit: must be an integer or None"),
    (lambda h: h.campaign("quad").elites(fields="params"), r"fields: must be a sequence.*fields=\('params',\)"),
    (lambda h: h.campaign("quad").elites(fields=[1]), "fields: each must be a field name"),
])
def test_a_handles_arguments_of_the_wrong_type_are_named(sqlite_url: str, read: Any, match: str) -> None:
    """Before: ``'<' not supported between 'str' and 'int'``; ``fields="params"`` read as
    the fields ``p``, ``a``, ``r`` …"""
    api.run(small(), storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle, pytest.raises(TypeError, match=match):
        read(handle)


def test_a_handles_arguments_of_the_right_type_still_read(sqlite_url: str) -> None:
    api.run(small(), storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        camp = handle.campaign("quad")
        assert len(camp.elites(top=np.int64(2), fields=["params"])) == 2
        assert set(camp.elites(top=1, fields=("x",))[0]) == {"cell", "evaluation_id", "objective", "fitness", "x"}
        assert camp.failed_evaluations(limit=0) == [] and camp.failure_summary(limit=3) == []


# -- 8. a portfolio's members told their own copies ------------------------------------------

def test_a_portfolio_member_that_changes_what_it_is_told_changes_nothing_of_the_others() -> None:
    """A member whose ``tell`` did ``o.x[:] = 99; o.params.clear()`` corrupted what
    map-elites, told after it, was told: every later map-elites proposal was the corner."""
    portfolio = build_proposer("portfolio", llm_context({"members": {"random": {}, "map-elites": {"random_init": 0}}}))

    def vandal(observations: list[Observation]) -> None:
        for o in observations:
            o.x[:] = 99
            o.params.clear()
            o.meta.clear()

    told: list[Observation] = []
    portfolio.members["random"].tell = vandal  # type: ignore[method-assign]
    elites = portfolio.members["map-elites"]
    original_tell = elites.tell

    def spy(observations: list[Observation]) -> None:
        told.extend(observations)
        original_tell(observations)

    elites.tell = spy  # type: ignore[method-assign]
    rng = np.random.default_rng(0)
    xs = rng.uniform(0.3, 0.7, size=(8, 2))
    observations = [Observation(evaluation_id=i, seq=i, x=x, params={"a": float(x[0]), "b": float(x[1])},
                                fitness=1.0 + i, measures=x.copy(), cell=i, meta={"k": [1]}, proposer="map-elites")
                    for i, x in enumerate(xs)]
    before = copy.deepcopy(observations)
    portfolio.tell(observations)
    for got, was in zip(told, before, strict=True):
        assert np.array_equal(got.x, was.x) and got.params == was.params and got.meta == was.meta
    proposals = elites.ask(8)
    assert all(np.all(np.asarray(p.x) < 0.99) for p in proposals), [p.x for p in proposals]


def test_on_warning_is_handed_the_files_warnings_once_the_checks_pass(tmp_path: Path) -> None:
    """``atlas run`` prints them through it; a caller without one gets none (no log records)."""
    said: list[str] = []
    api.run(small(), storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline", on_warning=said.append)
    assert said and any(w.startswith("archive: ") for w in said)
