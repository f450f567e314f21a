"""The start log: a start counted, durably, before its evaluation runs, in one small write.

The inline executor runs evaluations in the scheduler's own process, so each start must be
safe from that process dying before its evaluation begins (committed on SQLite; on
PostgreSQL sent, which the server commits whether or not the process lives:
:mod:`archive.charger`): a scheduler killed inside an evaluation must find exactly the
evaluations it started charged (#12). Charging the row itself (``status``
``running``, ``attempts`` + 1) moves its entries in both status indexes, and on SQLite that
commit writes four to five pages to the WAL (48 µs a start here). A row in
``evaluation_starts`` is one page of a table that stays a few rows long (16 µs).

The rules:

- **A logged start counts as the charge it stands for.** Every reader shows an open
  evaluation with a logged start as ``running``, ``attempts`` + 1, with the log's
  ``started_at`` and ``worker`` (:func:`open_logged`, :func:`overlay_rows`,
  :func:`shift_counts`, :func:`counts_by_proposer`); a finished evaluation ignores the log.
- **The scheduler's next turn charges it on the row** (:meth:`Store.step`, ``logged``): in
  the result's own ``UPDATE`` where the result came in that turn, else as a charge; the log
  row is deleted in the same transaction (:func:`unlog`). So a start is counted once, in the
  log or on the row, never both, never neither.
- **Every other write of those rows folds the log first** (:func:`fold`: charge what it
  holds on the rows, then delete it): a requeue, the end of a run, a new scheduler's start.
  After a run ends, and after a new scheduler has started, the campaign's log is empty.
- A start logged twice for one evaluation (a scheduler that lost its lease logging late)
  keeps the later time: it is one start until the row is charged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, not_, or_, select, update

from archive import bulk
from archive.models import STATUSES, Evaluation, EvaluationStart

STARTS = EvaluationStart.__table__
EVALUATIONS = Evaluation.__table__
OPEN = ("pending", "running")

_LATER = "ON CONFLICT (evaluation_id) DO UPDATE SET started_at = excluded.started_at, worker = excluded.worker"
# SQLite's DB-API, a row at a time; parameters (evaluation id, campaign id, when, worker)
LOG_SQL = f"INSERT INTO evaluation_starts (evaluation_id, campaign_id, started_at, worker) VALUES (?, ?, ?, ?) {_LATER}"
# PostgreSQL's, every id at once: one statement, its own transaction, sent without waiting
# (archive.charger); parameters as text (campaign id, when, worker, an int array literal of ids)
LOG_PG = ("INSERT INTO evaluation_starts (evaluation_id, campaign_id, started_at, worker) "
          f"SELECT v.id, $1::int, $2::float8, $3::text FROM unnest($4::int[]) AS v(id) {_LATER}")
_UNLOG_SQLITE = "DELETE FROM evaluation_starts WHERE evaluation_id = ?"
_UNLOG_PG = "DELETE FROM evaluation_starts WHERE evaluation_id = ANY(%(ids)s::int[])"


@dataclasses.dataclass(frozen=True)
class LoggedStart:
    """A logged start of an open evaluation: its id, proposer and row status (``pending``,
    or ``running`` from an earlier start), and the start's time and worker."""

    evaluation_id: int
    proposer: str
    status: str
    started_at: float
    worker: str | None


def unlog(conn: Connection, ids: Sequence[int]) -> None:
    """Inside a write: delete the log rows of ``ids``, whose starts this transaction charged."""
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_UNLOG_PG, {"ids": bulk.int_array(ids)})
    else:
        conn.exec_driver_sql(_UNLOG_SQLITE, [(int(i),) for i in ids])


def fold(conn: Connection, *, campaign_id: int | None = None, ids: Sequence[int] | None = None) -> None:
    """Inside a write: charge the logged starts of the campaign (or of ``ids``) on their rows,
    where still open (``running``, ``attempts`` + 1, the log's ``started_at`` and
    ``worker``), and delete them from the log."""
    if (campaign_id is None) == (ids is None):
        raise ValueError("fold the starts of a campaign or of ids, one of the two")
    if ids is not None and not ids:
        return
    s, e = STARTS.c, EVALUATIONS.c
    which = s.campaign_id == campaign_id if ids is None else s.evaluation_id.in_([int(i) for i in ids])
    mine = s.evaluation_id == e.id
    conn.execute(
        update(EVALUATIONS)
        .where(e.id.in_(select(s.evaluation_id).where(which)), e.status.in_(OPEN))
        .values(status="running", attempts=e.attempts + 1,
                started_at=select(s.started_at).where(mine).scalar_subquery(),
                worker=select(s.worker).where(mine).scalar_subquery())
    )
    conn.execute(delete(STARTS).where(which))


def open_logged(conn: Connection, campaign_id: int, status: str | None = None) -> list[LoggedStart]:
    """The campaign's logged starts of evaluations still open (a few rows: one scheduler's
    starts since its last turn, or a dead one's last). With ``status``, those that rows read
    as that status (:func:`status_is`) can carry: none unless it is ``running``."""
    if status not in (None, "running"):
        return []
    s, e = STARTS.c, EVALUATIONS.c
    rows = conn.execute(
        select(s.evaluation_id, e.proposer, e.status, s.started_at, s.worker)
        .join_from(STARTS, EVALUATIONS, s.evaluation_id == e.id)
        .where(s.campaign_id == campaign_id, e.status.in_(OPEN))
    ).all()
    return [LoggedStart(int(i), str(p), str(st), float(t), w) for i, p, st, t, w in rows]


def overlay_rows(rows: Iterable[MutableMapping[str, Any]], logged: Sequence[LoggedStart]) -> None:
    """Show each open row with a logged start as charged (in place): ``running``,
    ``attempts`` + 1, the log's ``started_at`` and ``worker`` (the keys a row has)."""
    if not logged:
        return
    by_id = {start.evaluation_id: start for start in logged}
    for row in rows:
        start = by_id.get(row.get("id"))  # type: ignore[arg-type]
        if start is None or ("status" in row and row["status"] not in OPEN):
            continue
        row["status"] = "running"
        if "attempts" in row:
            row["attempts"] = int(row["attempts"]) + 1
        if "started_at" in row:
            row["started_at"] = start.started_at
        if "worker" in row:
            row["worker"] = start.worker


def overlay_tuples(rows: list[tuple[Any, ...]], columns: Sequence[str],
                   logged: Sequence[LoggedStart]) -> list[tuple[Any, ...]]:
    """:func:`overlay_rows` for rows as tuples of ``columns`` (``id`` among them): the
    rows of logged starts replaced, the others as they were."""
    if not logged:
        return rows
    ids = {start.evaluation_id for start in logged}
    at_id = list(columns).index("id")
    out = list(rows)
    for k, row in enumerate(out):
        if row[at_id] in ids:
            as_dict = dict(zip(columns, row, strict=True))
            overlay_rows([as_dict], logged)
            out[k] = tuple(as_dict[c] for c in columns)
    return out


def shift_counts(counts: MutableMapping[str, int], logged: Iterable[LoggedStart]) -> None:
    """Counts by status (in place) with each logged start of a ``pending`` row moved to ``running``."""
    for start in logged:
        if start.status == "pending":
            counts["pending"] = counts.get("pending", 0) - 1
            counts["running"] = counts.get("running", 0) + 1


def counts_by_proposer(rows: Iterable[tuple[Any, Any, Any]],
                       logged: Iterable[LoggedStart]) -> dict[str, dict[str, int]]:
    """Counts by proposer, then status, from ``(proposer, status, count)`` rows, with each
    logged start shifted as in :func:`shift_counts`; every status of
    :data:`~archive.models.STATUSES` is a key of each proposer's counts, 0 where it has none
    (``failed: 0`` read as no key had made one proposer's counts unlike another's)."""
    out: dict[str, dict[str, int]] = {}
    for proposer, status, n in rows:
        out.setdefault(str(proposer), dict.fromkeys(STATUSES, 0))[str(status)] = int(n)
    for start in logged:
        shift_counts(out.setdefault(start.proposer, dict.fromkeys(STATUSES, 0)), [start])
    return out


def status_is(status: str) -> ColumnElement[bool]:
    """SQL for "the row reads as ``status``", with logged starts counted: a ``pending`` row
    with a logged start reads as ``running``."""
    e = EVALUATIONS.c
    logged = e.id.in_(select(STARTS.c.evaluation_id))
    if status == "pending":
        return and_(e.status == "pending", not_(logged))
    if status == "running":
        return or_(e.status == "running", and_(e.status == "pending", logged))
    return e.status == status
