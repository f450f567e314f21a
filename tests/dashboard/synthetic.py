"""Campaigns written straight into a store, fast: the quickstart's shape (a 10-D vector, the
linear-projection sphere, two measures) without running an evaluator. Used by the dashboard
tests and by ``bench/dashboard_payload.py``.

Rows go through the store's own write path (``add_pending`` → ``mark_running`` →
``record_results``), so elites, ``finished_seq`` and statistics are exactly what a
scheduler would have left.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archive.layout import CellLayout
from archive.store import CampaignRecord, NewEvaluation, Result, Store
from search.campaigns import open_campaign
from search.spec import parse_spec

BOUND = 10.24


def synthetic_spec(name: str, evaluations: int, bins: tuple[int, ...] = (20, 20), kind: str = "grid",
                   cells: int | None = None, dim: int = 10, maximize: bool = True,
                   span: float = 2.5 * BOUND) -> dict[str, Any]:
    """A campaign spec of the quickstart's shape (``evaluations`` is its budget); the measures
    range over [-span, span] (the default holds every point; less fills more cells)."""
    measures = [{"name": f"m{i}", "low": -span, "high": span, "bins": b} for i, b in enumerate(bins)]
    archive: dict[str, Any] = {"type": kind}
    if kind == "cvt":
        archive.update(cells=cells or 100, samples=max(2_000, 4 * (cells or 100)))
    return {
        "name": name,
        "evaluator": {"kind": "python", "target": "tests.support.evaluators:noop"},
        "space": {"x": {"type": "float", "low": -BOUND, "high": BOUND, "size": dim}},
        "objective": {"name": "objective", "direction": "maximize" if maximize else "minimize"},
        "measures": measures,
        "archive": archive,
        "search": {"algorithm": "map-elites", "budget": max(evaluations, 1), "batch_size": 100, "seed": 0},
    }


def synthetic_results(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Sphere objective (100 at the optimum) and ``k`` measures: sums of clipped slices of x."""
    dim = x.shape[1]
    objective = 100.0 * (1.0 - np.sum(x ** 2, axis=1) / (dim * BOUND ** 2))
    clipped = np.clip(x, -BOUND / 2, BOUND / 2)
    parts = np.array_split(np.arange(dim), k)
    measures = np.column_stack([clipped[:, p].sum(axis=1) for p in parts])
    return objective, measures


def synthetic_campaign(url: str, name: str = "synthetic", evaluations: int = 1000, *, bins: tuple[int, ...] = (20, 20),
                       kind: str = "grid", cells: int | None = None, dim: int = 10, fail_rate: float = 0.02,
                       seed: int = 0, batch: int = 1000, proposers: tuple[str, ...] = ("map-elites", "random"),
                       maximize: bool = True, status: str = "finished", store: Store | None = None,
                       span: float = 2.5 * BOUND) -> tuple[Store, CampaignRecord]:
    """Write a finished campaign of ``evaluations`` results (``fail_rate`` of them failed)."""
    store = store or Store(url)
    spec = parse_spec(synthetic_spec(name, evaluations, bins, kind, cells, dim, maximize, span))
    record = open_campaign(store, spec)
    add_results(store, record, evaluations, dim=dim, fail_rate=fail_rate, seed=seed, batch=batch,
                proposers=proposers, maximize=maximize)
    store.update_campaign(record.id, status=status)
    refreshed = store.campaign(name)
    assert refreshed is not None
    return store, refreshed


def add_results(store: Store, record: CampaignRecord, n: int, *, dim: int = 10, fail_rate: float = 0.02,
                seed: int = 0, batch: int = 1000, proposers: tuple[str, ...] = ("map-elites", "random"),
                maximize: bool = True, scale: float = 1.0) -> None:
    """Write ``n`` more finished evaluations to ``record``'s campaign (``scale`` < 1 samples nearer the optimum)."""
    layout = CellLayout.from_json(record.layout)
    k = len(layout.axes)
    rng = np.random.default_rng(seed)
    seq = store.next_seq(record.id)
    sign = 1.0 if maximize else -1.0
    for start in range(0, n, batch):
        size = min(batch, n - start)
        x = rng.uniform(-BOUND, BOUND, (size, dim)) * scale
        objective, measures = synthetic_results(x, k)
        if not maximize:
            objective = 100.0 - objective
        unit = (x + BOUND) / (2 * BOUND)
        rows = [NewEvaluation(seq + i, {"x": x[i].tolist()}, unit[i].tolist(), proposers[(seq + i) % len(proposers)],
                              {"source": "synthetic"}) for i in range(size)]
        seq += size
        ids = store.add_pending(record.id, rows)
        store.mark_running(ids, worker="synthetic:0")
        fails = rng.random(size) < fail_rate
        cells = layout.index_of(measures)
        results = []
        for i, eid in enumerate(ids):
            if fails[i]:
                kind = ("RuntimeError: evaluator crashed", "ValueError: measure 'm1' is not finite")[i % 2]
                results.append(Result(eid, "failed", error=f"{kind}\n  File \"synthetic.py\", line {i}, in evaluate\n",
                                      worker="synthetic:0"))
            else:
                results.append(Result(eid, "done", float(objective[i]),
                                      {f"m{j}": float(measures[i, j]) for j in range(k)},
                                      {"eval_seconds": 0.001}, cell=int(cells[i]), worker="synthetic:0"))
        store.record_results(record.id, results, sign)
