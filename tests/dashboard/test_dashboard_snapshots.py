"""Each view reads one consistent snapshot of a live series (:meth:`DashboardData.snapshot`).

During a run, other requests extend a campaign's series whenever they hold its lock; a
view that read the series twice (its columns, then its length; or the fronts, which are
kept up to date in place) mixed two lengths and failed with an ``IndexError`` (a 500).
The race is made deterministic here: the cached series grows by a few rows *every time
its columns are looked at*, as if another request had extended it right after each read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from archive import queries
from archive.store import Store
from dashboard.data import CampaignInfo, DashboardData, _Series
from tests.dashboard.synthetic import synthetic_campaign

GROWTH = 3  # rows added at each look


class _GrowingSeries(_Series):
    """A live series that another request extends right after each read of its columns
    (by rows better than any before, so every Pareto front moves too)."""

    @property  # type: ignore[override]
    def cols(self) -> dict[str, np.ndarray]:
        cols = self.__dict__["cols"]
        if not self.__dict__.get("_growing_now", False):
            self.__dict__["_growing_now"] = True
            try:
                self.extend_columns(self._more(), measured=self.measured)
            finally:
                self.__dict__["_growing_now"] = False
        return cols

    @cols.setter
    def cols(self, value: dict[str, np.ndarray]) -> None:
        self.__dict__["cols"] = value

    def _more(self) -> queries.ResultColumns:
        """:data:`GROWTH` done results after the last, each better than all before."""
        cols = self.__dict__["cols"]
        seq = np.arange(self.last_seq + 1, self.last_seq + 1 + GROWTH, dtype=np.int64)
        top = float(np.nanmax(cols["objective"])) if len(cols["objective"]) else 0.0
        return queries.ResultColumns(
            seq=seq, id=seq + 10**6, done=np.ones(GROWTH, bool), cell=np.arange(GROWTH, dtype=np.int64),
            objective=top + 1.0 + np.arange(GROWTH, dtype=float), proposer=np.zeros(GROWTH, np.int64),
            names=[self.proposers[0]], measures=np.linspace(0.0, 1.0, GROWTH * len(self.measures)).reshape(
                GROWTH, len(self.measures)),
            through=int(seq[-1]))


@pytest.fixture
def live(sqlite_url: str) -> Iterator[tuple[DashboardData, CampaignInfo]]:
    """A running campaign whose cached series (its measures read) keeps growing."""
    store, _ = synthetic_campaign(sqlite_url, "live", 300, bins=(5, 5), status="running", fail_rate=0.1, batch=50)
    data = DashboardData(Store(sqlite_url, readonly=True))
    info = data.info("live")
    data.scatter(info)  # the series is cached with its measures
    (series,) = data._series.values()
    series.__class__ = _GrowingSeries
    try:
        yield data, info
    finally:
        data.store.close()
        store.close()


@pytest.mark.parametrize("view", ["history", "scatter", "proposers"])
def test_a_view_reads_one_snapshot_of_a_growing_series(live: tuple[DashboardData, CampaignInfo], view: str) -> None:
    data, info = live
    for _ in range(3):  # every answer holds together, however often the series grew meanwhile
        answer: dict[str, Any] = getattr(data, view)(info, 20_000)
        if view == "history":
            assert len(answer["evaluations"]) == answer["total"] == len(answer["qd_score"])
        elif view == "scatter":
            assert len(answer["points"]["evaluation_id"]) == answer["shown"] == answer["total"]
            for sides in answer["fronts"].values():
                assert all(len(side["evaluation_id"]) == len(side["objective"]) for side in sides.values())
        else:
            steps = len(answer["over_time"]["evaluations"])
            assert all(len(v) == steps for v in answer["over_time"]["cumulative"].values())


def test_a_snapshots_fronts_are_its_own(sqlite_url: str) -> None:
    """The fronts of a snapshot are a copy: extending the series later (which updates its
    fronts in place) leaves them indexing the columns the snapshot holds."""
    store, _ = synthetic_campaign(sqlite_url, "fronts", 200, bins=(5, 5), status="running", batch=50)
    data = DashboardData(store)
    info = data.info("fronts")
    view = data.snapshot(info, fronts=True)
    before = {key: rows.copy() for key, rows in view.fronts.items()}
    series = data.series(info, measures=True)
    series.__class__ = _GrowingSeries
    series.fronts()  # grows the series, and its fronts with rows the snapshot does not have
    assert len(series) > len(view)
    assert view.fronts.keys() == before.keys()
    for key, rows in view.fronts.items():
        np.testing.assert_array_equal(rows, before[key])
        assert rows.size == 0 or rows.max() < len(view)
    store.close()
