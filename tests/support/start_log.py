"""What the start-log tests share: a campaign with pending rows, the log's size, a result."""

from __future__ import annotations

from sqlalchemy import func, select

from archive.models import EvaluationStart
from archive.store import NewEvaluation, Result, Store


def campaign_with_rows(store: Store, n: int = 3) -> tuple[int, list[int]]:
    """A new campaign ``c`` with ``n`` pending rows: its id and theirs."""
    cid = store.create_campaign("c", {"search": {"budget": 10}}, "hash", {"kind": "grid"}).id
    ids = store.add_pending(cid, [NewEvaluation(i, {"i": i}, [0.5], "test") for i in range(n)])
    return cid, ids


def log_size(store: Store) -> int:
    """How many starts the log holds, of every campaign."""
    with store.read() as conn:
        return conn.execute(select(func.count()).select_from(EvaluationStart.__table__)).scalar_one()


def done(eid: int, objective: float = 1.0) -> Result:
    """A finished evaluation's result, in cell 0."""
    return Result(evaluation_id=eid, status="done", objective=objective, measures={"m": 0.5}, metrics={},
                  cell=0, error=None, worker="w")
