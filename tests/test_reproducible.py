"""``search.reproducible``: the inline executor runs one asked batch a turn, whatever the
evaluations' times, so the same file gives the same run (docs/campaigns.md,
Reproducibility; on Ray: tests/test_reproducible_ray.py). By default a turn takes what
finished within 0.2 s, and a run whose evaluations take other times is told its results in
other groups, and parts from there."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import archive
from search import api
from tests.conftest import quadratic_spec

SLOW_CALLS: set[int] = set()  # the calls of :func:`evaluate` that take 0.25 s, past a turn's 0.2 s
_calls = [0]


def evaluate(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A quadratic whose time alone depends on the run: calls in :data:`SLOW_CALLS` sleep."""
    _calls[0] += 1
    if _calls[0] in SLOW_CALLS:
        time.sleep(0.25)
    a, b = params["a"], params["b"]
    return {"objective": -((a - 0.3) ** 2) - (b - 0.7) ** 2, "measures": {"ma": a, "mb": b}}


def _spec(name: str, reproducible: bool, budget: int = 48) -> dict[str, Any]:
    return quadratic_spec(name=name, evaluator={"kind": "python", "target": "tests.test_reproducible:evaluate"},
                          search__budget=budget, search__batch_size=8, search__max_in_flight=16,
                          search__reproducible=reproducible)


def _rows(db: Path, name: str) -> list[tuple[int, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT e.seq, e.params FROM evaluations e JOIN campaigns c ON c.id = e.campaign_id "
                            "WHERE c.name = ? ORDER BY e.seq", (name,)).fetchall()


def _run(db: Path, name: str, reproducible: bool, slow: set[int]) -> list[tuple[int, str]]:
    SLOW_CALLS.clear()
    SLOW_CALLS.update(slow)
    _calls[0] = 0
    try:
        api.run(_spec(name, reproducible), storage=f"sqlite:///{db}", executor="inline")
    finally:
        SLOW_CALLS.clear()
    return _rows(db, name)


def test_a_reproducible_run_is_the_same_whatever_its_evaluations_times(tmp_path: Path) -> None:
    """The same file, once with instant evaluations and once with two that outlast a turn
    (calls 3 and 12: the first batches come back in other groups), gives the same 48 rows,
    seq by seq: map-elites' bandit is told batch by batch either way."""
    db = tmp_path / "r.db"
    instant = _run(db, "instant", True, set())
    slowed = _run(db, "slowed", True, {3, 12})
    assert len(instant) == 48 and instant == slowed


def test_reproducible_may_change_between_runs_of_a_campaign(tmp_path: Path) -> None:
    """Like ``budget`` and ``fail_fast`` (:data:`search.spec.RUN_LIMITS`): the run that
    sets it continues the campaign, and the stored spec keeps the new value."""
    db = tmp_path / "r.db"
    api.run(_spec("quad", False, budget=16), storage=f"sqlite:///{db}", executor="inline")
    stats = api.run(_spec("quad", True, budget=32), storage=f"sqlite:///{db}", executor="inline")
    assert stats.finished == 32
    with archive.open(f"sqlite:///{db}") as store:
        assert store.campaign("quad").spec["search"]["reproducible"] is True
