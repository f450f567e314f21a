"""Load: one campaign of 100,000 evaluations on PostgreSQL and on SQLite (the same spec),
recorded throughput, then the time of what `atlas status`, `atlas elites`, `atlas export`
and `atlas map` do at that size (best of 3; each export format).

    python bench/cluster_load.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test [--evals 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import _common  # noqa: F401
from _common import best_of


def campaign(evals: int, name: str) -> dict:
    return {
        "name": name,
        "evaluator": {"kind": "benchmark", "config": {"function": "sphere", "dim": 10}},
        "space": {"x": {"type": "float", "low": -10.24, "high": 10.24, "size": 10}},
        "measures": [{"name": "m0", "low": -25.6, "high": 25.6, "bins": 100},
                     {"name": "m1", "low": -25.6, "high": 25.6, "bins": 100}],
        "search": {"algorithm": "map-elites", "options": {"iso_sigma": 0.01}, "budget": evals, "batch_size": 500,
                   "max_in_flight": 500, "seed": 0},
    }



def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True)
    parser.add_argument("--evals", type=int, default=100_000)
    args = parser.parse_args()
    import archive
    from search import api

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for label, url in (("postgresql", args.postgres), ("sqlite", f"sqlite:///{work / 'load.db'}")):
            name = f"load-{uuid.uuid4().hex[:6]}"
            start = time.perf_counter()
            stats = api.run(campaign(args.evals, name), storage=url, executor="inline")
            rate = stats.finished / (time.perf_counter() - start)
            handle = archive.open(url)
            camp = handle.campaign(name)
            t_status = best_of(lambda c=camp: (c.stats(), c.proposer_counts()))
            t_elites = best_of(lambda c=camp: c.elites())
            t_top = best_of(lambda c=camp: c.elites(top=10))
            t_export = best_of(lambda c=camp, w=work: c.export(w / "run.parquet"))
            t_csv = best_of(lambda c=camp, w=work: c.export(w / "run.csv"))
            t_json = best_of(lambda c=camp, w=work: c.export(w / "run.json"))
            t_map = best_of(lambda c=camp, w=work: c.map(w / "map.png"))
            print(f"{label:<10} {stats.finished:,} evaluations at {rate:,.0f}/s ({stats.elites} elites); "
                  f"status {t_status:.3f} s, elites top-10 {t_top:.3f} s, all elites {t_elites:.3f} s, "
                  f"export parquet {t_export:.2f} s, csv {t_csv:.2f} s, json {t_json:.2f} s, map {t_map:.2f} s",
                  flush=True)
            if label == "postgresql":
                from sqlalchemy import text

                with handle.store.write() as conn:  # leave the shared database as we found it
                    conn.execute(text("delete from campaigns where name = :n"), {"n": name})
            handle.close()


if __name__ == "__main__":
    main()
