"""A proposer's read-only view of a campaign's archive (for rebuilding caches on resume)."""

from __future__ import annotations

from typing import Any

import numpy as np

from archive.layout import CellLayout
from archive.store import Store
from search.proposers.base import Observation


class ArchiveHistory:
    """Elites, finished evaluations and pending points of one campaign, as observations."""

    def __init__(self, store: Store, campaign_id: int, layout: CellLayout, sign: float) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self.layout = layout
        self.sign = sign

    def _measures(self, measures: dict[str, Any] | None) -> np.ndarray | None:
        if not measures:
            return None
        return np.array([measures[m] for m in self.layout.measure_names], dtype=float)

    def elites(self) -> list[Observation]:
        return [
            Observation(
                evaluation_id=e["evaluation_id"], seq=e["seq"], x=np.asarray(e["x"], dtype=float),
                params=e["params"], fitness=float(e["fitness"]), measures=self._measures(e["measures"]),
                cell=e["cell"], meta={}, proposer=e["proposer"],
            )
            for e in self.store.elites(self.campaign_id)
        ]

    def finished(self) -> list[Observation]:
        """Done and failed evaluations, in the order their results were recorded."""
        rows = [r for r in self.store.evaluations(self.campaign_id, order_by="finished_seq")
                if r["status"] in ("done", "failed")]
        return [
            Observation(
                evaluation_id=r["id"], seq=r["seq"], x=np.asarray(r["x"], dtype=float), params=r["params"],
                fitness=self.sign * r["objective"] if r["status"] == "done" else None,
                measures=self._measures(r["measures"]) if r["status"] == "done" else None,
                cell=r["cell"], meta=r["proposal"] or {}, proposer=r["proposer"],
            )
            for r in rows
        ]

    def pending_x(self) -> np.ndarray:
        rows = self.store.unfinished(self.campaign_id)
        if not rows:
            return np.zeros((0, 0))
        return np.array([r["x"] for r in rows], dtype=float)

    def calls(self, proposer: str) -> list[dict[str, Any]]:
        """Calls a model-backed proposer made, oldest first (prompt key, reply, status)."""
        return self.store.calls(self.campaign_id, proposer)
