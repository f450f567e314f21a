"""Simulated cluster: where the scheduler saturates as workers grow.

The real scheduler loop and the real store (SQLite file, PostgreSQL) drive a
:class:`~workers.executors.simulated.SimulatedExecutor` on the wall clock: N workers,
each evaluation taking ``latency`` seconds, no processes. The ideal rate is N / latency;
what the driver achieves falls short of it once the driver's own work per evaluation
(proposer, SQL, bookkeeping) exceeds latency / N. Per point: achieved evals/s (first
start to last result), its share of the ideal, and the driver's CPU per evaluation in the
same window (``time.process_time``: the scheduler process only, not PostgreSQL's server).

    python bench/sim_cluster.py [--workers 2 8 32 128 512] [--latency 0.1] [--storage sqlite postgresql]

PostgreSQL comes from ``--postgres URL`` or ``ATLAS_TEST_POSTGRES_URL``; each run gets a
fresh schema, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import _common  # noqa: F401  (sets sys.path)
from _common import scratch_storage

from workers.executors.simulated import SimulatedExecutor


@dataclass
class Point:
    storage: str
    workers: int
    latency_s: float
    evals: int
    wall_s: float
    cpu_s: float

    @property
    def ideal(self) -> float:
        return self.workers / self.latency_s

    @property
    def rate(self) -> float:
        return self.evals / self.wall_s

    @property
    def share(self) -> float:
        return self.rate / self.ideal

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu_s / self.evals


class TimedPool(SimulatedExecutor):
    """A simulated pool that notes wall and CPU time at its first start and last result."""

    first: tuple[float, float] | None = None
    last: tuple[float, float] = (0.0, 0.0)

    def submit(self, tasks: list) -> None:
        if self.first is None:
            self.first = (time.perf_counter(), time.process_time())
        super().submit(tasks)

    def poll(self, timeout: float) -> list:
        out = super().poll(timeout)
        if out:
            self.last = (time.perf_counter(), time.process_time())
        return out


def spec_for(name: str, workers: int, budget: int, batch: int) -> dict:
    return {
        "name": name,
        "evaluator": {"kind": "python", "target": "bench._common:noop"},
        "space": {"a": {"type": "float", "low": 0, "high": 1}, "b": {"type": "float", "low": 0, "high": 1}},
        "measures": [{"name": "ma", "low": 0, "high": 1, "bins": 100},
                     {"name": "mb", "low": 0, "high": 1, "bins": 100}],
        "search": {"algorithm": "map-elites", "budget": budget, "batch_size": batch,
                   "max_in_flight": max(2 * workers, batch), "seed": 0},
        "resources": {"timeout_s": 3600},
    }


def run_point(url: str, storage: str, workers: int, latency_s: float, seconds: float, batch: int | None) -> Point:
    from search import api

    budget = int(max(100, 10 * workers, min(workers / latency_s * seconds, 200 * workers)))
    batch = batch or max(1, workers)
    spec = api.as_spec(spec_for(f"sim-{workers}", workers, budget, batch))
    pool = TimedPool(api.executor_config(spec), workers, latency_s)
    stats = api.run(spec, storage=url, executor=pool)
    assert stats.finished == budget and pool.first is not None
    return Point(storage, workers, latency_s, budget, pool.last[0] - pool.first[0], pool.last[1] - pool.first[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 8, 32, 128, 512])
    parser.add_argument("--latency", type=float, nargs="+", default=[0.1, 0.01], help="seconds per evaluation")
    parser.add_argument("--seconds", type=float, default=3.0, help="about how long each point runs at the ideal rate")
    parser.add_argument("--batch", type=int, default=None, help="search.batch_size (default: the worker count)")
    parser.add_argument("--storage", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--postgres", default=os.environ.get("ATLAS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores")
    print(f"{'storage':<11}{'latency':>8}{'workers':>8}{'evals':>8}{'ideal/s':>10}{'achieved/s':>12}{'share':>8}"
          f"{'driver CPU/eval':>17}")
    points: list[Point] = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in args.storage:
            # warm-up: imports, first SQL compiles
            with scratch_storage(kind, Path(tmp), args.postgres, "atlas_bench") as url:
                run_point(url, kind, 2, 0.001, 0.1, args.batch)
            for latency in args.latency:
                for workers in args.workers:
                    with scratch_storage(kind, Path(tmp), args.postgres, "atlas_bench") as url:
                        p = run_point(url, kind, workers, latency, args.seconds, args.batch)
                    points.append(p)
                    print(f"{kind:<11}{latency * 1000:>6g}ms{workers:>8}{p.evals:>8}{p.ideal:>10,.0f}{p.rate:>12,.0f}"
                          f"{p.share:>8.1%}{p.cpu_ms:>14.3f} ms", flush=True)
    for kind in args.storage:
        for latency in args.latency:
            mine = [p for p in points if p.storage == kind and p.latency_s == latency]
            short = next((p for p in mine if p.share < 0.9), None)
            where = (f"saturates at {short.workers} workers ({short.share:.0%} of ideal)" if short
                     else "does not saturate in this range")
            print(f"{kind}, {latency * 1000:g} ms: {where}; at most {max(p.rate for p in mine):,.0f} evals/s; "
                  f"driver CPU {min(p.cpu_ms for p in mine):.3f}-{max(p.cpu_ms for p in mine):.3f} ms/eval")
    print(f"load average {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
