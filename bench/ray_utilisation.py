"""Ray utilisation: 2 workers on fixed-length evaluations; busy time / wall time.

busy = Σ evaluation seconds (measured inside the worker); wall = 2 workers × (last result
recorded − first evaluation dispatched). Ray's start-up is outside the window.

    python bench/ray_utilisation.py [--evals 400] [--sleep 0.05 0.01] [--postgres URL] [--reproducible]

With ``--postgres URL`` the campaign lives in a fresh schema of that database (dropped
afterwards), where the scheduler writes its turns behind its loop (``search/step_writer.py``).
With ``--reproducible`` each setting runs twice, without and with ``search.reproducible``
(Ray's outcomes handed back a whole batch at a time, in submit order:
``workers/executors/ordered.py``), to show what the repeatable run costs.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import _common  # noqa: F401
from _common import scratch_storage


def utilisation(sleep_s: float, evals: int, url: str, batch_size: int = 2, max_in_flight: int = 4,
                reproducible: bool = False) -> tuple[float, float]:
    import archive
    from search import api

    name = f"util-{int(sleep_s * 1000)}ms-{batch_size}-{max_in_flight}{'-r' if reproducible else ''}"
    spec = {
        "name": name,
        "evaluator": {"kind": "python", "target": "bench._common:Sleeper", "config": {"sleep_s": sleep_s}},
        "space": {"a": {"type": "float", "low": 0, "high": 1}, "b": {"type": "float", "low": 0, "high": 1}},
        "measures": [{"name": "ma", "low": 0, "high": 1, "bins": 10}, {"name": "mb", "low": 0, "high": 1, "bins": 10}],
        "search": {"algorithm": "map-elites", "budget": evals, "batch_size": batch_size,
                   "max_in_flight": max_in_flight, "seed": 0, "reproducible": reproducible},
        "resources": {"num_cpus": 1},
    }
    api.run(spec, storage=url, executor="ray")
    rows = archive.open(url).campaign(name).evaluations()
    busy = sum(r["metrics"]["eval_seconds"] for r in rows)
    wall = max(r["finished_at"] for r in rows) - min(r["started_at"] for r in rows)
    return busy / (2 * wall), evals / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=400)
    parser.add_argument("--sleep", type=float, nargs="+", default=[0.05, 0.01])
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-in-flight", type=int, nargs="+", default=[4],
                        help="evaluations in flight over the 2 workers (one run per value)")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--reproducible", action="store_true",
                        help="each setting without and with search.reproducible, one after the other")
    args = parser.parse_args()
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, configure_logging=False, log_to_driver=False)
    try:
        kind = "postgresql" if args.postgres else "sqlite"
        with tempfile.TemporaryDirectory() as tmp, scratch_storage(kind, Path(tmp), args.postgres, "atlas_util") as url:
            for sleep_s in args.sleep:
                for in_flight in args.max_in_flight:
                    for reproducible in (False, True) if args.reproducible else (False,):
                        util, rate = utilisation(sleep_s, args.evals, url, args.batch_size, in_flight, reproducible)
                        print(f"{kind}{', reproducible' if reproducible else ''}: "
                              f"{sleep_s * 1000:.0f} ms evaluations, 2 workers, batch {args.batch_size}, "
                              f"{in_flight} in flight: utilisation {util:.1%}, {rate:.1f} evals/s "
                              f"(ideal {2 / sleep_s:.0f}/s)", flush=True)
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
