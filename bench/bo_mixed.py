"""``bo`` on a mixed space vs Optuna's TPE: best found at 60 evaluations, and seconds per proposal.

The space has what real campaigns have: a categorical ``kernel`` with a float ``gamma``
active under one choice only, a log-scaled ``lr`` and an int ``depth``. The objective
(maximised, at most 0.95) rewards the conditional branch only near its optimum:

    base = {linear: 0.60, poly: 0.70, rbf: 0.50 + 0.45·exp(−((γ − 0.3)/0.12)²)}
    f = base − 0.12·(log10 lr + 2.5)² − 0.008·(depth − 7)²

Both sides see the same space and budget, batch 2 (Optuna: two ``ask``s, then the two
``tell``s; the default ``TPESampler`` with the seed). Ours runs the whole campaign loop
(SQLite, inline executor); its time per proposal is timed separately, one ``ask(2)``
after n = 50, 100 and 200 observations.

    python bench/bo_mixed.py [--seeds 5] [--budget 60] [--batch 2] [--timing-only]
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _common
import numpy as np

SPACE: dict[str, Any] = {
    "kernel": {"type": "categorical", "choices": ["linear", "rbf", "poly"]},
    "gamma": {"type": "float", "low": 0.0, "high": 1.0, "when": {"kernel": "rbf"}},
    "lr": {"type": "float", "low": 1e-5, "high": 1e-1, "log": True},
    "depth": {"type": "int", "low": 1, "high": 12},
}
OPTIMUM = 0.95


def score(kernel: str, gamma: float | None, lr: float, depth: int) -> float:
    """The objective above."""
    if kernel == "rbf":
        base = 0.50 + 0.45 * math.exp(-(((gamma if gamma is not None else 0.5) - 0.3) / 0.12) ** 2)
    else:
        base = {"linear": 0.60, "poly": 0.70}[kernel]
    return base - 0.12 * (math.log10(lr) + 2.5) ** 2 - 0.008 * (depth - 7) ** 2


def mixed_objective(params: dict, ctx: object) -> dict:
    """The campaign's ``python`` evaluator."""
    value = score(params["kernel"], params.get("gamma"), float(params["lr"]), int(params["depth"]))
    return {"objective": value, "measures": {"depth": float(params["depth"])}}


def campaign(seed: int, budget: int, batch: int) -> dict[str, Any]:
    return {
        "name": f"bo-mixed-{seed}",
        "evaluator": {"kind": "python", "target": "bo_mixed:mixed_objective"},
        "space": SPACE,
        "objective": {"name": "objective", "direction": "maximize"},
        "measures": [{"name": "depth", "low": 1, "high": 12, "bins": 1}],  # one cell: plain optimisation
        "search": {"algorithm": "bo", "budget": budget, "batch_size": batch, "max_in_flight": batch, "seed": seed},
    }


def ours(seed: int, budget: int, batch: int, workdir: Path) -> tuple[float, float]:
    from search import api

    start = time.perf_counter()
    stats = api.run(campaign(seed, budget, batch), storage=f"sqlite:///{workdir / f'bo-{seed}.db'}",
                    executor="inline")
    return float(stats.best_objective), time.perf_counter() - start


def tpe(seed: int, budget: int, batch: int) -> tuple[float, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    done = 0
    while done < budget:
        trials = [study.ask() for _ in range(min(batch, budget - done))]
        for trial in trials:
            kernel = trial.suggest_categorical("kernel", ["linear", "rbf", "poly"])
            gamma = trial.suggest_float("gamma", 0.0, 1.0) if kernel == "rbf" else None
            lr = trial.suggest_float("lr", 1e-5, 1e-1, log=True)
            depth = trial.suggest_int("depth", 1, 12)
            study.tell(trial, score(kernel, gamma, lr, depth))
        done += len(trials)
    return float(study.best_value), time.perf_counter() - start


def proposal_seconds(n_obs: int, batch: int, seed: int = 0) -> tuple[float, float]:
    """Seconds of ``bo``'s ``ask(batch)`` after ``n_obs`` random observations: the first
    ask (a cold fit), then the next one, after the first's points are told (warm-started,
    as every ask of a running campaign but its first after a start or a resume)."""
    from search.api import as_spec
    from search.campaigns import layout_for
    from search.proposers import build_proposer
    from search.proposers.base import Observation, ProposerContext
    from search.space import SearchSpace

    spec = as_spec(campaign(seed, 200, batch))
    space = SearchSpace(spec.space)
    proposer = build_proposer("bo", ProposerContext(space=space, layout=layout_for(spec), options={},
                                                    batch_size=batch, seed=seed))
    rng = np.random.default_rng(seed)

    def observe(points: list[np.ndarray], first: int) -> list[Observation]:
        out = []
        for i, u in enumerate(points):
            params = space.decode(u)
            out.append(Observation(first + i, first + i, u, params, mixed_objective(params, None)["objective"],
                                   None, None, {}))
        return out

    proposer.tell(observe(list(rng.random((n_obs, space.dim))), 0))
    start = time.perf_counter()
    first = proposer.ask(batch)
    cold = time.perf_counter() - start
    proposer.tell(observe([p.x for p in first], n_obs))
    start = time.perf_counter()
    proposer.ask(batch)
    return cold, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--timing-only", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {_common.cpu_name()}")
    proposal_seconds(20, args.batch)  # imports and first calls, not timed
    for n in (50, 100, 200):
        cold, warm = proposal_seconds(n, args.batch)
        print(f"bo, ask({args.batch}) after n = {n:<3} observations: {warm:.2f} s "
              f"(the first after a start or resume, a cold fit: {cold:.2f} s)", flush=True)
    if args.timing_only:
        return
    rows: dict[str, list[tuple[float, float]]] = {"bo": [], "tpe": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            rows["bo"].append(ours(seed, args.budget, args.batch, Path(tmp)))
            rows["tpe"].append(tpe(seed, args.budget, args.batch))
            print(f"seed {seed}: bo best {rows['bo'][-1][0]:.4f} ({rows['bo'][-1][1]:.1f} s), "
                  f"tpe best {rows['tpe'][-1][0]:.4f} ({rows['tpe'][-1][1]:.1f} s)", flush=True)
    for name, values in rows.items():
        best = [v[0] for v in values]
        print(f"{name:<4} best at {args.budget} evals: mean {statistics.mean(best):.4f} "
              f"(s.e. {statistics.stdev(best) / math.sqrt(len(best)) if len(best) > 1 else 0:.4f}; "
              f"optimum {OPTIMUM}), wall {statistics.mean(v[1] for v in values):.1f} s per campaign")
    reached = sum(v[0] >= OPTIMUM - 1e-3 for v in rows["bo"])
    reached_tpe = sum(v[0] >= OPTIMUM - 1e-3 for v in rows["tpe"])
    mean_bo = statistics.mean(v[0] for v in rows["bo"])
    mean_tpe = statistics.mean(v[0] for v in rows["tpe"])
    print(f"bo / tpe best found: {mean_bo / mean_tpe:.3f}x; within 1e-3 of the optimum: "
          f"bo {reached}/{len(rows['bo'])}, tpe {reached_tpe}/{len(rows['tpe'])}")

if __name__ == "__main__":
    main()
