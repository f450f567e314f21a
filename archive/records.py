"""The plain records every reader and writer of the archive passes around."""

from __future__ import annotations

import dataclasses
import time
from typing import Any


@dataclasses.dataclass
class CampaignRecord:
    """A campaign row."""

    id: int
    name: str
    spec: dict[str, Any]
    spec_hash: str
    status: str
    layout: dict[str, Any]
    lease_holder: str | None
    lease_expires: float | None
    created_at: float
    updated_at: float

    def live_status(self, now: float | None = None) -> str:
        """The status as a reader should see it: a ``running`` campaign whose scheduler's
        lease has expired (it was killed, or exited without a word) is ``stopped``."""
        now = time.time() if now is None else now
        if self.status == "running" and (self.lease_holder is None or (self.lease_expires or 0) < now):
            return "stopped"
        return self.status


@dataclasses.dataclass
class NewEvaluation:
    """A row to write before dispatch."""

    seq: int
    params: dict[str, Any]
    x: list[float]
    proposer: str
    proposal: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Result:
    """The outcome of one evaluation, as the scheduler records it."""

    evaluation_id: int
    status: str  # "done" | "failed"
    objective: float | None = None
    measures: dict[str, float] | None = None
    metrics: dict[str, Any] | None = None
    cell: int | None = None
    error: str | None = None
    worker: str | None = None


@dataclasses.dataclass
class Stats:
    """A campaign's progress and map quality."""

    counts: dict[str, int]
    created: int
    finished: int
    elites: int
    cells: int
    coverage: float
    qd_score: float
    best_objective: float | None
    best_evaluation_id: int | None
