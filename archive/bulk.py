"""Set-at-a-time SQL for the scheduler's hot writes: new ``pending`` rows, recorded
results and the cells' elites, inside the store's own transaction.

SQLAlchemy's ``executemany`` runs its bind processing for every row of every call, and on
PostgreSQL renders a multi-row ``VALUES`` text that psycopg parses anew for each batch
(20 ms for 256 rows here). These statements are fixed texts:

- SQLite: one DB-API ``executemany`` of plain tuples;
- PostgreSQL: one statement over ``json_to_recordset`` of one JSON document of the
  rows (one round trip, one plan, whatever the batch size; the document is one orjson
  call and one text parameter: psycopg's array dumpers quoted every element of every
  text array in Python, about a fifth of the driver's time per evaluation).

JSON columns are written by orjson (a fifth of ``json.dumps``' time, the largest share
of a row's cost before), read back by every reader as SQLAlchemy's ``JSON`` type would
have written them: ``None`` as the JSON ``null``, keys that are not strings as strings,
NumPy scalars and arrays as numbers and lists. A non-finite float becomes ``null``, as
:func:`workers.runner.json_safe` already makes it in metrics (and as PostgreSQL's
``json`` type requires: it refuses ``NaN``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection

from archive.models import Elite, Evaluation
from archive.records import NewEvaluation

_EVALUATIONS = Evaluation.__tablename__
_ELITES = Elite.__tablename__
_OPEN = "('pending', 'running')"

# A start is charged once: the row's ``started_at`` already equal to the start's time means
# an earlier attempt of the same write committed it (its acknowledgement was lost).
RUNNING_SQL = (f"UPDATE {_EVALUATIONS} SET status = 'running', attempts = attempts + 1, started_at = ?1, "
               f"worker = ?2 WHERE id = ?3 AND status IN {_OPEN} AND started_at IS NOT ?1")  # (when, worker, id)
# PostgreSQL's, every start at once (its parameters: running_params_pg)
RUNNING_PG = (
    f"UPDATE {_EVALUATIONS} AS e SET status = 'running', attempts = e.attempts + 1, started_at = v.started_at, "
    "worker = v.worker FROM json_to_recordset(%(rows)s::json) AS v(id int, started_at float8, worker text) "
    f"WHERE e.id = v.id AND e.status IN {_OPEN} AND e.started_at IS DISTINCT FROM v.started_at"
)
_NULL = "'null'::json"  # a JSON null that json_to_recordset reads as SQL NULL is written back as JSON null
_INSERT_SQLITE = (
    f"INSERT INTO {_EVALUATIONS} (campaign_id, seq, params, x, proposer, proposal, status, attempts, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?)"
)
_IDS_SQLITE = f"SELECT seq, id FROM {_EVALUATIONS} WHERE campaign_id = ? AND seq BETWEEN ? AND ?"
_PENDING_COLUMNS = "campaign_id, seq, params, x, proposer, proposal, status, attempts, created_at"
_PENDING_VALUES = (f"%(cid)s, v.seq, coalesce(v.params, {_NULL}), coalesce(v.x, {_NULL}), v.proposer, "
                   f"coalesce(v.proposal, {_NULL}), 'pending', 0, %(now)s")
_PENDING_RECORD = "seq int, params json, x json, proposer text, proposal json"
_INSERT_PG = (f"INSERT INTO {_EVALUATIONS} ({_PENDING_COLUMNS}) SELECT {_PENDING_VALUES} "
              f"FROM json_to_recordset(%(rows)s::json) AS v({_PENDING_RECORD}) RETURNING seq, id")
# the same rows under ids taken beforehand from the table's sequence (Store.reserve_ids)
_INSERT_WITH_IDS_PG = (f"INSERT INTO {_EVALUATIONS} (id, {_PENDING_COLUMNS}) SELECT v.id, {_PENDING_VALUES} "
                       f"FROM json_to_recordset(%(rows)s::json) AS v(id int, {_PENDING_RECORD})")
RESERVE_IDS_PG = (f"SELECT array_agg(nextval(pg_get_serial_sequence('{_EVALUATIONS}', 'id'))) "
                  "FROM generate_series(1, %(n)s)")
_RECORD_COLUMNS = ("status", "objective", "measures", "metrics", "cell", "error", "worker", "finished_at",
                   "finished_seq")
# a result whose start is charged in the same turn takes its attempt here, in the same UPDATE
_RECORD_SQLITE = (
    f"UPDATE {_EVALUATIONS} SET " + ", ".join(f"{c} = ?" for c in _RECORD_COLUMNS)
    + ", attempts = attempts + ?, started_at = coalesce(?, started_at)"
    + f" WHERE id = ? AND status IN {_OPEN}"
)
_RECORD_PG = (
    f"UPDATE {_EVALUATIONS} AS e SET status = v.status, objective = v.objective, "
    f"measures = coalesce(v.measures, {_NULL}), metrics = coalesce(v.metrics, {_NULL}), cell = v.cell, "
    "error = v.error, worker = v.worker, finished_at = v.finished_at, finished_seq = v.finished_seq, "
    "attempts = e.attempts + v.charged, started_at = coalesce(v.started_at, e.started_at) "
    "FROM json_to_recordset(%(rows)s::json) AS v(id int, status text, objective float8, measures json, "
    "metrics json, cell int, error text, worker text, finished_at float8, finished_seq int, charged int, "
    "started_at float8) "
    f"WHERE e.id = v.id AND e.status IN {_OPEN}"
)
_ELITE_SET = ("ON CONFLICT (campaign_id, cell) DO UPDATE SET evaluation_id = excluded.evaluation_id, "
              f"objective = excluded.objective, fitness = excluded.fitness WHERE {_ELITES}.fitness < excluded.fitness")
_ELITES_SQLITE = (f"INSERT INTO {_ELITES} (campaign_id, cell, evaluation_id, objective, fitness) "
                  f"VALUES (?, ?, ?, ?, ?) {_ELITE_SET}")
_ELITES_PG = (
    f"INSERT INTO {_ELITES} (campaign_id, cell, evaluation_id, objective, fitness) "
    "SELECT %(cid)s, v.cell, v.evaluation_id, v.objective, v.fitness "
    "FROM json_to_recordset(%(rows)s::json) AS v(cell int, evaluation_id int, objective float8, fitness float8) "
    f"{_ELITE_SET}"
)
_OPEN_IDS_SQLITE = f"SELECT id FROM {_EVALUATIONS} WHERE campaign_id = ? AND status IN {_OPEN}"
_OPEN_IDS_PG = (f"SELECT id FROM {_EVALUATIONS} WHERE campaign_id = %(cid)s AND id = ANY(%(ids)s::int[]) "
                f"AND status IN {_OPEN} FOR UPDATE")


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _json(value: Any) -> str:
    """``value`` as JSON text: a column's value, or (PostgreSQL) a statement's rows as one
    array of objects for ``json_to_recordset``."""
    return orjson.dumps(value, option=_JSON_OPTIONS).decode()


def int_array(ids: Iterable[int]) -> str:
    """``ids`` as one PostgreSQL array literal (one text parameter, not a list for psycopg
    to dump element by element)."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def running_params_pg(started: Mapping[int, float], worker: str | None = None) -> dict[str, str]:
    """:data:`RUNNING_PG`'s parameters: the starts (id → when) as one JSON document."""
    return {"rows": _json([{"id": int(i), "started_at": t, "worker": worker} for i, t in started.items()])}


def insert_pending(conn: Connection, campaign_id: int, rows: Sequence[NewEvaluation], now: float,
                   ids: Sequence[int] | None = None) -> list[int]:
    """Write ``rows`` as ``pending`` evaluations; their ids, in the order of ``rows``. With
    ``ids`` (PostgreSQL: reserved from the table's sequence) the rows take those."""
    if not rows:
        return []
    seqs = [r.seq for r in rows]
    if ids is not None and (conn.dialect.name != "postgresql" or len(ids) != len(rows)):
        raise ValueError("rows take reserved ids on PostgreSQL only, one id a row")
    if conn.dialect.name == "postgresql":
        document = _json([{"seq": r.seq, "params": r.params, "x": r.x, "proposer": r.proposer, "proposal": r.proposal,
                           **({"id": int(ids[k])} if ids is not None else {})} for k, r in enumerate(rows)])
        written = conn.exec_driver_sql(_INSERT_PG if ids is None else _INSERT_WITH_IDS_PG,
                                       {"cid": campaign_id, "now": now, "rows": document})
        if ids is not None:
            return [int(i) for i in ids]
        found = written.all()
    else:
        conn.exec_driver_sql(_INSERT_SQLITE, [
            (campaign_id, r.seq, _json(r.params), _json(r.x), r.proposer, _json(r.proposal), now) for r in rows
        ])
        found = conn.exec_driver_sql(_IDS_SQLITE, (campaign_id, min(seqs), max(seqs))).all()
    by_seq = dict(found)  # seq → id: (campaign_id, seq) is unique
    return [by_seq[q] for q in seqs]


def charge(conn: Connection, started: Mapping[int, float]) -> None:
    """Count a start for each evaluation in ``started`` (id → when it started): status
    ``running``, ``attempts`` + 1, where it is still open and not charged this very start
    already (a retried write whose first attempt committed)."""
    if not started:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(RUNNING_PG, running_params_pg(started))
        return
    conn.exec_driver_sql(RUNNING_SQL, [(t, None, int(i)) for i, t in started.items()])


def open_ids(conn: Connection, campaign_id: int, ids: Sequence[int]) -> set[int]:
    """Which of ``ids`` are still open (``pending`` or ``running``). On PostgreSQL their rows
    are locked until the transaction ends (``FOR UPDATE``); on SQLite the write
    transaction's lock covers the database."""
    if not ids:
        return set()
    if conn.dialect.name == "postgresql":
        return set(conn.exec_driver_sql(_OPEN_IDS_PG, {"cid": campaign_id, "ids": int_array(ids)}).scalars())
    marks = ", ".join("?" * len(ids))
    return set(conn.exec_driver_sql(f"{_OPEN_IDS_SQLITE} AND id IN ({marks})", (campaign_id, *ids)).scalars())


def record(conn: Connection, rows: Sequence[dict[str, Any]], started: Mapping[int, float] | None = None) -> None:
    """Record results: each row's columns (``_RECORD_COLUMNS``) on evaluation ``eid``,
    where that evaluation is still open. An ``eid`` in ``started`` (id → when it started)
    is also charged its start (``attempts`` + 1, ``started_at``), as :func:`charge` would
    have in the same transaction: one write of the row instead of two."""
    if not rows:
        return
    started = started or {}
    if conn.dialect.name == "postgresql":
        document = _json([{**{c: r[c] for c in _RECORD_COLUMNS}, "id": r["eid"],
                               "charged": int(r["eid"] in started), "started_at": started.get(r["eid"])}
                              for r in rows])
        conn.exec_driver_sql(_RECORD_PG, {"rows": document})
        return
    conn.exec_driver_sql(_RECORD_SQLITE, [
        (r["status"], r["objective"], _json(r["measures"]), _json(r["metrics"]), r["cell"], r["error"], r["worker"],
         r["finished_at"], r["finished_seq"], int(r["eid"] in started), started.get(r["eid"]), r["eid"])
        for r in rows
    ])


def upsert_elites(conn: Connection, campaign_id: int, elites: Sequence[dict[str, Any]]) -> None:
    """Each cell's new elite, replacing the held one only for a strictly higher fitness
    (``elites`` holds at most one entry per cell)."""
    if not elites:
        return
    names = ("cell", "evaluation_id", "objective", "fitness")
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_ELITES_PG, {"cid": campaign_id, "rows": _json([{n: e[n] for n in names}
                                                                                  for e in elites])})
        return
    conn.exec_driver_sql(_ELITES_SQLITE, [(campaign_id, *(e[n] for n in names)) for e in elites])
