"""Loop throughput: evaluations recorded per second, Entropy Atlas vs Optuna's RDB storage.

Same trivial objective, same SQLite-file kind of storage, same machine, one run:
- Entropy Atlas: a no-op ``python`` evaluator, the inline executor, ``random`` and
  ``map-elites`` proposers, every evaluation written pending, then recorded, elites
  updated, proposer checkpointed;
- Optuna: ``RandomSampler`` with ``RDBStorage`` on the same kind of storage, ``study.optimize``.

    python bench/loop_throughput.py [--evals 20000] [--optuna-trials 2000] [--storage sqlite|postgresql]

On PostgreSQL (``--postgres URL`` or ``ATLAS_TEST_POSTGRES_URL``) both run in fresh schemas
of that database, dropped afterwards.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sets sys.path)
from _common import scratch_storage


def atlas_rate(evals: int, algorithm: str, batch: int, url: str) -> tuple[float, float, float]:
    """(whole-run rate, steady rate, steady CPU rate): evaluations over the whole
    ``api.run`` (imports of the proposer's libraries, schema checks and set-up included);
    over the span from the first recorded result to the last (the loop alone); and over
    this process's CPU time in that span (what the loop would reach with a core of its
    own: on a shared machine the wall-clock rates fall with the load, this one much less)."""
    from search import api

    spec = {
        "name": f"loop-{algorithm}",
        "evaluator": {"kind": "python", "target": "bench._common:noop"},
        "space": {"a": {"type": "float", "low": 0, "high": 1}, "b": {"type": "float", "low": 0, "high": 1}},
        "measures": [{"name": "ma", "low": 0, "high": 1, "bins": 100},
                     {"name": "mb", "low": 0, "high": 1, "bins": 100}],
        "search": {"algorithm": algorithm, "budget": evals, "batch_size": batch, "max_in_flight": batch,
                   "seed": 0},
    }
    marks: list[tuple[float, float, int]] = []
    start = time.perf_counter()
    stats = api.run(spec, storage=url, executor="inline",
                    progress=lambda s: marks.append((time.perf_counter(), time.process_time(), s.finished)))
    elapsed = time.perf_counter() - start
    assert stats.finished == evals
    first = next((m for m in marks if m[2] > 0), None)
    if first is None or marks[-1][2] == first[2]:
        return evals / elapsed, evals / elapsed, float("nan")
    done = marks[-1][2] - first[2]
    return evals / elapsed, done / (marks[-1][0] - first[0]), done / max(marks[-1][1] - first[1], 1e-9)


def optuna_rate(trials: int, url: str) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(url)
    study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))

    def objective(trial: optuna.Trial) -> float:
        return trial.suggest_float("a", 0, 1) + 0 * trial.suggest_float("b", 0, 1)

    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    return trials / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--optuna-trials", type=int, default=2_000)
    parser.add_argument("--storage", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--postgres", default=os.environ.get("ATLAS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    with (tempfile.TemporaryDirectory() as tmp,
          scratch_storage(args.storage, Path(tmp), args.postgres, "atlas_loop") as ours,
          scratch_storage(args.storage, Path(tmp), args.postgres, "optuna_loop") as theirs):
        optuna = optuna_rate(args.optuna_trials, theirs)
        print(f"optuna RDB ({args.storage}), RandomSampler: {optuna:,.0f} trials/s ({args.optuna_trials} trials)")
        for algorithm in ("random", "map-elites"):
            rate, steady, cpu = atlas_rate(args.evals, algorithm, args.batch, ours)
            print(f"entropy-atlas {algorithm:<10} inline, {args.storage}: {rate:,.0f} evals/s whole run, "
                  f"{steady:,.0f} evals/s from the first result on, {cpu:,.0f} per CPU second "
                  f"({args.evals} evals, batch {args.batch}) -> {rate / optuna:.0f}x optuna")


if __name__ == "__main__":
    main()
