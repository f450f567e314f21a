"""A reproducible run stopped at a whole batch and resumed is the uninterrupted run, seq by
seq, whatever ``max_in_flight`` (a multiple of ``batch_size``): docs/campaigns.md,
Reproducibility, "A resume".

With ``m = max_in_flight / batch_size`` the uninterrupted run asks up to ``m`` batches a
turn and tells them together when they are back. A run whose budget cuts a turn's asks
short (room left for more) had told that group's results before stopping, and its resume
asked from that later state: it parted at the cut (100 of 200 rows, map-elites, 3 batches
in flight). Now those results are written but not told, the checkpoint stays the one of the
last ask (with the untold ids beside it), and the resume asks the rest of the group first,
then tells the group whole.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import archive
from archive.store import Store
from search import api
from tests.conftest import quadratic_spec
from tests.support.evaluators import quadratic

BATCH = 4


def failing_low_a(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The quadratic, or an error where ``a`` < 0.3: a share of every batch fails."""
    if float(params["a"]) < 0.3:
        raise ValueError("a below 0.3")
    return quadratic(params, ctx)


def _spec(name: str, algorithm: str, budget: int, batches_in_flight: int, reproducible: bool = True,
          evaluator: str = "tests.support.evaluators:quadratic") -> dict[str, Any]:
    return quadratic_spec(name=name, evaluator={"kind": "python", "target": evaluator},
                          search={"algorithm": algorithm, "budget": budget, "batch_size": BATCH,
                                  "max_in_flight": BATCH * batches_in_flight, "seed": 5,
                                  "reproducible": reproducible, "fail_fast": 0})


def _rows(db: Path, name: str) -> list[tuple[Any, ...]]:
    """Each row of campaign ``name`` by seq: its x, params, status and objective."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT e.seq, e.x, e.params, e.status, e.objective FROM evaluations e "
                            "JOIN campaigns c ON c.id = e.campaign_id WHERE c.name = ? ORDER BY e.seq",
                            (name,)).fetchall()


def _whole_and_resumed(db: Path, algorithm: str, cut: int, total: int, batches_in_flight: int,
                       **spec: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The rows of a run to ``total``, and of one to ``cut`` resumed to ``total``."""
    url = f"sqlite:///{db}"
    api.run(_spec("whole", algorithm, total, batches_in_flight, **spec), storage=url, executor="inline")
    api.run(_spec("cut", algorithm, cut, batches_in_flight, **spec), storage=url, executor="inline")
    api.resume("cut", storage=url, executor="inline", budget=total)
    return _rows(db, "whole"), _rows(db, "cut")


@pytest.mark.parametrize("batches_in_flight", [1, 2, 3])
@pytest.mark.parametrize(("algorithm", "total"), [("map-elites", 48), ("bo", 24), ("random", 48)])
def test_a_reproducible_run_cut_at_a_whole_batch_and_resumed_is_the_uninterrupted_run(
        tmp_path: Path, algorithm: str, total: int, batches_in_flight: int) -> None:
    """Cut at 20 with 1, 2 or 3 batches of 4 in flight: the cut falls inside a turn's asks
    for 2 and 3 (20 is no multiple of 8 or 12), where the resumed run parted at the cut
    before (map-elites and bo, past its 6-point design: from seq 20 on; random, told nothing
    it draws from, did not)."""
    whole, resumed = _whole_and_resumed(tmp_path / "r.db", algorithm, 20, total, batches_in_flight)
    assert len(whole) == total
    assert resumed == whole


def test_failures_in_the_untold_results_are_told_on_resume_as_the_uninterrupted_run_told_them(
        tmp_path: Path) -> None:
    """Failed evaluations in the group the budget cut short are written, kept untold with the
    rest (their ids beside the checkpoint), and told in the group on resume: the same rows."""
    db = tmp_path / "r.db"
    evaluator = "tests.test_resume_exact:failing_low_a"
    whole, resumed = _whole_and_resumed(db, "map-elites", 20, 48, 3, evaluator=evaluator)
    assert resumed == whole and {r[3] for r in whole[12:20]} == {"done", "failed"}
    url = f"sqlite:///{db}"
    api.run(_spec("again", "map-elites", 20, 3, evaluator=evaluator), storage=url, executor="inline")
    store = Store(url)
    cid = store.require_campaign("again").id
    untold = store.load_untold(cid, "map-elites")
    statuses = {r["id"]: r["status"] for r in store.evaluations(cid)}
    store.close()
    assert len(untold) == 8  # 12..19: the second turn's asks, which the budget cut at 2 batches of 3
    assert {statuses[i] for i in untold} == {"done", "failed"}


def test_a_campaign_finished_with_results_untold_reads_as_every_other(storage_url: str) -> None:
    """The finished campaign holds every result it ran and its elites (the store's, not the
    proposer's); its untold ids are gone once a resume has told them (SQLite and PostgreSQL)."""
    url = storage_url
    stats = api.run(_spec("cut", "map-elites", 20, 3), storage=url, executor="inline")
    assert stats.finished == 20
    store = Store(url)
    assert len(store.load_untold(store.require_campaign("cut").id, "map-elites")) == 8
    store.close()
    with archive.open(url) as store:
        camp = store.campaign("cut")
        rows = camp.evaluations()
        best: dict[int, float] = {}
        for r in rows:
            if r["cell"] is not None:
                best[r["cell"]] = max(best.get(r["cell"], -1e9), r["objective"])
        assert {e["cell"]: e["objective"] for e in camp.elites()} == best
        assert camp.checkpoint() is not None
    api.resume("cut", storage=url, executor="inline", budget=24)  # 24: 20..23 fill the cut group
    store = Store(url)
    assert store.load_untold(store.require_campaign("cut").id, "map-elites") == []
    store.close()


@pytest.mark.parametrize(("reproducible", "batches_in_flight"), [(False, 3), (True, 1), (True, 2)])
def test_every_result_is_told_where_no_ask_was_cut_short(tmp_path: Path, reproducible: bool,
                                                         batches_in_flight: int) -> None:
    """Without ``search.reproducible``, or where the budget ends a full turn of asks (1 batch
    in flight; 2 batches and a budget of 24), the last results are told as before: no untold
    ids are written."""
    url = f"sqlite:///{tmp_path / 'r.db'}"
    api.run(_spec("c", "map-elites", 24, batches_in_flight, reproducible), storage=url, executor="inline")
    store = Store(url)
    cid = store.require_campaign("c").id
    assert store.load_untold(cid, "map-elites") == []
    assert store.load_checkpoint(cid, "(untold)") is None
    store.close()


@pytest.mark.ray
def test_on_ray_a_reproducible_run_cut_and_resumed_is_the_uninterrupted_run(tmp_path: Path,
                                                                            ray_cluster: None) -> None:
    """On Ray (whole batches in submit order: :class:`workers.executors.ordered.OrderedBatches`),
    with 0–30 ms evaluations finishing in any order and 3 batches in flight, the run cut at 20
    and resumed gives the inline uninterrupted run's rows."""
    db = tmp_path / "r.db"
    url = f"sqlite:///{db}"
    jittery = "tests.test_reproducible_ray:jittery"
    api.run(_spec("whole", "map-elites", 40, 3, evaluator=jittery), storage=url, executor="inline")
    api.run(_spec("cut", "map-elites", 20, 3, evaluator=jittery), storage=url, executor="ray")
    api.resume("cut", storage=url, executor="ray", budget=40)
    assert _rows(db, "cut") == _rows(db, "whole")
