"""Statistics at scale: time of the SQL queries behind ``atlas status`` and ``atlas elites``
on a campaign of 100,000 evaluations (10,000-cell grid), SQLite and PostgreSQL.

    python bench/stats_at_scale.py [--evals 100000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np
from _common import best_of


def fill(url: str, evals: int) -> tuple[object, int]:
    from archive.store import NewEvaluation, Result, Store

    store = Store(url)
    cid = store.create_campaign(f"scale-{time.time_ns()}", {"search": {"budget": evals}}, "h", {"kind": "grid"}).id
    rng = np.random.default_rng(0)
    batch = 1000
    for start in range(0, evals, batch):
        rows = [NewEvaluation(start + i, {"a": float(rng.random())}, [0.5, 0.5], "bench") for i in range(batch)]
        ids = store.add_pending(cid, rows)
        store.mark_running(ids)
        results = [Result(eid, "done", float(rng.random()), {"m0": 0.1, "m1": 0.2}, {}, cell=int(rng.integers(10_000)))
                   for eid in ids]
        store.record_results(cid, results, 1.0)
    return store, cid



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=100_000)
    parser.add_argument("--postgres", default=None, help="also run on this PostgreSQL URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("sqlite", f"sqlite:///{Path(tmp) / 'scale.db'}")]
        if args.postgres:
            urls.append(("postgresql", args.postgres))
        for label, url in urls:
            start = time.perf_counter()
            store, cid = fill(url, args.evals)
            fill_s = time.perf_counter() - start
            stats_s = best_of(functools.partial(store.stats, cid, 10_000), repeat=5)  # type: ignore[attr-defined]
            top_s = best_of(functools.partial(store.elites, cid, top=10), repeat=5)  # type: ignore[attr-defined]
            all_s = best_of(functools.partial(store.elites, cid), repeat=2)  # type: ignore[attr-defined]
            print(f"{label:<10} {args.evals:,} evaluations written in {fill_s:.1f} s "
                  f"({args.evals / fill_s:,.0f}/s); stats {stats_s * 1000:.1f} ms, top-10 elites "
                  f"{top_s * 1000:.1f} ms, all elites {all_s * 1000:.0f} ms", flush=True)


if __name__ == "__main__":
    main()
