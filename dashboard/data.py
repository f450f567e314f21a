"""The dashboard's read model: what each page shows, from the archive's queries
(:mod:`archive.queries`) and its statistics (:mod:`archive.stats`).

Everything here only reads, and builds no SQL. The heavy views (the QD-score trajectory,
objective against measures, proposer attribution) come from one *series* per campaign:
every finished evaluation in the order its result was recorded (``finished_seq``), as
NumPy columns. A series is loaded once and then extended with only the rows recorded since
(:func:`archive.queries.results_columns`, read by the driver straight into arrays), so a
page that polls a running campaign costs one indexed range query per new batch. The
measures (JSON, about half of a first read's cost) are read only once a page shows them
(the scatter; :func:`archive.queries.result_measures`); extending by parts gives the same
arrays as one cold build.

The trajectory replays the archive's own rule (:func:`archive.stats.replay`: a cell's elite
is replaced only by a strictly better fitness), so its last QD-score equals
:meth:`archive.store.Store.stats`' ``qd_score``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import threading
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from archive import calls, queries
from archive.exploration import campaign_exploration
from archive.layout import CellLayout
from archive.queries import CampaignRow, EliteRow
from archive.records import EXPLORATION_BINS, CampaignSettings, live_status
from archive.redact import redact_spec
from archive.stats import RUN_LENGTH, Exploration, non_dominated, replay
from archive.store import Store, failure_group
from entropy_atlas.errors import AtlasError

VORONOI_RESOLUTION = 200


class EvaluationNotFound(AtlasError, LookupError):
    """No evaluation of that id in the campaign."""


@dataclasses.dataclass(frozen=True)
class CampaignInfo(CampaignRow):
    """A campaign's row (without its layout), with what the pages need of its settings."""

    @classmethod
    def of(cls, row: CampaignRow) -> CampaignInfo:
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(row)})

    @property
    def objective_name(self) -> str:
        return self.settings.objective

    @property
    def maximize(self) -> bool:
        return self.settings.maximize

    @property
    def sign(self) -> float:
        return self.settings.sign

    @property
    def budget(self) -> int:
        return self.settings.budget

    @property
    def algorithm(self) -> str:
        return self.settings.algorithm

    @property
    def qd_offset(self) -> float:
        return self.settings.qd_offset

    @property
    def param_names(self) -> list[str]:
        return list(self.settings.params)

    @property
    def state(self) -> str:
        """The status as ``atlas status`` says it (:func:`archive.records.live_status`, one
        rule for both): ``running`` only while a scheduler holds a live lease;
        ``interrupted`` when the row says running but its scheduler's lease has lapsed, or its
        process on this host is gone (``kill -9``: at once, not a lease's TTL later); else the
        row's ``status`` (``stopped`` for an orderly stop). ``status`` stays the row's, as stored."""
        return live_status(self.status, self.lease_holder, self.lease_expires)


def _units(settings: CampaignSettings) -> dict[str, str]:
    """The units of the campaign's objective and measures, by name (:attr:`CampaignSettings.units`),
    a name without a unit left out."""
    named = (settings.objective, *settings.measures)
    return {name: unit for name, unit in settings.units.items() if unit and name in named}


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _floats(values: np.ndarray) -> list[float | None]:
    """A float column as JSON-ready values (NaN and infinities become ``None``)."""
    values = np.asarray(values, dtype=float)
    if np.isfinite(values).all():
        return values.tolist()
    return [v if math.isfinite(v) else None for v in values.tolist()]


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats replaced by ``None`` (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return json_safe(value.item())
    return value


def _json_column(values: list[Any]) -> list[Any]:
    """:func:`json_safe` of a column of decoded JSON values, walked only when it holds a
    non-finite float (one C-level encode finds out: the walk costs ~60 µs an elite)."""
    try:
        json.dumps(values, allow_nan=False)
    except (ValueError, TypeError):
        return json_safe(values)
    return values


def sample_indices(n: int, points: int) -> np.ndarray:
    """At most ``points`` indices spread evenly over ``range(n)``, first and last included
    (one point: the last, the latest)."""
    if n <= 0 or points <= 0:
        return np.zeros(0, dtype=np.int64)
    if n <= points:
        return np.arange(n, dtype=np.int64)
    if points == 1:
        return np.array([n - 1], dtype=np.int64)
    return np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))


def _undominated_by_bins(key: np.ndarray, fitness: np.ndarray, bins: int) -> np.ndarray:
    """A mask of the points that no point of a strictly higher bin of ``key`` dominates (a
    point of strictly greater ``key`` with ``fitness`` at least as good): a superset of the
    Pareto front, found in linear time. The bins are ``bins`` equal slices of ``key``'s range;
    each step of the bin's formula is monotone, so a higher bin means a strictly greater key.
    Points with a NaN are kept (:func:`archive.stats.non_dominated` judges them)."""
    ok = np.isfinite(key) & np.isfinite(fitness)
    keep = np.ones(len(key), dtype=bool)
    if not ok.any():
        return keep
    k, f = key[ok], fitness[ok]
    lo, hi = k.min(), k.max()
    if not hi > lo:
        return keep
    b = np.minimum(((k - lo) / (hi - lo) * bins).astype(np.int64), bins - 1)
    top = np.full(bins, -np.inf)
    np.maximum.at(top, b, f)
    above = np.concatenate((np.maximum.accumulate(top[::-1])[::-1][1:], [-np.inf]))  # best of the higher bins
    keep[ok] = f > above[b]
    return keep


def pareto_front(measure: np.ndarray, fitness: np.ndarray, measure_higher: bool,
                 prefilter_above: int = 10_000) -> np.ndarray:
    """Indices of the points no other point dominates (:func:`archive.stats.non_dominated`),
    for maximal ``fitness`` and a ``measure`` that is better higher (``measure_higher``) or
    lower; one index per distinct point (the first), sorted by measure.

    Two points of the front with the same measure have the same fitness (else one would
    dominate the other), so the duplicates are those of equal measure. Beyond
    ``prefilter_above`` points, those a coarser pass finds dominated are dropped first
    (:func:`_undominated_by_bins`: 0.4 s → 0.03 s for 10⁶ points), in order, so the same
    indices come out.
    """
    if len(measure) == 0:
        return np.zeros(0, dtype=np.int64)
    key = measure if measure_higher else -measure
    if len(key) > prefilter_above:
        rows = np.flatnonzero(_undominated_by_bins(key, fitness, 4096))
        front = rows[non_dominated(np.column_stack([key[rows], fitness[rows]]))]
    else:
        front = np.flatnonzero(non_dominated(np.column_stack([key, fitness])))
    front = front[np.argsort(measure[front], kind="stable")]
    ranked = measure[front]
    return front[np.concatenate(([True], ranked[1:] != ranked[:-1]))]


@dataclasses.dataclass(frozen=True)
class SeriesView:
    """One consistent reading of a campaign's series, for one view: its columns, proposers
    and fronts as they were at one moment, under the campaign's lock.

    Rule: a view reads the series once. Another request may extend the live series (a new
    dict of longer columns, a longer proposer list, fronts over more rows) as soon as the
    lock is released; a view that read the series twice would mix two lengths (an
    ``IndexError``). The columns are never changed in place, so a shallow copy holds them."""

    cells: int
    sign: float
    measures: list[str]
    proposers: tuple[str, ...]
    cols: dict[str, np.ndarray]
    fronts: dict[tuple[int, bool], np.ndarray]

    def __len__(self) -> int:
        return len(self.cols["seq"])


@dataclasses.dataclass
class _Series:
    """Every finished evaluation of one campaign, in the order recorded, and the map's
    trajectory after each of them."""

    cells: int
    sign: float
    offset: float
    measures: list[str]
    last_seq: int = 0
    proposers: list[str] = dataclasses.field(default_factory=list)
    best: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    cols: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    _fronts: dict[tuple[int, bool], np.ndarray] = dataclasses.field(default_factory=dict)
    _fronts_upto: int = 0
    measured: bool = True  # whether the measures of every row are read (see DashboardData.series)

    def __post_init__(self) -> None:
        self.best = np.full(max(self.cells, 1), -np.inf)
        k = len(self.measures)
        empty = {
            "seq": np.zeros(0, np.int64), "id": np.zeros(0, np.int64), "done": np.zeros(0, bool),
            "cell": np.zeros(0, np.int64), "objective": np.zeros(0), "fitness": np.zeros(0),
            "measures": np.zeros((0, k)), "proposer": np.zeros(0, np.int32), "delta": np.zeros(0),
            "filled": np.zeros(0, bool), "improved": np.zeros(0, bool), "qd": np.zeros(0),
            "coverage": np.zeros(0, np.int64), "best": np.zeros(0), "failed": np.zeros(0, np.int64),
        }
        self.cols = empty

    def __len__(self) -> int:
        return len(self.cols["seq"])

    def _code(self, name: str) -> int:
        try:
            return self.proposers.index(name)
        except ValueError:
            self.proposers.append(name)
            return len(self.proposers) - 1

    def extend_columns(self, new: queries.ResultColumns, measured: bool = True) -> None:
        """Append the results of :func:`archive.queries.results_columns`, whose measures
        were read only if ``measured`` (else NaN until :meth:`fill_measures`).

        Every column after a row is a running sum or maximum carried over from the row
        before, so extending by parts gives the same arrays as one cold build."""
        n = len(new.seq)
        if n == 0:
            return
        k = len(self.measures)
        codes = np.array([self._code(name) for name in new.names], dtype=np.int32)
        proposer = codes[new.proposer] if len(codes) else np.zeros(n, np.int32)
        done, cell, objective = new.done, new.cell, new.objective
        measures = new.measures if measured else np.full((n, k), np.nan)
        fitness = self.sign * objective

        idx = np.flatnonzero(done)
        delta = np.zeros(n)
        filled = np.zeros(n, bool)
        improved = np.zeros(n, bool)
        if idx.size:
            top = int(cell[idx].max())
            if top >= len(self.best):  # a cell beyond the layout: keep counting it
                self.best = np.concatenate([self.best, np.full(top + 1 - len(self.best), -np.inf)])
            d, f = replay(self.best, cell[idx], fitness[idx], self.offset)
            delta[idx], filled[idx], improved[idx] = d, f, f | (d > 0)
        c = self.cols
        qd0 = c["qd"][-1] if len(c["qd"]) else 0.0
        cov0 = c["coverage"][-1] if len(c["coverage"]) else 0
        best0 = c["best"][-1] if len(c["best"]) else -np.inf
        fail0 = c["failed"][-1] if len(c["failed"]) else 0
        add = {
            "seq": new.seq, "id": new.id, "done": done, "cell": cell, "objective": objective, "fitness": fitness,
            "measures": measures, "proposer": proposer, "delta": delta, "filled": filled, "improved": improved,
            # the running sum from the last value on: the same additions, in the same order, as one build
            "qd": np.cumsum(np.concatenate(([qd0], delta)))[1:], "coverage": cov0 + np.cumsum(filled),
            "best": np.maximum.accumulate(np.concatenate(([best0], np.where(done, fitness, -np.inf))))[1:],
            "failed": fail0 + np.cumsum(~done),
        }
        if len(self) == 0:
            self.cols = {key: add[key] for key in c}
        else:
            self.cols = {key: np.concatenate([c[key], add[key]]) for key in c}
        self.measured = self.measured and measured
        self.last_seq = int(new.seq[-1])

    def fill_measures(self, seq: np.ndarray, measures: np.ndarray) -> bool:
        """Put in the measures of every row (:func:`archive.queries.result_measures`, by
        ``finished_seq``); ``False`` if those are not the rows held."""
        if not np.array_equal(seq, self.cols["seq"]) or measures.shape != self.cols["measures"].shape:
            return False
        self.cols["measures"] = measures
        self.measured = True
        return True

    def fronts(self) -> dict[tuple[int, bool], np.ndarray]:
        """For each measure ``j`` and whether it is better higher, the rows (indices into the
        series) of the Pareto front of fitness against that measure, over every done result.

        Kept up to date incrementally: a point off the front stays off it, so the front of
        the old front and the rows added since is the front of all of them.
        """
        n = len(self)
        if not self.measured:
            raise RuntimeError("the series' measures are not read")
        if self._fronts_upto == n:
            return self._fronts
        c = self.cols
        new = np.arange(self._fronts_upto, n)
        new = new[c["done"][new]]
        for j in range(len(self.measures)):
            for higher in (True, False):
                rows = np.concatenate([self._fronts.get((j, higher), np.zeros(0, np.int64)), new])
                m = c["measures"][rows, j]
                rows = rows[np.isfinite(m)]
                self._fronts[(j, higher)] = rows[pareto_front(c["measures"][rows, j], c["fitness"][rows], higher)]
        self._fronts_upto = n
        return self._fronts

    def view(self, fronts: bool = False) -> SeriesView:
        """The series as it is now (:class:`SeriesView`), with its Pareto fronts if ``fronts``;
        taken under the campaign's lock. Copies a few references, never an array."""
        front_rows = dict(self.fronts()) if fronts else {}  # computed first: they index the columns read below
        return SeriesView(self.cells, self.sign, list(self.measures), tuple(self.proposers), dict(self.cols),
                          front_rows)


@dataclasses.dataclass
class _EliteCache:
    """The elites of one campaign by cell, as of the result ``through`` (a ``finished_seq``).

    An elite changes only when a result is recorded, in the same transaction, so the elites
    made by results after ``through`` are all that can differ: those are read and merged.
    """

    through: int = 0
    rows: dict[int, EliteRow] = dataclasses.field(default_factory=dict)

    def update(self, rows: Sequence[EliteRow], through: int) -> None:
        for elite in rows:
            held = self.rows.get(elite.cell)
            if held is None or elite.finished_seq >= held.finished_seq:
                self.rows[elite.cell] = elite
        self.through = through


class DashboardData:
    """Read-only views of one storage's campaigns, for the dashboard's API."""

    def __init__(self, store: Store, memo_size: int = 128, series_size: int = 16) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._campaign_locks: dict[int, threading.Lock] = {}
        self._layouts: dict[tuple[int, float], CellLayout] = {}
        self._series: OrderedDict[tuple[int, float], _Series] = OrderedDict()
        self._points: OrderedDict[tuple[int, float], tuple[int | None, dict[str, Exploration]]] = OrderedDict()
        self._elites: OrderedDict[tuple[int, float], _EliteCache] = OrderedDict()
        self._memo: OrderedDict[tuple[Any, ...], tuple[str, Any]] = OrderedDict()
        self._memo_size = memo_size
        self._series_size = series_size

    # -- campaigns -------------------------------------------------------------
    def names(self) -> list[str]:
        return queries.campaign_names(self.store)

    def infos(self) -> list[CampaignInfo]:
        return [CampaignInfo.of(row) for row in queries.campaign_rows(self.store)]

    def info(self, name: str) -> CampaignInfo:
        """The campaign called ``name``; :class:`~archive.errors.CampaignNotFound` if there is none."""
        return CampaignInfo.of(queries.campaign_row(self.store, name))

    def layout(self, info: CampaignInfo) -> CellLayout:
        """The campaign's cell layout (loaded once; a layout never changes)."""
        key = (info.id, info.created_at)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = queries.layout(self.store, info.id)
        return layout

    def version(self, info: CampaignInfo) -> str:
        """A token that changes whenever anything a page shows of the campaign changes: its
        status and budget, the rows written (last ``seq``), the results recorded (last
        ``finished_seq``) and the rows pending and running. Index lookups only, however long
        the campaign."""
        w = queries.watermarks(self.store, info.id)
        return (f"{info.id}-{info.created_at:.6f}-{info.status}-{info.state}-{info.budget}-{w.last_seq}"
                f"-{w.last_result}-{w.pending}-{w.running}")

    def _lock_for(self, info: CampaignInfo) -> threading.Lock:
        with self._lock:
            return self._campaign_locks.setdefault(info.id, threading.Lock())

    def memo(self, info: CampaignInfo, key: tuple[Any, ...], version: str, build: Callable[[], Any]) -> Any:
        """``build()``, or what it returned last for ``key`` while ``version`` is unchanged."""
        return self.memo_storage((info.id, info.created_at, *key), version, build)

    def memo_storage(self, full: tuple[Any, ...], version: str, build: Callable[[], Any]) -> Any:
        """:meth:`memo` for a view of the whole storage (``full``: a key no campaign's starts
        with, e.g. ``("campaign-list",)``)."""
        with self._lock:
            hit = self._memo.get(full)
            if hit is not None and hit[0] == version:
                self._memo.move_to_end(full)
                return hit[1]
        value = build()
        with self._lock:
            self._memo[full] = (version, value)
            self._memo.move_to_end(full)
            while len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        return value

    def _stats(self, info: CampaignInfo, cells: int) -> dict[str, Any]:
        s = queries.stats(self.store, info.id, cells, info.qd_offset)
        return {
            "counts": s.counts, "created": s.created, "finished": s.finished, "elites": s.elites,
            "cells": s.cells, "coverage": s.coverage, "qd_score": _finite(s.qd_score),
            "best_objective": _finite(s.best_objective), "best_evaluation_id": s.best_evaluation_id,
        }

    def _axes(self, layout: CellLayout) -> list[dict[str, Any]]:
        return [dataclasses.asdict(a) for a in layout.axes]

    def campaigns_version(self, infos: Sequence[CampaignInfo]) -> str:
        """A token that changes whenever :meth:`campaign_list` would: any campaign's row (status,
        state, budget, lease, last update; one is added or deleted) or, for a campaign whose row
        says ``running``, its :meth:`version`. Results are recorded only under a running row, so
        the others' statistics cannot move while their rows stand still: one query and an index
        lookup per running campaign, not the statistics of every campaign."""
        rows = [(i.id, i.created_at, i.status, i.state, i.budget, i.updated_at, i.lease_expires) for i in infos]
        live = [self.version(i) for i in infos if i.status == "running"]
        return hashlib.sha256(repr((rows, live)).encode()).hexdigest()

    def campaign_list(self, infos: Sequence[CampaignInfo] | None = None) -> list[dict[str, Any]]:
        """Every campaign (of ``infos``, default all) with its status and progress."""
        out = []
        for info in self.infos() if infos is None else infos:
            layout = self.layout(info)
            stats = self._stats(info, layout.cells)
            out.append({
                "name": info.name, "status": info.status, "state": info.state, "algorithm": info.algorithm,
                "budget": info.budget, "objective": {"name": info.objective_name,
                                                     "direction": "maximize" if info.maximize else "minimize"},
                "measures": layout.measure_names, "archive": layout.kind,
                "progress": min(1.0, stats["finished"] / info.budget) if info.budget else 0.0,
                "stats": stats, "created_at": info.created_at, "updated_at": info.updated_at,
            })
        return out

    def summary(self, info: CampaignInfo) -> dict[str, Any]:
        """One campaign's status, spec (its secrets masked by :func:`archive.redact.redact_spec`),
        map geometry and statistics (the statistics are computed once per version)."""
        layout = self.layout(info)
        version = self.version(info)
        stats = self.memo(info, ("stats",), version, lambda: self._stats(info, layout.cells))
        return {
            "name": info.name, "status": info.status, "state": info.state, "algorithm": info.algorithm,
            "budget": info.budget,
            "objective": {"name": info.objective_name, "direction": "maximize" if info.maximize else "minimize"},
            "archive": {"kind": layout.kind, "cells": layout.cells, "axes": self._axes(layout)},
            "units": _units(info.settings),
            "progress": min(1.0, stats["finished"] / info.budget) if info.budget else 0.0,
            "stats": stats, "lease_holder": info.lease_holder, "lease_expires": info.lease_expires,
            "created_at": info.created_at, "updated_at": info.updated_at,
            "version": version, "spec": json_safe(redact_spec(info.spec)),
        }

    # -- the map ---------------------------------------------------------------
    def layout_payload(self, info: CampaignInfo) -> dict[str, Any]:
        """The map's geometry: axes, and for CVT the centroids and, in 2-D, a raster of
        which cell each pixel belongs to (the Voronoi diagram, drawn as a heatmap)."""
        layout = self.layout(info)
        out: dict[str, Any] = {"kind": layout.kind, "cells": layout.cells, "axes": self._axes(layout),
                               "centroids": None, "voronoi": None}
        if layout.kind == "cvt" and layout.centroids is not None:
            out["centroids"] = layout.centroids.tolist()
            if len(layout.axes) == 2:
                out["voronoi"] = self._voronoi(layout)
        return out

    def _voronoi(self, layout: CellLayout, resolution: int = VORONOI_RESOLUTION) -> dict[str, Any]:
        (x0, x1), (y0, y1) = layout.ranges
        xs = x0 + (np.arange(resolution) + 0.5) * (x1 - x0) / resolution
        ys = y0 + (np.arange(resolution) + 0.5) * (y1 - y0) / resolution
        gx, gy = np.meshgrid(xs, ys)  # row = y, column = x
        cells = layout.index_of(np.column_stack([gx.ravel(), gy.ravel()])).reshape(resolution, resolution)
        return {"x": xs.tolist(), "y": ys.tolist(), "cell": cells.tolist()}

    def _elite_cache(self, info: CampaignInfo) -> _EliteCache:
        """The campaign's elites, brought up to date with the results recorded since."""
        key = (info.id, info.created_at)
        with self._lock:
            cache = self._elites.get(key)
            if cache is None:
                cache = self._elites[key] = _EliteCache()
            self._elites.move_to_end(key)
            while len(self._elites) > self._series_size:
                self._elites.popitem(last=False)
        with self._lock_for(info):
            through, rows = queries.elites_changed(self.store, info.id, cache.through)
            if through != cache.through:
                cache.update(rows, through)
        return cache

    def elites(self, info: CampaignInfo, since: int = 0) -> dict[str, Any]:
        """The elites as columns (cell, evaluation, objective, measures, params, proposer),
        best first; with ``since``, only those made by results recorded after that
        ``finished_seq`` (a client that has the rest merges them by cell)."""
        layout = self.layout(info)
        cache = self._elite_cache(info)
        with self._lock_for(info):
            rows = [r for r in cache.rows.values() if r.finished_seq > since] if since else list(cache.rows.values())
            count, through = len(cache.rows), cache.through
        rows.sort(key=lambda r: (-r.fitness, r.cell))
        names = layout.measure_names
        param_names = list(info.param_names)
        seen = set(param_names)
        for r in rows:
            for name in r.params or {}:
                if name not in seen:
                    seen.add(name)
                    param_names.append(name)
        return {
            "count": count, "cells": layout.cells, "kind": layout.kind, "measure_names": names,
            "param_names": param_names, "since": since, "through": through, "complete": since == 0,
            "cell": [r.cell for r in rows],
            "evaluation_id": [r.evaluation_id for r in rows],
            "objective": _floats(np.array([r.objective for r in rows], dtype=float)),
            "measures": {m: _floats(np.array([(r.measures or {}).get(m, np.nan) for r in rows], dtype=float))
                         for m in names},
            "params": {p: _json_column([(r.params or {}).get(p) for r in rows]) for p in param_names},
            "proposer": [r.proposer for r in rows],
            "seq": [r.seq for r in rows],
        }

    # -- the series ------------------------------------------------------------
    def series(self, info: CampaignInfo, measures: bool = False) -> _Series:
        """The campaign's finished evaluations and trajectory, brought up to date; with the
        measures of every row if ``measures`` (their JSON is most of the cost of a first
        read, and only the scatter shows them: the history and proposers go without).

        The series is live: another request may extend it at any time. A view reads it
        through :meth:`snapshot` instead, once."""
        with self._lock_for(info):
            return self._up_to_date(info, measures)

    def snapshot(self, info: CampaignInfo, measures: bool = False, fronts: bool = False) -> SeriesView:
        """The series brought up to date and read in one go under the campaign's lock
        (:meth:`_Series.view`): every length and index in it agrees, whatever other requests
        do to the series meanwhile."""
        with self._lock_for(info):
            return self._up_to_date(info, measures or fronts).view(fronts)

    def _up_to_date(self, info: CampaignInfo, measures: bool) -> _Series:
        """:meth:`series`' work; the caller holds the campaign's lock (so the series taken
        from the cache is the one extended, never one another thread has just replaced)."""
        layout = self.layout(info)
        key = (info.id, info.created_at)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = _Series(layout.cells, info.sign, info.qd_offset, layout.measure_names)
                self._series[key] = series
            self._series.move_to_end(key)
            while len(self._series) > self._series_size:
                self._series.popitem(last=False)
        fresh = False
        if measures and not series.measured:  # read so far without: their measures, all at once
            seq, values = queries.result_measures(self.store, info.id, 0, series.last_seq, series.measures)
            fresh = not series.fill_measures(seq, values)
        if not fresh:
            # a series with its measures keeps them (a few rows at a time); an empty one
            # reads them only if asked
            read = series.measured and (measures or len(series) > 0)
            new = self._columns_after(info, series, read)
            # a gap in finished_seq is never expected: start again rather than drift
            fresh = len(new.seq) > 0 and int(new.seq[0]) != series.last_seq + 1
        if fresh:
            series = _Series(layout.cells, info.sign, info.qd_offset, layout.measure_names)
            read = measures
            new = self._columns_after(info, series, read)
            with self._lock:
                self._series[key] = series
        series.extend_columns(new, measured=read)
        return series

    def _columns_after(self, info: CampaignInfo, series: _Series, measures: bool) -> queries.ResultColumns:
        if measures and len(series) == 0 and series.measures and self.store.engine.dialect.name == "postgresql":
            # a first read with the measures: their JSON, as long to read as the rest, is read
            # alongside on a second connection (PostgreSQL works on both at once; SQLite's
            # driver takes the GIL for every row, and two threads fetching take twice as long)
            through = queries.watermarks(self.store, info.id).last_result
            with ThreadPoolExecutor(1) as pool:
                later = pool.submit(queries.result_measures, self.store, info.id, 0, through, series.measures)
                new = queries.results_columns(self.store, info.id, 0, [], through=through)
                seq, values = later.result()
            if np.array_equal(seq, new.seq):  # else a result came in between them: read again, at once
                return new._replace(measures=values)
        return queries.results_columns(self.store, info.id, series.last_seq, series.measures if measures else [])

    def history(self, info: CampaignInfo, points: int = 1000) -> dict[str, Any]:
        """QD-score, coverage, best objective and failures against evaluations finished."""
        s = self.snapshot(info)
        c = s.cols
        idx = sample_indices(len(s), points)
        cells = max(s.cells, 1)
        best = c["best"][idx] * s.sign
        return {
            "total": len(s), "cells": s.cells, "objective_direction": "maximize" if s.sign > 0 else "minimize",
            "evaluations": c["seq"][idx].tolist(),
            "qd_score": _floats(c["qd"][idx]),
            "coverage": _floats(c["coverage"][idx] / cells),
            "filled": c["coverage"][idx].tolist(),
            "best": _floats(best),
            "failed": c["failed"][idx].tolist(),
        }

    def scatter(self, info: CampaignInfo, limit: int = 3000) -> dict[str, Any]:
        """Objective against each measure: a sample of the done evaluations, and for each
        measure its Pareto fronts (measure better higher, and better lower) over all."""
        s = self.snapshot(info, measures=True, fronts=True)
        c, front_rows = s.cols, s.fronts
        done = np.flatnonzero(c["done"])
        cache = self._elite_cache(info)
        with self._lock_for(info):
            elite_ids = {r.evaluation_id for r in cache.rows.values()}
        fronts: dict[str, dict[str, Any]] = {}
        for j, name in enumerate(s.measures):
            fronts[name] = {}
            for label, higher in (("higher", True), ("lower", False)):
                front = front_rows.get((j, higher), np.zeros(0, np.int64))
                fronts[name][label] = {
                    "evaluation_id": c["id"][front].tolist(), "measure": _floats(c["measures"][front, j]),
                    "objective": _floats(c["objective"][front]),
                }
        pick = sample_indices(len(done), limit)
        rows = done[pick]
        return {
            "total": len(done), "shown": len(pick), "measure_names": s.measures,
            "objective_direction": "maximize" if s.sign > 0 else "minimize",
            "proposers": list(s.proposers),
            "points": {
                "evaluation_id": c["id"][rows].tolist(),
                "objective": _floats(c["objective"][rows]),
                "measures": {name: _floats(c["measures"][rows, j]) for j, name in enumerate(s.measures)},
                "proposer": c["proposer"][rows].tolist(),
                "elite": [int(i) in elite_ids for i in c["id"][rows].tolist()],
            },
            "fronts": fronts,
        }

    # -- proposers -------------------------------------------------------------
    def proposers(self, info: CampaignInfo, points: int = 500) -> dict[str, Any]:
        """Which proposer made what: evaluations by status, elites held, improvements,
        QD-score contributed over time, and each proposer's exploration entropy."""
        s = self.snapshot(info)
        c = s.cols
        unfinished = queries.unfinished_by_proposer(self.store, info.id)  # by the (campaign, status) index
        counts: dict[str, dict[str, int]] = {}
        for code, name in enumerate(s.proposers):
            mine = c["proposer"] == code
            counts[name] = {"done": int((mine & c["done"]).sum()), "failed": int((mine & ~c["done"]).sum())}
        for proposer, status, n in unfinished:
            counts.setdefault(proposer, {})[status] = int(n)
        cache = self._elite_cache(info)
        with self._lock_for(info):
            held = Counter(r.proposer for r in cache.rows.values())
        names = list(s.proposers) + sorted(set(counts) - set(s.proposers))
        idx = sample_indices(len(s), points)
        entropy = self.exploration(info)
        table, cumulative, contribution = [], {}, {}
        for code, name in enumerate(names):
            mine = c["proposer"] == code if code < len(s.proposers) else np.zeros(len(s), bool)
            done_fit = c["fitness"][mine & c["done"]]
            best = _finite(s.sign * done_fit.max()) if done_fit.size else None
            table.append({
                "name": name, "counts": {k: int(counts.get(name, {}).get(k, 0))
                                         for k in ("pending", "running", "done", "failed")},
                "evaluations": int(sum(counts.get(name, {}).values())), "elites": int(held.get(name, 0)),
                "improvements": int((c["improved"] & mine).sum()),
                "qd_contribution": _finite(float(c["delta"][mine].sum())) or 0.0, "best_objective": best,
                "exploration_entropy": entropy[name].mean if name in entropy else None,
                "exploration": entropy[name].to_json() if name in entropy else None,
            })
            cumulative[name] = np.cumsum(mine)[idx].tolist()
            contribution[name] = _floats(np.cumsum(np.where(mine, c["delta"], 0.0))[idx])
        return {
            "proposers": table,
            "over_time": {"evaluations": c["seq"][idx].tolist(), "cumulative": cumulative,
                          "qd_contribution": contribution},
            "exploration_bins": EXPLORATION_BINS,
            "exploration_run_length": RUN_LENGTH,
        }

    def exploration(self, info: CampaignInfo) -> dict[str, Exploration]:
        """Each proposer's exploration entropy (:func:`archive.exploration.campaign_exploration`,
        the figure ``atlas status NAME`` prints): per run of 20 of its evaluations in ``seq``
        order, over the active parameters only, its mean and spread over its latest 100 runs
        at most (a bounded read at any length; ``runs_total`` says how many it has). It is
        recomputed only when a row was added (the last ``seq``)."""
        if not info.settings.coordinate_options:
            return {}
        key = (info.id, info.created_at)
        last_seq = queries.watermarks(self.store, info.id).last_seq
        with self._lock:
            cached = self._points.get(key)
            if cached is not None:
                self._points.move_to_end(key)
        if cached is not None and cached[0] == last_seq:
            return cached[1]
        with self._lock_for(info):
            found = campaign_exploration(self.store, info.id, info.settings)
        with self._lock:
            self._points[key] = (last_seq, found)
            while len(self._points) > self._series_size:
                self._points.popitem(last=False)
        return found

    # -- model calls -----------------------------------------------------------
    def model_calls(self, info: CampaignInfo) -> dict[str, Any]:
        """What each model-backed proposer's calls came to, by proposer's name: the figures
        ``atlas status NAME`` prints (:func:`archive.calls.summary`, aggregated in SQL) and
        the candidates its replies gave that it used (``accepted``), read by
        :func:`archive.calls.read_summary`; ``model_calls`` is empty where no proposer called
        a model. ``not_asked`` is not here: it is read from the proposer's checkpoint, by the
        search package, which the dashboard does not import."""
        return {"model_calls": json_safe(calls.read_summary(self.store, info.id))}

    # -- evaluations -----------------------------------------------------------
    def failures(self, info: CampaignInfo, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        """Failed evaluations, latest first, and their errors grouped as ``atlas failures``
        groups them (:func:`archive.store.failure_group`: the first line, up to a ``(got …)``
        that says the value), each group with its latest error in full (``example``)."""
        page = queries.failures(self.store, info.id, limit, offset)
        groups: dict[str, dict[str, Any]] = {}
        for error, n, last_id, last_at in page.by_error:
            head = failure_group(error) or "(no error message)"
            g = groups.setdefault(head, {"error": head, "count": 0, "latest_evaluation_id": last_id,
                                         "latest_at": last_at, "example": error})
            g["count"] += int(n)
            if last_id is not None and (g["latest_evaluation_id"] is None or last_id > g["latest_evaluation_id"]):
                g["latest_evaluation_id"], g["latest_at"], g["example"] = last_id, last_at, error
        return {
            "total": page.total, "limit": limit, "offset": offset,
            "groups": sorted(groups.values(), key=lambda g: (-g["count"], g["error"])),
            "evaluations": [json_safe(r) for r in page.rows],
        }

    def evaluations(self, info: CampaignInfo, status: str | None = None, limit: int = 100, offset: int = 0,
                    order: str = "seq") -> dict[str, Any]:
        """A page of the evaluation log (``order``: ``seq``, ``-seq``, ``finished`` or ``-finished``)."""
        total, rows = queries.evaluation_page(self.store, info.id, status, order, limit, offset)
        return {"total": int(total), "limit": limit, "offset": offset, "status": status, "order": order,
                "evaluations": [json_safe(r) for r in rows]}

    def evaluation(self, info: CampaignInfo, evaluation_id: int) -> dict[str, Any]:
        """One evaluation in full, with its cell and that cell's current elite."""
        row = queries.evaluation(self.store, info.id, evaluation_id)
        if row is None:
            raise EvaluationNotFound(f"campaign {info.name!r} has no evaluation {evaluation_id}")
        row = json_safe(row)
        row.pop("campaign_id", None)
        layout = self.layout(info)
        cell_info: dict[str, Any] | None = None
        if row.get("cell") is not None:
            cell = int(row["cell"])
            elite = queries.cell_elite(self.store, info.id, cell)
            cell_info = {
                "cell": cell,
                "elite_evaluation_id": None if elite is None else elite[0],
                "elite_objective": None if elite is None else _finite(elite[1]),
                "is_elite": elite is not None and elite[0] == evaluation_id,
                "bounds": None, "centroid": None,
            }
            if layout.kind == "grid" and cell < layout.cells:
                cell_info["bounds"] = [[float(lo), float(hi)] for lo, hi in layout.cell_bounds(cell)]
            elif layout.centroids is not None and cell < len(layout.centroids):
                cell_info["centroid"] = layout.centroids[cell].tolist()
        return {
            "campaign": info.name, "objective_name": info.objective_name,
            "objective_direction": "maximize" if info.maximize else "minimize",
            "measure_names": layout.measure_names, "evaluation": row, "cell": cell_info,
        }
