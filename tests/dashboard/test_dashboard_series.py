"""The series read as columns (:func:`archive.queries.results_columns`) and built by parts:
the same values as the rows of :func:`archive.queries.results_after`, and the same arrays
whether built at once or extended in steps, with or without its measures read at first."""

from __future__ import annotations

import numpy as np
import pytest

from archive import queries
from dashboard.data import DashboardData, _Series, pareto_front
from tests.dashboard.synthetic import add_results, synthetic_campaign

PROPOSERS = ("map-elites", "o'brien {0} 50%s \\ \"q\"", "random", "bo")  # quotes, braces, %, a backslash: in SQL


def _extend_by_rows(series: _Series, rows: list) -> None:
    """``series`` extended by :func:`archive.queries.results_after`'s rows (``finished_seq, id,
    status, cell, objective, proposer, *measures``), turned into columns here: the reference
    the driver-read columns are checked against."""
    if not rows:
        return
    k = len(series.measures)
    cols = list(zip(*rows, strict=True))
    cell = np.array(cols[3], dtype=float)  # None -> nan
    objective = np.array(cols[4], dtype=float)
    done = (np.array(cols[2]) == "done") & np.isfinite(objective) & np.isfinite(cell)
    names, inverse = np.unique(np.array(cols[5], dtype=object).astype(str), return_inverse=True)
    measures = np.array(cols[6:6 + k], dtype=float).T.reshape(len(rows), k) if k else np.zeros((len(rows), 0))
    series.extend_columns(queries.ResultColumns(
        seq=np.array(cols[0], dtype=np.int64), id=np.array(cols[1], dtype=np.int64), done=done,
        cell=np.where(done, cell, -1).astype(np.int64), objective=np.where(done, objective, np.nan),
        proposer=inverse.reshape(-1), names=[str(n) for n in names], measures=measures, through=int(cols[0][-1])))


def _equal(a: _Series, b: _Series) -> None:
    assert a.last_seq == b.last_seq and len(a) == len(b) and a.measured == b.measured
    # a proposer's code is its place in the order first seen (a batch's names sorted): the names are the same
    assert sorted(a.proposers) == sorted(b.proposers)
    assert [a.proposers[i] for i in a.cols["proposer"]] == [b.proposers[i] for i in b.cols["proposer"]]
    assert set(a.cols) == set(b.cols)
    for key in set(a.cols) - {"proposer"}:
        assert a.cols[key].dtype == b.cols[key].dtype, key
        np.testing.assert_array_equal(a.cols[key], b.cols[key], err_msg=key)  # exact, NaN equal to NaN
    np.testing.assert_array_equal(a.best, b.best)


def _fronts_equal(a: _Series, b: _Series) -> None:
    fa, fb = a.fronts(), b.fronts()
    assert set(fa) == set(fb) and len(fa) == 2 * len(a.measures)
    for key in fa:
        np.testing.assert_array_equal(fa[key], fb[key], err_msg=str(key))


def _campaign(storage_url: str, name: str, n: int = 600):
    return synthetic_campaign(storage_url, name, n, bins=(5, 5), status="running", fail_rate=0.15, batch=97,
                              proposers=PROPOSERS)


def test_results_columns_are_results_after(storage_url: str) -> None:
    store, record = _campaign(storage_url, "cols")
    measures = ["m0", "m1"]
    for after in (0, 1, 250, 599, 600):
        rows = queries.results_after(store, record.id, after, measures)
        got = queries.results_columns(store, record.id, after, measures)
        assert len(got.seq) == len(rows) == 600 - after and got.through == 600
        if not rows:
            assert got.names == [] and got.measures.shape == (0, 2)
            continue
        cols = list(zip(*rows, strict=True))
        objective, cell = np.array(cols[4], dtype=float), np.array(cols[3], dtype=float)
        done = (np.array(cols[2]) == "done") & np.isfinite(objective) & np.isfinite(cell)
        assert after > 500 or 0 < done.sum() < len(rows)  # failures among them
        assert got.seq.tolist() == list(cols[0]) and got.id.tolist() == list(cols[1])
        np.testing.assert_array_equal(got.done, done)
        np.testing.assert_array_equal(got.cell, np.where(done, cell, -1).astype(np.int64))
        np.testing.assert_array_equal(got.objective, np.where(done, objective, np.nan))
        np.testing.assert_array_equal(got.measures, np.array(cols[6:], dtype=float).T)
        assert got.names == sorted(set(cols[5])) and (after > 500 or len(got.names) == len(PROPOSERS))
        assert [got.names[i] for i in got.proposer] == list(cols[5])
        seq, values = queries.result_measures(store, record.id, after, 600, measures)
        np.testing.assert_array_equal(seq, got.seq)
        np.testing.assert_array_equal(values, got.measures)
        bare = queries.results_columns(store, record.id, after, [])
        assert bare.measures.shape == (len(rows), 0)
        np.testing.assert_array_equal(bare.objective, got.objective)
    store.close()


def test_results_columns_unpacked_and_in_chunks(storage_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's ids too large to pack, PostgreSQL's reads of many chunks: the same columns."""
    store, record = _campaign(storage_url, "chunks", 300)
    expected = queries.results_columns(store, record.id, 20, ["m0", "m1"])
    monkeypatch.setattr(queries, "_PACK_BELOW", 0)
    monkeypatch.setattr(queries, "PACKED_CHUNK", 7)
    got = queries.results_columns(store, record.id, 20, ["m0", "m1"])
    assert len(got.seq) == 280 and got.names == expected.names and got.through == expected.through
    for field in ("seq", "id", "done", "cell", "objective", "proposer", "measures"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field), err_msg=field)
    seq, values = queries.result_measures(store, record.id, 20, 300, ["m0", "m1"])
    np.testing.assert_array_equal(seq, expected.seq)
    np.testing.assert_array_equal(values, expected.measures)
    store.close()


@pytest.mark.parametrize("cuts", [(1,), (137, 138, 400), (300,), (599,)])
def test_a_series_built_by_parts_is_the_one_built_at_once(storage_url: str, cuts: tuple[int, ...]) -> None:
    store, record = _campaign(storage_url, "parts")
    measures = ["m0", "m1"]

    def build(bounds: tuple[int, ...], columns: bool) -> _Series:
        s = _Series(25, 1.0, 0.5, measures)
        rows = queries.results_after(store, record.id, 0, measures)
        for lo, hi in zip((0, *bounds), (*bounds, 600), strict=True):
            if columns:
                part = queries.results_columns(store, record.id, lo, measures)
                keep = part.seq <= hi
                s.extend_columns(part._replace(**{f: getattr(part, f)[keep] for f in (
                    "seq", "id", "done", "cell", "objective", "proposer", "measures")}))
            else:
                _extend_by_rows(s, rows[lo:hi])
            s.fronts()  # kept up to date at each step
        return s

    cold = build((), columns=False)
    assert cold.cols["qd"][-1] > 0 and cold.cols["failed"][-1] > 0 and len(cold.proposers) == len(PROPOSERS)
    for other in (build(cuts, columns=False), build((), columns=True), build(cuts, columns=True)):
        _equal(cold, other)
        _fronts_equal(cold, other)
    store.close()


def test_measures_are_read_only_for_the_scatter(storage_url: str) -> None:
    store, record = _campaign(storage_url, "lazy")
    data = DashboardData(store)
    info = data.info("lazy")
    history = data.history(info, points=10_000)
    series = data.series(info)
    assert not series.measured and np.isnan(series.cols["measures"]).all()  # history alone: no JSON read
    with pytest.raises(RuntimeError):
        series.fronts()
    add_results(store, record, 150, seed=5, fail_rate=0.1, scale=0.5, proposers=PROPOSERS)
    assert data.history(info)["total"] == 750 and not data.series(info).measured
    scatter = data.scatter(info)  # reads the measures of the 750 now
    cols = data.series(info).cols
    assert data.series(info).measured and not np.isnan(cols["measures"][cols["done"]]).any()
    add_results(store, record, 90, seed=6, fail_rate=0.1, scale=0.4, proposers=PROPOSERS)
    late = DashboardData(store)
    for panel in ("scatter", "history", "proposers"):  # kept up to date = read from scratch, scatter first or not
        assert getattr(data, panel)(info) == getattr(late, panel)(info) == getattr(DashboardData(store), panel)(info)
    _equal(data.series(info), late.series(info))
    _fronts_equal(data.series(info), late.series(info))
    assert scatter["total"] < data.scatter(info)["total"] and history["total"] == 600
    store.close()


@pytest.mark.parametrize("higher", [True, False])
def test_the_prefiltered_pareto_front_is_the_same(higher: bool) -> None:
    rng = np.random.default_rng(11)
    for trial in range(40):
        n = int(rng.integers(1, 3000))
        m = np.round(rng.random(n), int(rng.integers(1, 4)))  # ties and duplicates
        f = np.round(rng.normal(size=n), int(rng.integers(0, 3)))
        if trial % 5 == 0:
            m[:] = 0.25  # one measure value: nothing to bin
        if trial % 7 == 0:
            m[rng.random(n) < 0.1] = np.nan  # the front ignores rows with a NaN
        plain = pareto_front(m, f, higher, prefilter_above=10 ** 9)
        np.testing.assert_array_equal(pareto_front(m, f, higher, prefilter_above=0), plain)
        points = {(a, b) for a, b in zip(m.tolist(), f.tolist(), strict=True) if a == a}
        best = {p for p in points if not any((q[0] >= p[0] if higher else q[0] <= p[0]) and q[1] >= p[1] and q != p
                                             for q in points)}
        assert {(m[i], f[i]) for i in plain} == best and len(plain) == len(best)


def test_packed_rows_refuse_another_width() -> None:
    row = np.array([7], ">i8").tobytes() + np.array([1.5], ">f8").tobytes()
    rows = queries._packed_rows(row * 3, 2)
    assert rows[:, 0].tolist() == [7, 7, 7] and rows[:, 1].astype(np.int64).view(np.float64).tolist() == [1.5] * 3
    assert queries._packed_rows(None, 2).shape == (0, 2)  # no rows: the aggregate is NULL
    with pytest.raises(queries.StorageError):
        queries._packed_rows(row * 3, 4)
    with pytest.raises(queries.StorageError):
        queries._packed_rows(row + b"\x00", 2)


def test_a_first_scatter_reads_measures_alongside_and_falls_back(storage_url: str,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL a cold scatter reads the measures on a second connection; if those rows
    are not the others (a result came in between), it reads everything again at once."""
    store, _ = _campaign(storage_url, "alongside", 400)
    info = DashboardData(store).info("alongside")
    expected = DashboardData(store).scatter(info)
    calls = []
    real = queries.result_measures

    def short(*args, **kwargs):  # the measures of one row fewer than the other read
        seq, values = real(*args, **kwargs)
        calls.append(len(seq))
        return seq[:-1], values[:-1]

    monkeypatch.setattr(queries, "result_measures", short)
    data = DashboardData(store)
    assert data.scatter(info) == expected
    assert calls == ([400] if storage_url.startswith("postgresql") else [])
    assert data.series(info).measured and len(data.series(info)) == 400
    store.close()
