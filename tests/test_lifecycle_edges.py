"""A campaign's lifecycle at its edges: deleted under a live run, an inline evaluation
longer than the lease, a refused run that would have changed the budget, two runs that
create one new campaign at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from archive.errors import StorageError
from archive.store import Store
from search import api
from search.campaigns import CampaignConflict
from search.scheduler import CampaignBusy, LeaseLost
from tests.conftest import quadratic_spec


class _Background:
    """``fn`` on a thread of its own; ``result()`` its return value or its exception."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: BaseException | None = None

        def target() -> None:
            try:
                self.value = fn()
            except BaseException as exc:  # handed to the test's thread
                self.error = exc

        self.thread = threading.Thread(target=target, daemon=True)
        self.thread.start()

    def result(self, timeout: float = 60.0) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the run did not end"
        if self.error is not None:
            raise self.error
        return self.value


def _slow_spec(**overrides: Any) -> dict[str, Any]:
    spec = quadratic_spec(**overrides)
    spec["evaluator"]["target"] = "tests.support.evaluators:slow_quadratic"
    return spec


def _run_behind(url: str, monkeypatch: pytest.MonkeyPatch, sleep: float,
                **search: Any) -> tuple[_Background, dict[str, Any]]:
    """A run of the slow quadratic (``sleep`` seconds an evaluation) on a thread: it and its spec."""
    monkeypatch.setenv("ATLAS_TEST_SLEEP", str(sleep))
    spec = _slow_spec(**{f"search__{key}": value for key, value in search.items()})
    return _Background(lambda: api.run(spec, storage=url, executor="inline")), spec


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _done(url: str, name: str) -> int:
    try:
        store = Store(url, readonly=True)
    except StorageError:  # the run has not made its file yet
        return 0
    try:
        record = store.campaign(name)
        return 0 if record is None else store.stats(record.id, 0).counts["done"]
    finally:
        store.close()


def _status(url: str, name: str) -> str | None:
    try:
        store = Store(url, readonly=True)
    except StorageError:
        return None
    try:
        record = store.campaign(name)
        return None if record is None else record.status
    finally:
        store.close()


def test_a_campaign_deleted_under_its_run_stops_the_run_with_one_line(storage_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    run, _ = _run_behind(storage_url, monkeypatch, 0.02, budget=2000, batch_size=4, max_in_flight=4)
    _wait_for(lambda: _done(storage_url, "quad") >= 8)
    store = Store(storage_url)
    try:
        store.delete_campaign(store.require_campaign("quad").id, force=True)
    finally:
        store.close()
    with pytest.raises(LeaseLost, match="was deleted while this run held it"):
        run.result()


def test_an_inline_evaluation_longer_than_the_lease_keeps_it(sqlite_url: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """TTL 1 s, evaluations of 2.5 s on the loop's own thread: the lease stays live
    throughout and another scheduler cannot take it."""
    monkeypatch.setenv("ATLAS_LEASE_TTL", "1")
    run, _ = _run_behind(sqlite_url, monkeypatch, 2.5, budget=2, batch_size=1, max_in_flight=1)
    _wait_for(lambda: _status(sqlite_url, "quad") == "running")
    store = Store(sqlite_url)
    try:
        cid = store.require_campaign("quad").id
        taken = []
        while run.thread.is_alive():
            record = store.require_campaign("quad")
            if record.status != "running":
                break
            assert record.lease_is_live(), "the lease expired while the run was alive"
            taken.append(store.acquire_lease(cid, "intruder", ttl_s=60) is None)
            time.sleep(0.2)
        assert len(taken) >= 10 and not any(taken)
    finally:
        store.close()
    assert run.result().counts["done"] == 2


def test_a_run_refused_as_busy_does_not_change_the_budget(storage_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    run, spec = _run_behind(storage_url, monkeypatch, 0.05, budget=40, batch_size=2, max_in_flight=2)
    _wait_for(lambda: _done(storage_url, "quad") >= 2)
    with pytest.raises(CampaignBusy, match="is being run by scheduler"):
        api.run(spec, storage=storage_url, executor="inline", budget=500)
    with pytest.raises(CampaignBusy):
        api.resume("quad", storage=storage_url, executor="inline", budget=30)
    assert run.result().finished == 40
    store = Store(storage_url, readonly=True)
    try:
        record = store.require_campaign("quad")
        assert record.settings.budget == 40 and record.spec["search"]["budget"] == 40
    finally:
        store.close()
    assert api.resume("quad", storage=storage_url, executor="inline", budget=44).finished == 44  # then it does


def test_two_runs_creating_one_campaign_give_one_run_and_one_line(sqlite_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The second run checks the name while the first sets its evaluator up, and writes it
    after the first did: refused with one line, not a unique-key traceback."""
    from workers.executors.inline import InlineExecutor

    ready = threading.Event()
    go = threading.Event()

    class Held(InlineExecutor):  # the first run waits, set up, until the second has checked the name
        def setup_problem(self, wait_s: float = 0.0) -> str | None:
            ready.set()
            go.wait(30)
            return super().setup_problem(wait_s)

    spec = quadratic_spec(search__budget=10)
    first = _Background(lambda: api.run(spec, storage=sqlite_url,
                                        executor=Held(api.executor_config(api.as_spec(spec)))))
    assert ready.wait(30)

    commit = api.commit_campaign

    def releasing(*args: Any, **kwargs: Any) -> Any:  # the second lets the first write its row, then writes its own
        if threading.current_thread() is threading.main_thread():  # the second run's (the first's is behind)
            go.set()
            _wait_for(lambda: _done(sqlite_url, "quad") > 0)
        return commit(*args, **kwargs)

    monkeypatch.setattr(api, "commit_campaign", releasing)
    with pytest.raises(CampaignConflict, match="was created by another run while this one started"):
        api.run(spec, storage=sqlite_url, executor="inline")
    assert first.result().finished == 10


def _as_killed_at_the_end(url: str, name: str) -> None:
    """The campaign as a run killed after its last result, before it recorded ``finished``,
    leaves it: ``running``, under the lease of a process that is gone."""
    import socket

    from sqlalchemy import update

    from archive.models import Campaign

    store = Store(url)
    table = Campaign.__table__
    with store.write() as conn:
        conn.execute(update(table).where(table.c.name == name).values(
            status="running", lease_holder=f"{socket.gethostname()}:999999999:deadbeef",
            lease_expires=time.time() + 300))
    store.close()


def test_a_run_killed_after_its_last_result_is_finished_by_resume(storage_url: str, tmp_path: Any) -> None:
    """`atlas resume` said "already finished: 12 of 12" and did nothing, for ever: the
    campaign stayed `running` (status read `stopped`), its lease with a dead process, no map."""
    from typer.testing import CliRunner

    from search.cli import app

    api.run(quadratic_spec(search__budget=12), storage=storage_url, executor="inline")
    _as_killed_at_the_end(storage_url, "quad")
    result = CliRunner().invoke(app, ["resume", "quad", "--executor", "inline", "--storage", storage_url,
                                      "--map", str(tmp_path / "m.png")])
    assert result.exit_code == 0, result.output
    assert "quad: 12 evaluations" in result.stdout and (tmp_path / "m.png").is_file()
    store = Store(storage_url, readonly=True)
    record = store.require_campaign("quad")
    store.close()
    assert record.status == "finished" and record.lease_holder is None
    again = CliRunner().invoke(app, ["resume", "quad", "--executor", "inline", "--storage", storage_url])
    assert "already finished: 12 of 12" in again.stdout


def test_rows_an_earlier_run_gave_up_on_do_not_trip_this_runs_fail_fast(sqlite_url: str) -> None:
    """Three kills during a slow ask had left 12 rows charged past ``max_retries``: the resume
    failed them ("gave up after 3 attempts") and then stopped, `the first 12 evaluations all
    failed`, with the campaign `failed`, though none of its own evaluations had run."""
    from sqlalchemy import update

    from archive.models import Evaluation

    spec = quadratic_spec(search__budget=24, search__fail_fast=4, resources={"timeout_s": 30, "max_retries": 1})
    api.run({**spec, "search": {**spec["search"], "budget": 12}}, storage=sqlite_url, executor="inline")
    store = Store(sqlite_url)
    cid = store.require_campaign("quad").id
    table = Evaluation.__table__
    with store.write() as conn:  # as the kills left them: open, charged twice
        conn.execute(update(table).where(table.c.campaign_id == cid).values(status="running", attempts=2))
    store.close()
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 24 and stats.counts["failed"] == 12
    store = Store(sqlite_url, readonly=True)
    assert store.require_campaign("quad").status == "finished"
    store.close()


def _rows(url: str) -> list[dict[str, Any]]:
    store = Store(url, readonly=True)
    try:
        return store.evaluations(store.require_campaign("quad").id)
    finally:
        store.close()


def test_a_ctrl_c_during_an_evaluation_keeps_what_finished_and_charges_nothing(sqlite_url: str) -> None:
    """The batch's evaluations finished before the Ctrl-C had been lost (run again on
    resume) and every one in flight charged an attempt: repeated Ctrl-Cs gave good rows up."""
    from tests.support import evaluators

    spec = quadratic_spec(search__budget=12, search__batch_size=6, search__max_in_flight=6,
                          evaluator={"kind": "python", "target": "tests.support.evaluators:interrupts_once"})
    evaluators.INTERRUPT_AT.update(call=4, calls=0)
    try:
        with pytest.raises(KeyboardInterrupt):
            api.run(spec, storage=sqlite_url, executor="inline")
        rows = _rows(sqlite_url)
        assert [r["status"] for r in rows] == ["done"] * 3 + ["pending"] * 3
        assert [r["attempts"] for r in rows] == [1] * 3 + [0] * 3
        assert api.run(spec, storage=sqlite_url, executor="inline").finished == 12
    finally:
        evaluators.INTERRUPT_AT.update(call=0, calls=0)
    rows = _rows(sqlite_url)
    assert [r["status"] for r in rows] == ["done"] * 12 and all(r["attempts"] == 1 for r in rows)


def test_a_ctrl_c_during_a_slow_ask_keeps_the_results_told_before_it(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """With asks as slow as a model's fit, the turn's results are written before its ask:
    a stop (or a kill) during the ask had lost them, and charged their evaluations."""
    from tests.test_plugins import PLUGIN, install_plugin

    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:SlowAskProposer")
    spec = quadratic_spec(search__algorithm=PLUGIN, search__options={"interrupt_at": 3}, search__budget=12,
                          search__batch_size=4, search__max_in_flight=4)
    with pytest.raises(KeyboardInterrupt):
        api.run(spec, storage=sqlite_url, executor="inline")
    rows = _rows(sqlite_url)
    assert [r["status"] for r in rows] == ["done"] * 8  # both batches told before the third ask
    stats = api.run(quadratic_spec(search__algorithm=PLUGIN, search__budget=12, search__batch_size=4,
                                   search__max_in_flight=4, search__options={"interrupt_at": 3}),
                    storage=sqlite_url, executor="inline")
    assert stats.finished == 12 and all(r["attempts"] == 1 for r in _rows(sqlite_url))


def test_a_ctrl_c_that_compiled_code_swallowed_still_stops_the_run(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """numba's compiler drops a Ctrl-C that lands in a ctypes callback: the run had gone on
    (about 4 Ctrl-Cs in 50 on a cma-me run); the request noted by the handler stops it."""
    from entropy_atlas import interrupts
    from tests.test_plugins import PLUGIN, install_plugin

    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:SwallowsCtrlCProposer")
    spec = quadratic_spec(search__algorithm=PLUGIN, search__budget=40, search__batch_size=4, search__max_in_flight=4)
    try:
        with pytest.raises(KeyboardInterrupt):
            api.run(spec, storage=sqlite_url, executor="inline")
    finally:
        interrupts.clear()
    rows = _rows(sqlite_url)
    assert len(rows) == 8 and sum(r["status"] == "done" for r in rows) == 4
    assert all(r["attempts"] == (1 if r["status"] == "done" else 0) for r in rows)


def test_a_ctrl_c_in_tell_takes_back_the_attempts_of_results_it_kept_from_the_store(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """Results out of flight but not written when a Ctrl-C came (a CMA-ES update) had stayed
    charged: a resume ran them again as a second attempt."""
    from tests.test_plugins import PLUGIN, install_plugin

    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:CtrlCInTellProposer")
    spec = quadratic_spec(search__algorithm=PLUGIN, search__budget=12, search__batch_size=4, search__max_in_flight=4)
    with pytest.raises(KeyboardInterrupt):
        api.run(spec, storage=sqlite_url, executor="inline")
    rows = _rows(sqlite_url)
    assert [(r["status"], r["attempts"]) for r in rows] == [("done", 1)] * 4 + [("pending", 0)] * 4


def test_a_proposer_that_fits_a_model_has_its_results_written_before_its_first_ask(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """Each resume starts with no ask timed: three kills during ``bo``'s first fit of each
    run had made 12 good evaluations fail. A proposer that says its asks are slow has the
    turn's results written before every ask."""
    from tests.test_plugins import PLUGIN, install_plugin

    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:FitsAModelProposer")
    spec = quadratic_spec(search__algorithm=PLUGIN, search__budget=12, search__batch_size=4, search__max_in_flight=4)
    with pytest.raises(KeyboardInterrupt):
        api.run(spec, storage=sqlite_url, executor="inline")
    assert [(r["status"], r["attempts"]) for r in _rows(sqlite_url)] == [("done", 1)] * 4


def test_a_proposer_ask_longer_than_the_lease_keeps_it_on_any_executor(sqlite_url: str) -> None:
    """TTL 3 s, an ask of 6 s (a model's reply) with a pool of workers that does not run
    evaluations on the loop's thread: the lease stays live throughout the ask. (At TTL 1 s a
    machine loaded 4× its cores starved the renewal's thread past the TTL.)"""
    from search.campaigns import open_campaign
    from search.scheduler import Scheduler
    from search.spec import parse_spec
    from workers.executors.simulated import SimulatedExecutor

    spec = parse_spec(quadratic_spec(search__algorithm="random", search__budget=8, search__batch_size=4,
                                     search__max_in_flight=4))
    store = Store(sqlite_url)
    try:
        campaign = open_campaign(store, spec)
        prepared = api.prepare(store, spec, "inline", None)
        ask, asks = prepared.proposer.ask, []

        def slow_ask(n: int) -> Any:
            asks.append(n)
            if len(asks) == 2:
                time.sleep(6.0)
            return ask(n)

        prepared.proposer.ask = slow_ask  # type: ignore[method-assign]
        executor = SimulatedExecutor(api.executor_config(spec), workers=4, latency_s=0.01)
        scheduler = Scheduler(store, prepared.setup.committed(campaign), prepared.proposer, executor,
                              lease_ttl_s=3.0)
        run = _Background(scheduler.run)
        _wait_for(lambda: len(asks) >= 2)
        watcher = Store(sqlite_url)
        try:
            seen = []
            while run.thread.is_alive() and len(asks) == 2:
                seen.append(watcher.require_campaign("quad").lease_is_live())
                time.sleep(0.1)
        finally:
            watcher.close()
        assert len(seen) >= 20 and all(seen), "the lease expired during the ask"
        assert run.result().finished == 8
    finally:
        store.close()


def test_a_run_stopped_after_its_campaign_was_taken_over_writes_nothing(sqlite_url: str) -> None:
    """A Ctrl-C reaches a run whose lease another scheduler took meanwhile: the rows it
    had in flight are the new holder's now, and stay as they are (not put back to
    ``pending`` with an attempt taken back); the run says it was taken over."""
    from search.campaigns import open_campaign
    from search.scheduler import Scheduler
    from search.spec import parse_spec
    from workers.executors import make_executor

    spec = parse_spec(quadratic_spec(search__budget=40, search__batch_size=4, search__max_in_flight=4))
    store = Store(sqlite_url)
    try:
        campaign = open_campaign(store, spec)
        prepared = api.prepare(store, spec, "inline", None)
        seen: dict[int, tuple[str, int]] = {}

        def progress(_stats: object) -> None:
            if store.stats(campaign.id, 0).counts["done"] < 8:
                return
            Store(sqlite_url).update_campaign(campaign.id, lease_holder="elsewhere:1:beef", lease_expires=4e9)
            seen.update({r["id"]: (r["status"], r["attempts"]) for r in store.unfinished(campaign.id)})
            raise KeyboardInterrupt

        scheduler = Scheduler(store, prepared.setup.committed(campaign), prepared.proposer,
                              make_executor("inline", api.executor_config(spec)), progress=progress)
        scheduler._report = lambda final=False: scheduler.progress(scheduler.stats())  # type: ignore[method-assign]
        with pytest.raises(LeaseLost, match="another scheduler took over while this one was stopped"):
            scheduler.run()
        assert any(status == "running" for status, _ in seen.values())
        assert {r["id"]: (r["status"], r["attempts"]) for r in store.unfinished(campaign.id)} == seen
        assert store.require_campaign("quad").lease_holder == "elsewhere:1:beef"
    finally:
        store.close()


def test_a_budget_checked_before_the_lease_is_checked_again_under_it(sqlite_url: str) -> None:
    """A resume planned with budget 30 while the campaign had 20 evaluations; the run that
    held it then wrote 40 before this one took the lease: the budget is refused, not
    written as "40 of 30"."""
    from archive.records import NewEvaluation
    from search.campaigns import open_campaign, write_limits
    from search.spec import SpecError, parse_spec

    spec = parse_spec(quadratic_spec(search__budget=40))
    store = Store(sqlite_url)
    try:
        campaign = open_campaign(store, spec)
        store.add_pending(campaign.id, [NewEvaluation(i, {"a": 0.5, "b": 0.5}, [0.5, 0.5], "t") for i in range(40)])
        smaller = parse_spec(quadratic_spec(search__budget=30))
        with pytest.raises(SpecError, match=r"search\.budget: 30 is below the 40 evaluations"):
            write_limits(store, store.require_campaign("quad"), smaller)
        assert store.require_campaign("quad").spec["search"]["budget"] == 40
    finally:
        store.close()
