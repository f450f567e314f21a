"""Loop throughput: evaluations recorded per second, Entropy Atlas vs Optuna's RDB storage.

Same trivial objective, same SQLite-file kind of storage, same machine, one run:
- Entropy Atlas: a no-op ``python`` evaluator, the inline executor, ``random`` and
  ``map-elites`` proposers, every evaluation written pending, then recorded, elites
  updated, proposer checkpointed;
- Optuna: ``RandomSampler`` with ``RDBStorage`` on a SQLite file, ``study.optimize``.

    python bench/loop_throughput.py [--evals 20000] [--optuna-trials 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (sets sys.path)


def atlas_rate(evals: int, algorithm: str, batch: int, workdir: Path) -> tuple[float, float]:
    """(whole-run rate, steady rate): evaluations over the whole ``api.run`` (imports of the
    proposer's libraries, schema checks and set-up included), and over the span from the
    first recorded result to the last (the loop alone)."""
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
    url = f"sqlite:///{workdir / f'atlas-{algorithm}.db'}"
    marks: list[tuple[float, int]] = []
    start = time.perf_counter()
    stats = api.run(spec, storage=url, executor="inline",
                    progress=lambda s: marks.append((time.perf_counter(), s.finished)))
    elapsed = time.perf_counter() - start
    assert stats.finished == evals
    first = next((m for m in marks if m[1] > 0), (start, 0))
    steady = (evals - first[1]) / max(marks[-1][0] - first[0], 1e-9) if marks else evals / elapsed
    return evals / elapsed, steady


def optuna_rate(trials: int, workdir: Path) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{workdir / 'optuna.db'}")
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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        optuna = optuna_rate(args.optuna_trials, work)
        print(f"optuna RDB (SQLite file), RandomSampler: {optuna:,.0f} trials/s ({args.optuna_trials} trials)")
        for algorithm in ("random", "map-elites"):
            rate, steady = atlas_rate(args.evals, algorithm, args.batch, work)
            print(f"entropy-atlas {algorithm:<10} inline, SQLite file: {rate:,.0f} evals/s whole run, "
                  f"{steady:,.0f} evals/s from the first result on ({args.evals} evals, batch {args.batch}) "
                  f"-> {rate / optuna:.0f}x optuna")


if __name__ == "__main__":
    main()
