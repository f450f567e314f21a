"""What a model-backed proposer's calls came to, per proposer, aggregated in SQL.

Rules:

- One grouped query over the campaign's ``proposer_calls`` gives, per proposer, the calls,
  those answered (``status`` ``ok``), those failed (``error``), those answered whose reply
  gave no usable candidate (``unusable``), the tokens its replies counted and the ids of
  its latest failed and latest unusable calls; no call row is loaded for it.
- An answered call is unusable where its ``outcome.valid`` (what the LLM proposer stores:
  the candidates of the reply it took) is the number 0: a reply that is prose, not JSON,
  ``null``, empty, or whose candidates were all discarded. So a campaign whose evaluations
  all came from ``llm-fallback`` shows why even when every call was ``answered``. A call
  with no such number (no outcome, a custom proposer's own) is not counted.
- The candidates accepted (:func:`accepted`, for the dashboard) are the sum of that number
  over the answered calls: the proposals taken from the replies.
- Tokens are ``usage.prompt_tokens`` and ``usage.completion_tokens`` (what the LLM
  proposer stores from the reply's usage), summed where they are JSON numbers; anything
  else there (no usage, a failed call's ``null``, a string a custom proposer wrote) counts
  nothing, and a proposer none of whose calls holds a count has ``None``, not 0.
- The latest error is the failed call with the highest id: its first line and when it was
  written (``created_at``, epoch seconds). One row read per proposer that has one.
- The latest unusable reply is the unusable call with the highest id: why nothing in it
  was usable (:func:`unusable_reason`, from its outcome) and when it was written.
- The median latency is that of the calls with a ``latency_s`` (answered ones): the middle
  one or two of them, read in latency order with ``OFFSET``, one short query per proposer
  (SQLite has no median aggregate; calls are bounded by ``max_requests``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Numeric, and_, case, cast, func, select
from sqlalchemy.exc import DBAPIError

from archive.engine import first_line, shown_url
from archive.errors import StorageError
from archive.models import ProposerCall
from archive.records import error_message

TOKEN_FIELDS = ("prompt_tokens", "completion_tokens")


def usage_count(dialect: str, name: str) -> Any:
    """SQL for ``usage[name]`` where it is a JSON number, else NULL (never an error: a
    string there is not cast)."""
    return json_number(dialect, ProposerCall.usage, name)


def json_number(dialect: str, column: Any, name: str) -> Any:
    """SQL for ``column[name]`` (a JSON column) where it is a JSON number, else NULL."""
    if dialect == "postgresql":
        field = column.op("->")(name)
        return case((func.json_typeof(field) == "number", cast(column.op("->>")(name), Numeric)))
    path = f"$.{name}"
    return case((func.json_type(column, path).in_(("integer", "real")), func.json_extract(column, path)))


def summary(conn: Connection, dialect: str, campaign_id: int) -> list[dict[str, Any]]:
    """Per proposer, by name: ``calls``, ``answered``, ``failed``, ``unusable`` (answered,
    no usable candidate), ``prompt_tokens``, ``completion_tokens``, ``tokens`` (their sum;
    ``None`` where no call counted any), ``latest_error`` (its first line) and
    ``latest_error_at``, ``latest_unusable`` (why) and ``latest_unusable_at``, ``median_latency_s``."""
    t = ProposerCall.__table__.c
    tokens = [func.sum(usage_count(dialect, name)).label(name) for name in TOKEN_FIELDS]
    unusable = and_(t.status == "ok", json_number(dialect, ProposerCall.outcome, "valid") == 0)
    rows = conn.execute(
        select(t.proposer, func.count().label("calls"),
               func.coalesce(func.sum(case((t.status == "ok", 1), else_=0)), 0).label("answered"),
               func.coalesce(func.sum(case((t.status == "error", 1), else_=0)), 0).label("failed"),
               func.coalesce(func.sum(case((unusable, 1), else_=0)), 0).label("unusable"),
               *tokens,
               func.max(case((t.status == "error", t.id))).label("last_error_id"),
               func.max(case((unusable, t.id))).label("last_unusable_id"),
               func.count(t.latency_s).label("timed"))
        .where(t.campaign_id == campaign_id)
        .group_by(t.proposer).order_by(t.proposer)
    ).mappings().all()
    errors = _latest(conn, [r["last_error_id"] for r in rows if r["last_error_id"] is not None], "error",
                     error_message)
    replies = _latest(conn, [r["last_unusable_id"] for r in rows if r["last_unusable_id"] is not None], "outcome",
                      unusable_reason)
    return [_row(conn, campaign_id, r, errors.get(r["last_error_id"]), replies.get(r["last_unusable_id"]))
            for r in rows]


def accepted(conn: Connection, dialect: str, campaign_id: int) -> dict[str, int]:
    """Per proposer, the candidates of its answered calls' replies that it used: the sum of
    their ``outcome.valid`` (what the LLM proposer stores: the proposals it took from the
    reply) where a JSON number. A failed call's outcome is its ask's, not a reply's, and is
    not counted. A proposer none of whose answered calls holds such a number (a custom
    proposer's) is absent. One grouped query; no call row is loaded."""
    t = ProposerCall.__table__.c
    rows = conn.execute(
        select(t.proposer, func.sum(json_number(dialect, ProposerCall.outcome, "valid")))
        .where(t.campaign_id == campaign_id, t.status == "ok").group_by(t.proposer)
    ).all()
    return {str(name): int(total) for name, total in rows if total is not None}


def read_summary(store: Any, campaign_id: int) -> list[dict[str, Any]]:
    """:func:`summary` (the figures of ``atlas status NAME``'s model calls), each proposer's
    row with ``accepted`` (:func:`accepted`; ``None`` where none of its calls says), read on
    one connection of ``store`` (an :class:`archive.store.Store`, which imports this module)
    for a reader that polls, as :mod:`archive.queries` reads: no retry, a storage that does
    not answer is a :class:`StorageError` at once."""
    try:
        with store.read() as conn:
            rows = summary(conn, store.dialect, campaign_id)
            used = accepted(conn, store.dialect, campaign_id) if rows else {}
    except DBAPIError as exc:
        raise StorageError(f"the storage {shown_url(store.url)} did not answer: {first_line(exc)}") from None
    return [{**row, "accepted": used.get(row["proposer"])} for row in rows]


def _row(conn: Connection, campaign_id: int, r: Any, error: tuple[str, float] | None,
         unusable: tuple[str, float] | None) -> dict[str, Any]:
    """One proposer's summary from its grouped row, its latest error and its latest unusable reply."""
    counts = {name: None if r[name] is None else int(r[name]) for name in TOKEN_FIELDS}
    found = [v for v in counts.values() if v is not None]
    return {"proposer": r["proposer"], "calls": int(r["calls"]), "answered": int(r["answered"]),
            "failed": int(r["failed"]), "unusable": int(r["unusable"]), **counts,
            "tokens": sum(found) if found else None,
            "latest_error": None if error is None else error[0],
            "latest_error_at": None if error is None else error[1],
            "latest_unusable": None if unusable is None else unusable[0],
            "latest_unusable_at": None if unusable is None else unusable[1],
            "median_latency_s": _median_latency(conn, campaign_id, r["proposer"], int(r["timed"]))}


def _latest(conn: Connection, ids: list[int], column: str,
            describe: Callable[[Any], str]) -> dict[int, tuple[str, float]]:
    """``describe`` of each call's ``column`` in ``ids`` and the call's time, by id: a failed
    call's ``error`` (its first line), an unusable one's ``outcome`` (:func:`unusable_reason`)."""
    if not ids:
        return {}
    t = ProposerCall.__table__.c
    found = conn.execute(select(t.id, t[column], t.created_at).where(t.id.in_(ids))).all()
    return {int(i): (describe(value), float(at)) for i, value, at in found}


def unusable_reason(outcome: Any) -> str:
    """Why an answered call gave no usable candidate, from its ``outcome`` as the LLM
    proposer stores it (``candidates`` found, ``problem``, ``discarded`` by reason, ``cut``):
    ``no candidates in its reply (empty reply)``, ``its reply held 3 candidates, none
    usable (discarded: duplicate: 1, names no parameter of the space: 2)``."""
    outcome = outcome if isinstance(outcome, dict) else {}
    cut = ", cut where it was read" if outcome.get("cut") is True else ""
    held = outcome.get("candidates")
    if not isinstance(held, int) or held <= 0:
        return f"no candidates in its reply ({outcome.get('problem') or 'nothing parsed'}{cut})"
    discarded = outcome.get("discarded") if isinstance(outcome.get("discarded"), dict) else {}
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(discarded.items(), key=lambda kv: str(kv[0]))) or "none"
    return f"its reply held {held} candidate{'' if held == 1 else 's'}{cut}, none usable (discarded: {counts})"


def _median_latency(conn: Connection, campaign_id: int, proposer: str, n: int) -> float | None:
    """The median of the proposer's ``n`` latencies: the middle one (odd ``n``) or the mean
    of the middle two, read in order past the first ``(n - 1) // 2``."""
    if n == 0:
        return None
    t = ProposerCall.__table__.c
    middle = conn.execute(
        select(t.latency_s).where(t.campaign_id == campaign_id, t.proposer == proposer, t.latency_s.is_not(None))
        .order_by(t.latency_s).offset((n - 1) // 2).limit(2 - n % 2)
    ).scalars().all()
    return sum(float(v) for v in middle) / len(middle) if middle else None
