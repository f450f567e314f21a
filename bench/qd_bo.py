"""Sample efficiency of ``qd-bo`` vs pyribs: BOP-Elites, MAP-Elites (iso+line), CMA-ME.

Linear-projection sphere and Rastrigin, dim 4 and 10, 10×10 grid, normalised QD-score
= QD-score / (100 × cells) (objectives are in [0, 100]), mean over seeds, side by side
in one run. Also the time per proposal of ``bo`` and ``qd-bo`` at 100, 500 and 1,000
observations.

    python bench/qd_bo.py [--budgets 200] [--seeds 5] [--dims 4 10] [--functions sphere rastrigin]
                          [--bop-elites-seeds 1] [--timing]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np

from workers.evaluators.benchmark import linear_projection

BINS = 10


def ranges(dim: int) -> list[tuple[float, float]]:
    bound = dim / 2 * 5.12
    return [(-bound, bound)] * 2


def pyribs_run(method: str, fn: str, dim: int, budget: int, seed: int, batch: int = 8) -> tuple[float, float]:
    from ribs.archives import GridArchive
    from ribs.emitters import BayesianOptimizationEmitter, EvolutionStrategyEmitter, IsoLineEmitter
    from ribs.schedulers import BayesianOptimizationScheduler, Scheduler

    archive = GridArchive(solution_dim=dim, dims=(BINS, BINS), ranges=ranges(dim), seed=seed)
    start = time.perf_counter()
    if method == "bop-elites":
        emitter = BayesianOptimizationEmitter(archive, bounds=[(-5.12, 5.12)] * dim, batch_size=batch, seed=seed,
                                              num_initial_samples=2 * (dim + 1))
        scheduler = BayesianOptimizationScheduler(archive, [emitter])
    elif method == "map-elites":
        scheduler = Scheduler(archive, [IsoLineEmitter(archive, iso_sigma=0.5, line_sigma=0.2, x0=np.zeros(dim),
                                                       batch_size=batch, seed=seed)])
    else:
        scheduler = Scheduler(archive, [EvolutionStrategyEmitter(archive, x0=np.zeros(dim), sigma0=0.5,
                                                                 batch_size=batch, seed=seed)])
    done, asks = 0, 0
    while done < budget:
        x = scheduler.ask()
        obj, meas = linear_projection(np.asarray(x), fn)
        scheduler.tell(obj, meas)
        done += len(x)
        asks += 1
    seconds = time.perf_counter() - start
    return float(archive.stats.qd_score) / (100 * BINS * BINS), seconds / asks


def atlas_run(fn: str, dim: int, budget: int, seed: int, workdir: Path, batch: int = 8) -> tuple[float, float]:
    from search import api

    bound = dim / 2 * 5.12
    spec = {
        "name": f"qdbo-{fn}-{dim}-{budget}-{seed}",
        "evaluator": {"kind": "benchmark", "config": {"function": fn, "dim": dim}},
        "space": {"x": {"type": "float", "low": -5.12, "high": 5.12, "size": dim}},
        "measures": [{"name": "m0", "low": -bound, "high": bound, "bins": BINS},
                     {"name": "m1", "low": -bound, "high": bound, "bins": BINS}],
        "search": {"algorithm": "qd-bo", "budget": budget, "batch_size": batch, "max_in_flight": batch,
                   "seed": seed},
    }
    start = time.perf_counter()
    stats = api.run(spec, storage=f"sqlite:///{workdir / 'qdbo.db'}", executor="inline")
    seconds = time.perf_counter() - start
    return stats.qd_score / (100 * BINS * BINS), seconds / (budget / batch)


def proposal_time(algorithm: str, n_obs: int, dim: int = 4) -> float:
    """Seconds for one ask of ``batch 8`` after ``n_obs`` observations."""
    from archive.layout import CellLayout, MeasureAxis
    from search.params import FloatParam
    from search.proposers import build_proposer
    from search.proposers.base import Observation, ProposerContext
    from search.space import SearchSpace

    space = SearchSpace({"x": FloatParam(type="float", low=-5.12, high=5.12, size=dim)})
    bound = dim / 2 * 5.12
    layout = CellLayout.build("grid", [MeasureAxis("m0", -bound, bound, BINS), MeasureAxis("m1", -bound, bound, BINS)])
    proposer = build_proposer(algorithm, ProposerContext(space=space, layout=layout, options={}, batch_size=8,
                                                         seed=0))
    rng = np.random.default_rng(0)
    u = rng.random((n_obs, dim))
    obj, meas = linear_projection(-5.12 + 10.24 * u, "sphere")
    proposer.tell([Observation(i, i, u[i], {}, float(obj[i]), meas[i], int(layout.index_of(meas[i : i + 1])[0]), {})
                   for i in range(n_obs)])
    start = time.perf_counter()
    proposer.ask(8)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, nargs="+", default=[200])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--dims", type=int, nargs="+", default=[4, 10])
    parser.add_argument("--functions", nargs="+", default=["sphere", "rastrigin"])
    parser.add_argument("--bop-elites-seeds", type=int, default=1)
    parser.add_argument("--timing", action="store_true", help="time per proposal of bo and qd-bo")
    args = parser.parse_args()
    if args.timing:
        for algorithm in ("bo", "qd-bo"):
            for n in (100, 500, 1000):
                print(f"time per proposal (batch 8, dim 4, CPU) {algorithm:<6} n={n:<5} "
                      f"{proposal_time(algorithm, n):.2f} s", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for fn in args.functions:
            for dim in args.dims:
                for budget in args.budgets:
                    rows: dict[str, list[tuple[float, float]]] = {}
                    for seed in range(args.seeds):
                        rows.setdefault("qd-bo", []).append(atlas_run(fn, dim, budget, seed, Path(tmp)))
                        for method in ("map-elites", "cma-me"):
                            rows.setdefault(method, []).append(pyribs_run(method, fn, dim, budget, seed))
                        if seed < args.bop_elites_seeds:
                            rows.setdefault("bop-elites", []).append(pyribs_run("bop-elites", fn, dim, budget, seed))
                    line = ", ".join(
                        f"{m} {np.mean([r[0] for r in v]):.3f} ({len(v)} seeds, {np.mean([r[1] for r in v]):.2f} s/ask)"
                        for m, v in rows.items())
                    ratio = np.mean([r[0] for r in rows["qd-bo"]]) / max(np.mean([r[0] for r in rows["map-elites"]]),
                                                                         1e-12)
                    print(f"{fn} dim {dim}, {budget} evals: {line}; qd-bo / map-elites {ratio:.1f}x", flush=True)


if __name__ == "__main__":
    main()
