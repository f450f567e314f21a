"""The archive's read queries for front ends that watch campaigns (the dashboard): each a
function of a :class:`~archive.store.Store` and plain arguments, returning plain rows,
records or NumPy arrays. No caller builds SQL; every statement is here.

They are made for polling a live campaign: each is one indexed lookup or range scan
(``(campaign_id, status)``, ``(campaign_id, finished_seq)``, the primary keys), and the
long reads come in increments — the results after a ``finished_seq``
(:func:`results_after`; as NumPy columns read by the driver itself, :func:`results_columns`
and :func:`result_measures`), the points after an id (:func:`points_after`), the elites made
since a result (:func:`elites_changed`) — so a reader keeps what it has and asks only for
what is new.

A query does not retry: a storage that does not answer is a
:class:`~archive.errors.StorageError` at once (a page polls again by itself), and a value
the storage's columns cannot hold a :class:`QueryValueError`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Connection, Text, case, cast, func, select
from sqlalchemy.exc import DataError, DBAPIError

from archive import starts
from archive.engine import first_line, shown_url
from archive.errors import StorageError
from archive.jsontext import loads_many
from archive.layout import CellLayout
from archive.leases import lease_columns_here
from archive.models import Campaign, Elite, Evaluation
from archive.records import CampaignSettings, Stats
from archive.store import Store
from entropy_atlas.errors import AtlasError

CAMPAIGNS = Campaign.__table__
EVALUATIONS = Evaluation.__table__
ELITES = Elite.__table__
#: The orders of :func:`evaluation_page`: by ``seq`` or by ``finished_seq``, ``-`` for descending.
ORDERS = ("seq", "-seq", "finished", "-finished")


class QueryValueError(AtlasError, ValueError):
    """A value in a query that the storage's columns cannot hold (PostgreSQL's 32-bit ids)."""


@contextmanager
def _reading(store: Store) -> Iterator[Connection]:
    """A read connection whose database errors are the archive's: :class:`QueryValueError`
    for a value out of a column's range, :class:`StorageError` for anything else."""
    try:
        with store.read() as conn:
            yield conn
    except DataError as exc:
        raise QueryValueError(f"a value in the query is not one the storage can hold: {first_line(exc)}") from None
    except DBAPIError as exc:
        raise StorageError(f"the storage {shown_url(store.url)} did not answer: {first_line(exc)}") from None


# -- campaigns -------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CampaignRow:
    """A campaign's row without its cell layout (that never changes: :func:`layout` reads
    it once), so that a reader polling the campaign reads little."""

    id: int
    name: str
    status: str
    spec: dict[str, Any]
    settings: CampaignSettings
    created_at: float
    updated_at: float
    lease_holder: str | None
    lease_expires: float | None


_CAMPAIGN_COLUMNS = (CAMPAIGNS.c.id, CAMPAIGNS.c.name, CAMPAIGNS.c.status, CAMPAIGNS.c.spec, CAMPAIGNS.c.settings,
                     CAMPAIGNS.c.created_at, CAMPAIGNS.c.updated_at, CAMPAIGNS.c.lease_holder,
                     CAMPAIGNS.c.lease_expires)


def _campaign_row(row: Any) -> CampaignRow:
    return CampaignRow(**{**row, "settings": CampaignSettings.from_json(row["settings"])})


def campaign_names(store: Store) -> list[str]:
    """Every campaign's name, oldest first."""
    with _reading(store) as conn:
        return list(conn.execute(select(CAMPAIGNS.c.name).order_by(CAMPAIGNS.c.id)).scalars())


def campaign_rows(store: Store) -> list[CampaignRow]:
    """Every campaign, oldest first."""
    with _reading(store) as conn:
        columns = lease_columns_here(_CAMPAIGN_COLUMNS, store.dialect)
        rows = conn.execute(select(*columns).order_by(CAMPAIGNS.c.id)).mappings().all()
    return [_campaign_row(r) for r in rows]


def campaign_row(store: Store, name: str) -> CampaignRow:
    """The campaign called ``name``; :class:`~archive.errors.CampaignNotFound` (naming the
    campaigns there are) when there is none."""
    with _reading(store) as conn:
        columns = lease_columns_here(_CAMPAIGN_COLUMNS, store.dialect)
        row = conn.execute(select(*columns).where(CAMPAIGNS.c.name == name)).mappings().first()
    if row is None:  # the store's own error (or the campaign, if it was created just now)
        record = store.require_campaign(name)
        return CampaignRow(**{f.name: getattr(record, f.name) for f in dataclasses.fields(CampaignRow)})
    return _campaign_row(row)


def layout(store: Store, campaign_id: int) -> CellLayout:
    """The campaign's cell layout (grid axes, or CVT centroids)."""
    with _reading(store) as conn:
        data = conn.execute(select(CAMPAIGNS.c.layout).where(CAMPAIGNS.c.id == campaign_id)).scalar_one()
    return CellLayout.from_json(data)


class Watermarks(NamedTuple):
    """How far a campaign has got: its last row written (``seq``), its last result recorded
    (``finished_seq``, 0 before the first), and the rows pending and running."""

    last_seq: int | None
    last_result: int
    pending: int
    running: int


def watermarks(store: Store, campaign_id: int) -> Watermarks:
    """The campaign's :class:`Watermarks`: index lookups only, however long the campaign."""
    e = EVALUATIONS.c
    mine = e.campaign_id == campaign_id
    with _reading(store) as conn:
        last_seq = conn.execute(select(func.max(e.seq)).where(mine)).scalar()
        last_result = conn.execute(select(func.max(e.finished_seq)).where(mine)).scalar()
        unfinished = dict(conn.execute(
            select(e.status, func.count()).where(mine, e.status.in_(("pending", "running"))).group_by(e.status)
        ).all())
        starts.shift_counts(unfinished, starts.open_logged(conn, campaign_id))
    return Watermarks(last_seq, int(last_result or 0), int(unfinished.get("pending", 0)),
                      int(unfinished.get("running", 0)))


def stats(store: Store, campaign_id: int, cells: int, qd_offset: float = 0.0) -> Stats:
    """Counts by status, coverage, QD-score and best (:meth:`Store.stats`, SQL aggregates)."""
    return store.stats(campaign_id, cells, qd_offset)


def unfinished_by_proposer(store: Store, campaign_id: int) -> list[tuple[str, str, int]]:
    """``(proposer, status, count)`` of the rows ``pending`` or ``running``."""
    e = EVALUATIONS.c
    with _reading(store) as conn:
        rows = conn.execute(
            select(e.proposer, e.status, func.count())
            .where(e.campaign_id == campaign_id, e.status.in_(("pending", "running"))).group_by(e.proposer, e.status)
        ).all()
        logged = starts.open_logged(conn, campaign_id)
    by_proposer = starts.counts_by_proposer(rows, logged)
    return [(p, s, n) for p, counts in by_proposer.items() for s, n in counts.items() if n]


# -- results, in the order recorded ------------------------------------------------
def results_after(store: Store, campaign_id: int, after: int, measures: Sequence[str]) -> list[Sequence[Any]]:
    """The results recorded after ``finished_seq`` ``after``, in the order recorded, as rows
    ``(finished_seq, id, status, cell, objective, proposer, *measures)``; the measures of
    ``done`` rows only (they alone are validated finite numbers), ``None`` elsewhere."""
    e = EVALUATIONS.c
    done = e.status == "done"
    measure_cols = [case((done, e.measures[m].as_float()), else_=None) for m in measures]
    query = (select(e.finished_seq, e.id, e.status, e.cell, e.objective, e.proposer, *measure_cols)
             .where(e.campaign_id == campaign_id, e.finished_seq > after).order_by(e.finished_seq))
    with _reading(store) as conn:
        return list(conn.execute(query).all())  # tuple-like rows as they come: copying 10⁵ costs ~0.1 s


class ResultColumns(NamedTuple):
    """:func:`results_columns`: what :func:`results_after` reads, as NumPy columns."""

    seq: np.ndarray  # finished_seq, int64
    id: np.ndarray  # int64
    done: np.ndarray  # bool: status ``done`` with a cell and a finite objective
    cell: np.ndarray  # int64, -1 where not done
    objective: np.ndarray  # float64, NaN where not done
    proposer: np.ndarray  # int64 codes into ``names``
    names: list[str]  # the proposers' names present, sorted
    measures: np.ndarray  # float64, rows × measures: NaN where not done or missing
    through: int  # the last result recorded when the read began: the rows end there


# a campaign's proposers by the (campaign, proposer, …) index: one lookup per name, not a scan
_PROPOSERS = (f"WITH RECURSIVE p(name) AS (SELECT min(proposer) FROM {EVALUATIONS.name} WHERE campaign_id = {{b}} "
              f"UNION ALL SELECT (SELECT min(proposer) FROM {EVALUATIONS.name} WHERE campaign_id = {{b}} "
              "AND proposer > p.name) FROM p WHERE p.name IS NOT NULL) SELECT name FROM p WHERE name IS NOT NULL")
_THROUGH = f"SELECT max(finished_seq) FROM {EVALUATIONS.name} WHERE campaign_id = {{b}}"
_FLAG = "status = 'done' AND cell IS NOT NULL AND objective IS NOT NULL"


def _measure_columns(measures: Sequence[str], literal: Callable[[str], str], postgres: bool) -> list[str]:
    """:func:`results_after`'s measure expressions, as SQLAlchemy renders them (NULL as NaN
    on PostgreSQL, whose rows are read packed as fixed-width binary)."""
    if postgres:
        return [f"coalesce(CASE WHEN status = 'done' THEN CAST(measures ->> {literal(m)} AS FLOAT) END, 'NaN')"
                for m in measures]
    paths = [literal(f'$."{m}"') for m in measures]  # SQLAlchemy's JSON index on SQLite
    return [f"CASE WHEN status = 'done' THEN CAST(JSON_EXTRACT(measures, {path}) AS FLOAT) END" for path in paths]


def _result_columns(names: Sequence[str], literal: Callable[[str], str], postgres: bool) -> list[str]:
    """``finished_seq, id``, whether done, ``cell, objective`` and the proposer as its index
    in ``names`` (-1 for another)."""
    codes = " ".join(f"WHEN {literal(n)} THEN {i}" for i, n in enumerate(names))
    proposer = f"CASE proposer {codes} ELSE -1 END" if names else "-1"
    if postgres:
        return ["finished_seq::int8", "id::int8", f"({_FLAG})::int4::int8", "coalesce(cell, -1)::int8",
                "coalesce(objective, 'NaN')::float8", f"({proposer})::int8"]
    return ["finished_seq", "id", _FLAG, "cell", "objective", proposer]


def _sqlite_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


#: at most this many results (a ``finished_seq`` range) in one of PostgreSQL's packed reads
PACKED_CHUNK = 1_000_000


def _packed_rows(data: bytes | None, columns: int) -> np.ndarray:
    """The rows of :func:`_read_columns`' PostgreSQL read: ``columns`` big-endian 8-byte
    values a row, end to end, as an ``n × columns`` array of big-endian int64."""
    data = data or b""
    if len(data) % (8 * columns):
        raise StorageError("the storage sent rows of another width than asked")
    return np.frombuffer(data, ">i8").reshape(-1, columns)


def _read_columns(url: str, conn: Connection, campaign_id: int, after: int, through: int | None,
                  measures: Sequence[str],
                  results: bool) -> tuple[list[np.ndarray], list[str], int]:
    """The columns of the results in ``(after, through]`` (``through`` read first when
    ``None``), in the order recorded: those of :func:`_result_columns` when ``results``,
    then one per measure; the proposers' names the codes index; ``through``."""
    postgres = conn.dialect.name == "postgresql"
    raw = conn.connection.driver_connection
    try:
        cur = raw.cursor()
        b = "%s" if postgres else "?"
        if through is None:
            cur.execute(_THROUGH.format(b=b), (campaign_id,))
            through = int(cur.fetchone()[0] or 0)
        names: list[str] = []
        if results:  # read after ``through``: every row up to it has its proposer among them
            cur.execute(_PROPOSERS.format(b=b), (campaign_id, campaign_id))
            names = sorted(str(r[0]) for r in cur.fetchall())
        if postgres:
            from psycopg import sql

            def literal(value: str) -> str:
                return sql.Literal(value).as_string(raw).replace("%", "%%")  # in a statement with parameters

            cols = (_result_columns(names, literal, True) if results else ["finished_seq::int8"])
            floats = [4] if results else []  # the objective; then the measures
            floats += range(len(cols), len(cols) + len(measures))
            cols += _measure_columns(measures, literal, True)
            # each row packed as binary (8 bytes a value) and all rows into one bytea: one value
            # to fetch, not a Python object per field; no ORDER BY (the planner picks an index or
            # a sequential scan): the order is made here
            packed = " || ".join(f"float8send({c})" if i in floats else f"int8send({c})" for i, c in enumerate(cols))
            statement = (f"SELECT string_agg({packed}, ''::bytea) FROM {EVALUATIONS.name} "
                         "WHERE campaign_id = %s AND finished_seq > %s AND finished_seq <= %s")
            binary = raw.cursor(binary=True)
            parts = []
            for lo in range(int(after), int(through), PACKED_CHUNK):
                binary.execute(statement, (campaign_id, lo, min(lo + PACKED_CHUNK, int(through))))
                parts.append(_packed_rows(binary.fetchone()[0], len(cols)))
            binary.close()
            rows = np.concatenate(parts) if parts else np.zeros((0, len(cols)), ">i8")
            if len(rows) > 1 and not (rows[1:, 0] > rows[:-1, 0]).all():
                rows = rows[np.argsort(rows[:, 0], kind="stable")]
            ints = [rows[:, i].astype(np.int64) for i in range(len(cols))]  # the 8 bytes as an integer...
            out = [x.view(np.float64) if i in floats else x for i, x in enumerate(ints)]  # ...or a float's bits
        else:
            out = _sqlite_columns(cur, campaign_id, after, through, measures, names if results else None)
        cur.close()
    except conn.dialect.loaded_dbapi.Error as exc:  # the driver's own errors, as _reading maps SQLAlchemy's
        raise StorageError(f"the storage {shown_url(url)} did not answer: {first_line(exc)}") from None
    return out, names, through


_PACK_BELOW = 2 ** 31  # SQLite: finished_seq and id packed in one integer while both are below this


def _sqlite_columns(cur: Any, campaign_id: int, after: int, through: int, measures: Sequence[str],
                    names: Sequence[str] | None) -> list[np.ndarray]:
    """:func:`_read_columns` on SQLite: a Python object per value fetched is most of the
    cost, so the results' integers come packed (``finished_seq`` and ``id`` in one where
    both are below 2³¹; whether done and the proposer's code in another), NULLs made
    numbers (whether done says which were NULL), and each column is made by ``fromiter``."""
    k = len(measures)
    ints: list[str] = []
    if names is not None:
        max_id = cur.execute(f"SELECT max(id) FROM {EVALUATIONS.name}").fetchone()[0] or 0  # the rowid's end
        pack = through < _PACK_BELOW and max_id < _PACK_BELOW
        code = _result_columns(names, _sqlite_literal, False)[5]
        ints = [f"finished_seq * {2 ** 31} + id"] if pack else ["finished_seq", "id"]
        ints += [f"({_FLAG}) + 2 * ({code} + 1)", "ifnull(cell, -1)"]
        cols = [*ints, "ifnull(objective, 0.0)"]
    else:
        cols = ["finished_seq"]
    cols += _measure_columns(measures, _sqlite_literal, False)
    statement = (f"SELECT {', '.join(cols)} FROM {EVALUATIONS.name} WHERE campaign_id = ? "
                 "AND finished_seq > ? AND finished_seq <= ? ORDER BY finished_seq")
    fetched = cur.execute(statement, (campaign_id, after, through)).fetchall()
    n = len(fetched)

    def column(i: int, dtype: type) -> np.ndarray:
        return np.fromiter((r[i] for r in fetched), dtype, n)

    first = len(cols) - k
    values = (np.array([r[first:] for r in fetched], dtype=float).reshape(n, k) if k  # None -> NaN
              else np.zeros((n, 0)))
    if names is None:
        return [column(0, np.int64), *values.T]
    got = [column(i, np.int64) for i in range(len(ints))]
    if len(got) == 3:  # packed
        got = [got[0] >> 31, got[0] & (2 ** 31 - 1), *got[1:]]
    seq, ids, small, cell = got
    return [seq, ids, small & 1, cell, column(len(ints), np.float64), (small >> 1) - 1, *values.T]


def results_columns(store: Store, campaign_id: int, after: int, measures: Sequence[str],
                    through: int | None = None) -> ResultColumns:
    """:func:`results_after` as NumPy columns, read by the driver itself (no SQLAlchemy rows):
    on PostgreSQL packed as binary into one value (``string_agg`` of ``int8send``/``float8send``,
    a million rows at most) straight into arrays, on SQLite by
    one fixed statement. ``measures`` may be empty (their JSON is most of the read's cost:
    :func:`result_measures` reads them apart). The rows end at ``through``: the last result
    recorded when the read began, unless given."""
    k = len(measures)
    with _reading(store) as conn:
        cols, names, through = _read_columns(store.url, conn, campaign_id, after, through, measures, True)
    seq, ids, flag, cell, objective, code = cols[:6]
    done = (flag == 1) & np.isfinite(objective) & np.isfinite(cell)
    code = code.astype(np.int64)
    if (code < 0).any():
        raise StorageError("a result's proposer is not among the campaign's proposers read before it")
    present = np.zeros(len(names), bool)
    present[code] = True
    return ResultColumns(
        seq=seq.astype(np.int64), id=ids.astype(np.int64), done=done,
        cell=np.where(done, cell, -1).astype(np.int64), objective=np.where(done, objective, np.nan),
        proposer=(np.cumsum(present) - 1)[code], names=[n for n, p in zip(names, present, strict=True) if p],
        measures=np.column_stack(cols[6:]).astype(float) if k else np.zeros((len(seq), 0)), through=through,
    )


def result_measures(store: Store, campaign_id: int, after: int, through: int,
                    measures: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(finished_seq, measures)`` of the results in ``(after, through]``, in the order
    recorded: :func:`results_after`'s measure columns (rows × measures) alone."""
    with _reading(store) as conn:
        cols, _, _ = _read_columns(store.url, conn, campaign_id, after, through, measures, False)
    seq = cols[0].astype(np.int64)
    return seq, (np.column_stack(cols[1:]).astype(float) if measures else np.zeros((len(seq), 0)))


class EliteRow(NamedTuple):
    """An elite with what a map shows of it, and the result that made it (``finished_seq``)."""

    cell: int
    evaluation_id: int
    objective: float
    fitness: float
    measures: dict[str, Any] | None
    params: dict[str, Any] | None
    proposer: str
    seq: int
    finished_seq: int


def elites_changed(store: Store, campaign_id: int, since: int = 0) -> tuple[int, list[EliteRow]]:
    """``(through, elites)``: the last result recorded, and the elites made by the results
    after ``finished_seq`` ``since`` (every elite for 0; none when nothing was recorded
    since). An elite changes only in the transaction that records a result, so a reader
    that has the elites through ``since`` merges these by cell and is up to date through
    ``through``: the watermark is read first, so a result recorded meanwhile is read now or
    next time, never lost."""
    e, el = EVALUATIONS.c, ELITES.c
    with _reading(store) as conn:
        through = int(conn.execute(select(func.max(e.finished_seq)).where(e.campaign_id == campaign_id)).scalar() or 0)
        if through == since:
            return through, []
        query = select(el.cell, el.evaluation_id, el.objective, el.fitness, cast(e.measures, Text),
                       cast(e.params, Text), e.proposer, e.seq, e.finished_seq)
        if since == 0:  # every elite: from the elites' key, each evaluation by its id
            query = query.select_from(ELITES.join(EVALUATIONS, e.id == el.evaluation_id)).where(
                el.campaign_id == campaign_id)
        else:  # the results since: by (campaign, finished_seq), each cell's elite by its key
            same_cell = (el.campaign_id == e.campaign_id) & (el.cell == e.cell)
            query = (query.select_from(EVALUATIONS.join(ELITES, same_cell))
                     .where(e.campaign_id == campaign_id, e.finished_seq > since, el.evaluation_id == e.id))
        rows = conn.execute(query).all()
    decoded = loads_many([t for r in rows for t in r[4:6]])  # one decode for all (archive.jsontext)
    return through, [EliteRow(r[0], r[1], r[2], r[3], decoded[2 * i], decoded[2 * i + 1], *r[6:])
                     for i, r in enumerate(rows)]


def cell_elite(store: Store, campaign_id: int, cell: int) -> tuple[int, float] | None:
    """``(evaluation_id, objective)`` of the cell's elite, or ``None`` for an empty cell."""
    with _reading(store) as conn:
        row = conn.execute(select(ELITES.c.evaluation_id, ELITES.c.objective)
                           .where(ELITES.c.campaign_id == campaign_id, ELITES.c.cell == cell)).first()
    return None if row is None else (int(row[0]), float(row[1]))


# -- the points proposed -----------------------------------------------------------
class Points(NamedTuple):
    """Evaluations' unit-cube points: ``ids``, ``proposers`` and the points ``x`` (n × dim; a
    row of NaN where a stored point is not a list of ``dim`` numbers)."""

    ids: np.ndarray
    proposers: list[str]
    x: np.ndarray


def points_after(store: Store, campaign_id: int, after_id: int, dim: int) -> Points:
    """The points of the evaluations with an id past ``after_id``, in id order (a row is never
    changed once written). They are read as the JSON text the database holds and parsed in
    bulk (:func:`parse_points`), not one JSON value at a time."""
    e = EVALUATIONS.c
    with _reading(store) as conn:
        rows = conn.execute(select(e.id, e.proposer, cast(e.x, Text))
                            .where(e.campaign_id == campaign_id, e.id > after_id).order_by(e.id)).all()
    return Points(np.array([r[0] for r in rows], dtype=np.int64), [str(r[1]) for r in rows],
                  parse_points([r[2] for r in rows], dim))


def latest_points(store: Store, campaign_id: int, proposer: str, limit: int,
                  skip: int = 0) -> list[tuple[str | None, str | None]]:
    """``(x, params)`` as the JSON text the database holds, of ``proposer``'s ``limit``
    evaluations before its latest ``skip`` (every status), in ``seq`` order: one backward
    range scan of the ``(campaign_id, proposer, seq)`` index (migration 0004), however long
    the campaign."""
    e = EVALUATIONS.c
    query = (select(cast(e.x, Text), cast(e.params, Text))
             .where(e.campaign_id == campaign_id, e.proposer == proposer)
             .order_by(e.seq.desc()).limit(max(int(limit), 0)).offset(max(int(skip), 0)))
    with _reading(store) as conn:
        rows = conn.execute(query).all()
    return [(r[0], r[1]) for r in reversed(rows)]


def parse_points(texts: Sequence[str | None], dim: int) -> np.ndarray:
    """JSON lists of ``dim`` numbers as an (n, dim) array; NaN rows where a text is not one.

    The fast path parses every list at once in C (a hundred thousand 10-D points in well
    under a second on one slow core); anything unusual is decoded row by row.
    """
    n = len(texts)
    plain = all(isinstance(t, str) and t.startswith("[") and t.endswith("]") and t.count(",") == dim - 1
                and "[" not in t[1:] and "{" not in t for t in texts)
    if plain and dim > 0:
        body = ",".join(t[1:-1] for t in texts)  # type: ignore[index]
        values = np.fromstring(body, dtype=float, sep=",") if body.strip() else np.zeros(0)
        if values.size == n * dim:
            return values.reshape(n, dim)
    out = np.full((n, dim), np.nan)
    for i, text in enumerate(texts):
        try:
            value = json.loads(text) if isinstance(text, str) else None
            if isinstance(value, list) and len(value) == dim:
                out[i] = np.array(value, dtype=float)
        except (ValueError, TypeError):
            continue
    return out


# -- the evaluation log ------------------------------------------------------------
class Failures(NamedTuple):
    """A page of failed evaluations: how many failed in all, ``(error, count, latest id,
    latest finished_at)`` for each distinct error text, and the page's rows."""

    total: int
    by_error: list[tuple[str | None, int, int | None, float | None]]
    rows: list[dict[str, Any]]


def failures(store: Store, campaign_id: int, limit: int = 50, offset: int = 0) -> Failures:
    """The campaign's failed evaluations, latest result first (``limit`` from ``offset``),
    with their errors counted."""
    e = EVALUATIONS.c
    failed = (e.campaign_id == campaign_id) & (e.status == "failed")
    with _reading(store) as conn:
        total = conn.execute(select(func.count()).where(failed)).scalar_one()
        grouped = conn.execute(
            select(e.error, func.count(), func.max(e.id), func.max(e.finished_at)).where(failed).group_by(e.error)
        ).all()
        rows = conn.execute(
            select(e.id, e.seq, e.proposer, e.attempts, e.error, e.worker, e.params, e.metrics,
                   e.finished_at, e.finished_seq)
            .where(failed).order_by(e.finished_seq.desc(), e.id.desc()).limit(limit).offset(offset)
        ).mappings().all()
    return Failures(int(total), [(err, int(n), last_id, last_at) for err, n, last_id, last_at in grouped],
                    [dict(r) for r in rows])


def evaluation_page(store: Store, campaign_id: int, status: str | None = None, order: str = "seq",
                    limit: int = 100, offset: int = 0) -> tuple[int, list[dict[str, Any]]]:
    """``(total, rows)``: how many evaluations (of ``status``, when given) the campaign has,
    and ``limit`` of them from ``offset`` in ``order`` (:data:`ORDERS`; ties by id)."""
    if order not in ORDERS:
        raise QueryValueError(f"order must be one of {', '.join(ORDERS)}, not {order!r}")
    e = EVALUATIONS.c
    where = [e.campaign_id == campaign_id]
    if status is not None:
        where.append(starts.status_is(status))
    column = e.finished_seq if order.lstrip("-") == "finished" else e.seq
    ordering = (column.desc(), e.id.desc()) if order.startswith("-") else (column, e.id)
    with _reading(store) as conn:
        total = conn.execute(select(func.count()).where(*where)).scalar_one()
        rows = conn.execute(
            select(e.id, e.seq, e.status, e.objective, e.measures, e.params, e.cell, e.proposer, e.attempts,
                   e.error, e.worker, e.created_at, e.started_at, e.finished_at, e.finished_seq)
            .where(*where).order_by(*ordering).limit(limit).offset(offset)
        ).mappings().all()
        logged = starts.open_logged(conn, campaign_id, status)
    out = [dict(r) for r in rows]
    starts.overlay_rows(out, logged)
    return int(total), out


def evaluation(store: Store, campaign_id: int, evaluation_id: int) -> dict[str, Any] | None:
    """One evaluation's row in full, or ``None`` when the campaign has no such id."""
    return store.evaluation(campaign_id, evaluation_id)
