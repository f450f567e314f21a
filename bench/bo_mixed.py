"""``bo`` on a mixed space vs Optuna's TPE: best found at 60 evaluations, and seconds per proposal.

The space has what real campaigns have: a categorical ``kernel`` with a float ``gamma``
active under one choice only, a log-scaled ``lr`` and an int ``depth``. The objective
(maximised, at most 0.95) rewards the conditional branch only near its optimum:

    base = {linear: 0.60, poly: 0.70, rbf: 0.50 + 0.45·exp(−((γ − 0.3)/0.12)²)}
    f = base − 0.12·(log10 lr + 2.5)² − 0.008·(depth − 7)²

Both sides see the same space and budget, batch 2 (Optuna: two ``ask``s, then the two
``tell``s; the default ``TPESampler`` with the seed). Ours runs the whole campaign loop
(SQLite, inline executor). Time per proposal is timed apart, for both: after n = 50, 100
and 200 random observations, ``--asks`` proposals of a batch, each batch told before the
next; median and max, wall and this process's CPU seconds (the wall time depends on what
else runs on the cores: the load average is printed before and after). ``bo``'s first ask
after the n observations fits cold, as after a start or resume, and is reported apart.

    python bench/bo_mixed.py [--seeds 5] [--budget 60] [--batch 2] [--asks 8] [--timing-only]
"""

from __future__ import annotations

import argparse
import math
import os
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


class Clock:
    """Wall and CPU (this process's) seconds of the block, appended to ``into``."""

    def __init__(self, into: list[tuple[float, float]]) -> None:
        self.into = into

    def __enter__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def __exit__(self, *exc: object) -> None:
        self.into.append((time.perf_counter() - self.wall, time.process_time() - self.cpu))


def bo_proposal_times(n_obs: int, batch: int, asks: int, seed: int = 0) -> tuple[tuple[float, float],
                                                                                 list[tuple[float, float]]]:
    """(wall, CPU) seconds of ``bo``'s ``ask(batch)`` after ``n_obs`` random observations: the
    first ask (a cold fit, as after a start or resume), then ``asks`` more, each after the
    previous batch is told (warm-started, as every other ask of a running campaign)."""
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
    times: list[tuple[float, float]] = []
    told = n_obs
    for _ in range(asks + 1):
        with Clock(times):
            proposals = proposer.ask(batch)
        proposer.tell(observe([p.x for p in proposals], told))
        told += len(proposals)
    return times[0], times[1:]


def tpe_proposal_times(n_obs: int, batch: int, asks: int, seed: int = 0) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of Optuna TPE proposing ``batch`` points (``batch`` asks and the four
    suggests each) after ``n_obs`` random trials, ``asks`` times, each batch told before the next."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    rng = np.random.default_rng(seed)
    for _ in range(n_obs):
        kernel = str(rng.choice(["linear", "rbf", "poly"]))
        params: dict[str, Any] = {"kernel": kernel, "lr": float(10 ** rng.uniform(-5, -1)),
                                  "depth": int(rng.integers(1, 13))}
        dists: dict[str, Any] = {"kernel": CategoricalDistribution(["linear", "rbf", "poly"]),
                                 "lr": FloatDistribution(1e-5, 1e-1, log=True), "depth": IntDistribution(1, 12)}
        if kernel == "rbf":
            params["gamma"], dists["gamma"] = float(rng.random()), FloatDistribution(0.0, 1.0)
        value = score(kernel, params.get("gamma"), params["lr"], params["depth"])
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=value))
    times: list[tuple[float, float]] = []
    for _ in range(asks):
        with Clock(times):
            trials = [study.ask() for _ in range(batch)]
            points = []
            for trial in trials:
                kernel = trial.suggest_categorical("kernel", ["linear", "rbf", "poly"])
                gamma = trial.suggest_float("gamma", 0.0, 1.0) if kernel == "rbf" else None
                points.append((kernel, gamma, trial.suggest_float("lr", 1e-5, 1e-1, log=True),
                               trial.suggest_int("depth", 1, 12)))
        for trial, point in zip(trials, points, strict=True):
            study.tell(trial, score(*point))
    return times


def summary(times: list[tuple[float, float]]) -> str:
    """Median and max of the wall seconds, then of the CPU seconds."""
    wall, cpu = [t[0] for t in times], [t[1] for t in times]
    return (f"wall median {statistics.median(wall):.2f} max {max(wall):.2f} s, "
            f"CPU median {statistics.median(cpu):.2f} max {max(cpu):.2f} s")


def load() -> str:
    return "load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=60)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--asks", type=int, default=8, help="timed asks per n (after the first, cold one)")
    parser.add_argument("--timing-only", action="store_true")
    args = parser.parse_args()
    print(f"CPU: {_common.cpu_name()}")
    print(f"before: {load()}")
    bo_proposal_times(20, args.batch, 1)  # imports and first calls, not timed
    tpe_proposal_times(20, args.batch, 1)
    for n in (50, 100, 200):
        cold, steady = bo_proposal_times(n, args.batch, args.asks)
        print(f"n = {n:<3} bo  ask({args.batch}) x {len(steady)}: {summary(steady)}; first (cold fit) "
              f"{cold[0]:.2f} s, CPU {cold[1]:.2f} s", flush=True)
        tpe_times = tpe_proposal_times(n, args.batch, args.asks)
        print(f"n = {n:<3} tpe ask({args.batch}) x {args.asks}: {summary(tpe_times)}", flush=True)
    print(f"after: {load()}")
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
