"""The scheduler's turns: what one poll brings back is written in one transaction with the
rows asked for in its place, and a scheduler stopped between turns loses nothing."""

from __future__ import annotations

from typing import Any

import pytest

import archive
from archive.store import Store
from search import api
from tests.conftest import quadratic_spec
from workers.executors.simulated import SimulatedClock, SimulatedExecutor
from workers.runner import Outcome


class Killed(BaseException):
    """The scheduler's process dying between two turns (nothing after it runs)."""


class Recorder(SimulatedExecutor):
    """A simulated pool that notes what each poll returned, and dies at poll ``kill_at``."""

    def __init__(self, *args: Any, kill_at: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kill_at = kill_at
        self.polls: list[list[int]] = []

    def poll(self, timeout: float) -> list[Outcome]:
        if self.kill_at is not None and len(self.polls) == self.kill_at:
            raise Killed
        out = super().poll(timeout)
        self.polls.append([o.evaluation_id for o in out])
        return out


def spec(**overrides: Any) -> Any:
    return api.as_spec(quadratic_spec(search__budget=40, search__batch_size=4, search__max_in_flight=8, **overrides))


def test_each_drained_batch_is_one_transaction_with_the_rows_asked_in_its_place(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[tuple[list[int], int, int]] = []
    original = Store.step

    def spy(self: Store, campaign_id: int, **kw: Any) -> list[int]:
        steps.append(([r.evaluation_id for r in kw.get("results", ())], len(kw.get("rows", ())),
                      len(kw.get("started") or {})))
        return original(self, campaign_id, **kw)

    monkeypatch.setattr(Store, "step", spy)
    calls: list[str] = []
    for name in ("record_results", "add_pending", "mark_running"):
        monkeypatch.setattr(Store, name, lambda *a, _n=name, **k: calls.append(_n))
    ex = Recorder(api.executor_config(spec()), workers=4, latency_s=1.0, clock=SimulatedClock())
    stats = api.run(spec(), storage=sqlite_url, executor=ex)
    assert stats.finished == 40 and calls == []  # every write of the loop went through step
    drained = [p for p in ex.polls if p]
    written = [results for results, _, _ in steps if results]
    assert written == drained  # one transaction per drained batch, in the order they came back
    assert all(rows == 4 for results, rows, _ in steps if results and len(results) == 4 and rows)
    assert sum(started for _, _, started in steps) == 40  # every start charged, once


@pytest.mark.parametrize("kill_at", [1, 3, 6])
def test_a_scheduler_stopped_between_turns_loses_nothing_and_records_nothing_twice(
        storage_url: str, kill_at: int) -> None:
    """On both databases: on PostgreSQL the turns are written behind the loop (search.step_writer),
    and what was queued when it stopped is written before it ends."""
    ex = Recorder(api.executor_config(spec()), workers=4, latency_s=1.0, clock=SimulatedClock(), kill_at=kill_at)
    with pytest.raises(Killed):
        api.run(spec(), storage=storage_url, executor=ex)
    returned = {i for p in ex.polls for i in p}
    with archive.open(storage_url) as handle:
        camp = handle.campaign("quad")
        before = {r["id"]: r for r in camp.evaluations()}
        assert {i for i, r in before.items() if r["status"] == "done"} == returned  # every result it saw, kept
        unfinished = [r for r in before.values() if r["status"] != "done"]
        assert unfinished and all(r["status"] in ("pending", "running") for r in unfinished)
        # A start is charged with the turn after it was reported: those of the last dispatch
        # were not yet (they ran on workers that would have died with the scheduler).
        assert all(r["attempts"] == 1 for r in before.values() if r["status"] == "done")
        assert all(r["attempts"] in (0, 1) for r in unfinished)

        again = SimulatedExecutor(api.executor_config(spec()), workers=4, latency_s=1.0, clock=SimulatedClock())
        stats = api.resume("quad", storage=storage_url, executor=again)
        rows = camp.evaluations()
        assert stats.finished == 40 and sorted(r["seq"] for r in rows) == list(range(40))
        assert all(r["status"] == "done" for r in rows)
        for r in rows:
            if r["id"] in returned:  # recorded before the stop: untouched since
                assert (r["finished_at"], r["finished_seq"], r["attempts"]) == (
                    before[r["id"]]["finished_at"], before[r["id"]]["finished_seq"], 1)
            elif r["id"] in before:  # in flight at the stop: run again, charged again
                assert r["attempts"] == before[r["id"]]["attempts"] + 1
        assert len({r["finished_seq"] for r in rows}) == 40  # each recorded once


class ClusterGone(Recorder):
    """A simulated pool whose cluster goes at poll ``kill_at``: the executor's own error
    (``error``, a plain :class:`ExecutorError` unless given)."""

    error: type[Exception] | None = None

    def poll(self, timeout: float) -> list[Outcome]:
        if len(self.polls) == self.kill_at:
            from workers.executors.base import ExecutorError

            raise (self.error or ExecutorError)("the Ray cluster at 10.0.0.1:6379 stopped answering")
        return super().poll(timeout)


def test_an_executor_that_stops_the_run_leaves_nothing_in_flight_and_every_start_charged(storage_url: str) -> None:
    """The executor raised (its cluster gone): its error is the run's, the lease is released,
    no row is left ``running``, and the evaluations in flight, started (reported) or not,
    go back to ``pending``, the started ones charged; a resume runs exactly the rest."""
    from workers.executors.base import ExecutorError

    ex = ClusterGone(api.executor_config(spec()), workers=4, latency_s=1.0, clock=SimulatedClock(), kill_at=3)
    with pytest.raises(ExecutorError, match="stopped answering") as info:
        api.run(spec(), storage=storage_url, executor=ex)
    assert str(info.value) == "the Ray cluster at 10.0.0.1:6379 stopped answering"  # no resume it did not ask for
    returned = {i for p in ex.polls for i in p}
    with archive.open(storage_url) as handle:
        camp = handle.campaign("quad")
        assert camp.record.status == "stopped" and camp.record.lease_holder is None
        rows = camp.evaluations()
        unfinished = [r for r in rows if r["status"] != "done"]
        assert {r["id"] for r in rows if r["status"] == "done"} == returned
        assert unfinished and all(r["status"] == "pending" for r in unfinished)
        assert sum(r["attempts"] for r in unfinished) == 4  # the last dispatch's, reported and charged
        stats = api.resume("quad", storage=storage_url, executor=SimulatedExecutor(
            api.executor_config(spec()), workers=4, latency_s=1.0, clock=SimulatedClock()))
        assert stats.finished == 40 and all(r["status"] == "done" for r in camp.evaluations())


@pytest.mark.parametrize("cli_words", [False, True])
def test_a_lost_clusters_error_ends_with_the_resume_in_the_callers_words(storage_url: str, cli_words: bool) -> None:
    """An executor error that stops the run because its cluster went (``resumes_when_back``,
    as Ray's ``ClusterLost``) keeps its class and gains the resume: ``api.resume('quad', …)``
    and ``address=`` for Python, ``atlas resume quad`` and ``--address`` for ``atlas`` (a
    script cannot run ``atlas resume`` on a proposer it registered)."""
    from workers.executors.base import ExecutorError

    class Lost(ExecutorError):
        resumes_when_back = True

    ex = ClusterGone(api.executor_config(spec()), workers=4, latency_s=1.0, clock=SimulatedClock(), kill_at=3)
    ex.error = Lost
    with pytest.raises(Lost) as info:
        api.run(spec(), storage=storage_url, executor=ex, cli_words=cli_words)
    resume, address = ("atlas resume quad", "--address") if cli_words else ("api.resume('quad', …)", "address=")
    assert str(info.value) == (f"the Ray cluster at 10.0.0.1:6379 stopped answering and resumes with `{resume}` "
                               f"(with {address} once the cluster is back)")
