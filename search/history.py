"""A proposer's read-only view of a campaign's archive (for rebuilding caches on resume)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from typing import Any

import numpy as np

from archive.layout import CellLayout
from archive.store import Store
from search.proposers.base import Observation


class ArchiveHistory:
    """Elites, finished evaluations and pending points of one campaign, as observations.

    ``untold``: the finished evaluations the checkpoint's proposer was not told (a
    reproducible run stopped at its budget: :meth:`Store.load_untold`). The history is the
    archive as that proposer knew it: they are still in flight (in :meth:`pending_x`, not in
    :meth:`finished`), and the elites are those of the results it was told."""

    def __init__(self, store: Store, campaign_id: int, layout: CellLayout, sign: float,
                 untold: Collection[int] = ()) -> None:
        self.store = store
        self.campaign_id = campaign_id
        self.layout = layout
        self.sign = sign
        self.untold = frozenset(untold)
        self._untold_read: list[Observation] | None = None  # their observations, read once (finished: they stay)

    def _measures(self, measures: dict[str, Any] | None) -> np.ndarray | None:
        if not measures:
            return None
        return np.array([measures[m] for m in self.layout.measure_names], dtype=float)

    def elites(self) -> list[Observation]:
        """Each cell's best, best fitness first (then by cell): the store's, or, where some
        results were not told, those of the told ones (:meth:`_told_elites`)."""
        if self.untold:
            return self._told_elites()
        return [
            Observation(
                evaluation_id=e["evaluation_id"], seq=e["seq"], x=np.asarray(e["x"], dtype=float),
                params=e["params"], fitness=float(e["fitness"]), measures=self._measures(e["measures"]),
                cell=e["cell"], meta={}, proposer=e["proposer"],
            )
            for e in self.store.elites(self.campaign_id)
        ]

    def _told_elites(self) -> list[Observation]:
        """The elites the store held before the untold results: the store's rule (a cell's
        elite replaced only by a strictly higher fitness, in the order results were recorded)
        over the told ones, in :meth:`Store.elites`' order."""
        best: dict[int, tuple[float, Observation]] = {}  # cell → (fitness, its elite)
        for o in self._finished_rows():
            if o.evaluation_id in self.untold or o.fitness is None or o.cell is None:
                continue
            if o.cell not in best or o.fitness > best[o.cell][0]:
                best[o.cell] = (o.fitness, dataclasses.replace(o, meta={}))
        return [o for _, (_, o) in sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))]

    def finished(self) -> list[Observation]:
        """Done and failed evaluations, in the order their results were recorded (the told ones)."""
        return [o for o in self._finished_rows() if o.evaluation_id not in self.untold]

    def untold_observations(self) -> list[Observation]:
        """The untold evaluations' observations (as the scheduler tells them), by ``seq``: their ask order."""
        if not self.untold:
            return []
        if self._untold_read is None:
            self._untold_read = sorted((o for o in self._finished_rows() if o.evaluation_id in self.untold),
                                       key=lambda o: o.seq)
        return list(self._untold_read)

    def _finished_rows(self) -> list[Observation]:
        """Every done and failed evaluation, in the order their results were recorded."""
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

    def in_flight(self) -> list[Observation]:
        """The evaluations in flight, by ``seq`` (those unfinished, and the untold ones), each
        with its ``x``, ``params``, proposal (``meta``) and ``proposer``; no result: ``fitness``,
        ``measures`` and ``cell`` are None (a proposer rebuilding what it asked: the Optuna ones)."""
        rows = [Observation(evaluation_id=r["id"], seq=r["seq"], x=np.asarray(r["x"], dtype=float),
                            params=r["params"], fitness=None, measures=None, cell=None, meta=r["proposal"] or {},
                            proposer=r["proposer"])
                for r in self.store.unfinished(self.campaign_id)]
        rows += [dataclasses.replace(o, fitness=None, measures=None, cell=None) for o in self.untold_observations()]
        return sorted(rows, key=lambda o: o.seq)

    def pending_x(self) -> np.ndarray:
        """The points in flight (:meth:`in_flight`'s), by ``seq``."""
        points = [o.x for o in self.in_flight()]
        return np.array(points, dtype=float) if points else np.zeros((0, 0))

    def calls(self, proposer: str) -> list[dict[str, Any]]:
        """Calls a model-backed proposer made, oldest first (prompt key, reply, status)."""
        return self.store.calls(self.campaign_id, proposer)
