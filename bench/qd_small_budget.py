"""Small-budget QD: Entropy Atlas's default ``map-elites`` vs pyribs' standard emitter settings.

Linear-projection sphere and Rastrigin (``workers/evaluators/benchmark.py``), x ∈
[-5.12, 5.12]^d for d = 4, 6, 10, 20, measures the two half-sums on a 15×15 grid over
[-d/2·5.12, d/2·5.12]² (the LP convention of ``qd_bo.py``), budgets 1,000, 3,000 and
10,000 evaluations, batch 36 per ask, 5 seeds. Normalised QD-score = QD-score /
(100 × 225) (objectives are in [0, 100]).

Peers, each through pyribs' own ``Scheduler`` (36 solutions per ask), with the domain as
``bounds`` (children clipped, CMA-ES resampled into it, as Entropy Atlas's unit cube
does), started from x0 = 0:

- ``gauss-0.5``, ``gauss-0.1``: GaussianEmitter, σ 0.5 and 0.1 (x-space);
- ``iso-0.5``, ``iso-0.1``: IsoLineEmitter, σ_iso 0.5 / σ_line 0.2 (pyribs' sphere
  example) and σ_iso 0.1 / σ_line 0.2;
- ``cma-me``: 3 EvolutionStrategyEmitters × 12, σ0 0.5, 2imp ranker, filter selection,
  no_improvement restarts;
- ``cma-mae``: 3 EvolutionStrategyEmitters × 12, σ0 0.5, imp ranker, mu selection, basic
  restarts, archive learning_rate 0.01 and threshold_min 0, scored on a separate result
  archive (every evaluation's best per cell).

Ours: ``map-elites`` with its DEFAULT options through ``api.run`` (SQLite in a temporary
directory, inline executor), the benchmark evaluator, in the unit cube of x (one unit of
the cube is 10.24 in x-space; pyribs' σ 0.5 is 0.049 there).

Each (method, problem, seed) runs once to the largest budget; the score at a smaller
budget is that of its first N evaluations (in the order they were made), the same for
every method (a run to budget N makes the same first N evaluations, but for the last
ask's share-out). pyribs' best is the best mean over its settings per (problem, budget),
and the ratio is ours / that, with its standard error over the seeds (the two means'
relative standard errors added in quadrature): a ratio within one s.e. of 1 is a tie.

    python bench/qd_small_budget.py [--quick] [--seeds 5] [--first-seed 0] [--dims 4 6 10 20]
                                    [--functions sphere rastrigin] [--budgets 1000 3000 10000]

``--quick``: 2 seeds, dims 4 and 20, budgets 1,000 and 3,000 (about a minute).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np

from workers.evaluators.benchmark import linear_projection

BINS, BATCH, LOW, HIGH = 15, 36, -5.12, 5.12
PYRIBS = ("gauss-0.5", "gauss-0.1", "iso-0.5", "iso-0.1", "cma-me", "cma-mae")


def bound(dim: int) -> float:
    return dim / 2 * 5.12


def normalised_qd(objective: np.ndarray, measures: np.ndarray, dim: int, n: int) -> float:
    """Normalised QD-score of the first ``n`` evaluations: the best per cell, summed,
    over 100 × cells (measures clipped into the edge cells, as a ribs GridArchive does)."""
    b = bound(dim)
    cells = np.clip(np.floor((measures[:n] + b) / (2 * b) * BINS).astype(int), 0, BINS - 1)
    flat = cells[:, 0] * BINS + cells[:, 1]
    best = np.full(BINS * BINS, -np.inf)
    np.maximum.at(best, flat, objective[:n])
    return float(best[np.isfinite(best)].sum()) / (100 * BINS * BINS)


def relative_se(scores: list[float]) -> float:
    """The standard error of the mean of ``scores`` over that mean (0 for one seed)."""
    if len(scores) < 2:
        return 0.0
    return float(np.std(scores, ddof=1) / np.sqrt(len(scores)) / max(abs(np.mean(scores)), 1e-12))


def pyribs_stream(setting: str, fn: str, dim: int, budget: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Objectives and measures of every evaluation of pyribs ``setting``, in order."""
    from ribs.archives import GridArchive
    from ribs.emitters import EvolutionStrategyEmitter, GaussianEmitter, IsoLineEmitter
    from ribs.schedulers import Scheduler

    b = bound(dim)
    mae = setting == "cma-mae"
    archive = GridArchive(solution_dim=dim, dims=(BINS, BINS), ranges=[(-b, b)] * 2, seed=seed,
                          **({"learning_rate": 0.01, "threshold_min": 0.0} if mae else {}))
    result = GridArchive(solution_dim=dim, dims=(BINS, BINS), ranges=[(-b, b)] * 2) if mae else None
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(3)]
    common = {"x0": np.zeros(dim), "bounds": [(LOW, HIGH)] * dim}
    if setting.startswith("gauss"):
        emitters = [GaussianEmitter(archive, sigma=float(setting.split("-")[1]), batch_size=BATCH, seed=seeds[0],
                                    **common)]
    elif setting.startswith("iso"):
        emitters = [IsoLineEmitter(archive, iso_sigma=float(setting.split("-")[1]), line_sigma=0.2,
                                   batch_size=BATCH, seed=seeds[0], **common)]
    else:
        rules = ({"ranker": "imp", "selection_rule": "mu", "restart_rule": "basic"} if mae else
                 {"ranker": "2imp", "selection_rule": "filter", "restart_rule": "no_improvement"})
        emitters = [EvolutionStrategyEmitter(archive, sigma0=0.5, batch_size=BATCH // 3, seed=s, **rules, **common)
                    for s in seeds]
    scheduler = Scheduler(archive, emitters, result_archive=result)
    objs, meas = [], []
    done = 0
    while done < budget:
        x = scheduler.ask()
        obj, m = linear_projection(np.asarray(x), fn)
        scheduler.tell(obj, m)
        objs.append(obj)
        meas.append(m)
        done += len(x)
    return np.concatenate(objs), np.concatenate(meas)


def atlas_stream(fn: str, dim: int, budget: int, seed: int, workdir: Path,
                 options: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Objectives and measures of our ``map-elites`` (default options unless given), in
    the order the evaluations were made."""
    import archive
    from search import api

    b = bound(dim)
    name = f"small-{fn}-{dim}-{seed}"
    spec = {
        "name": name,
        "evaluator": {"kind": "benchmark", "config": {"function": fn, "dim": dim}},
        "space": {"x": {"type": "float", "low": LOW, "high": HIGH, "size": dim}},
        "measures": [{"name": "m0", "low": -b, "high": b, "bins": BINS},
                     {"name": "m1", "low": -b, "high": b, "bins": BINS}],
        "search": {"algorithm": "map-elites", "budget": budget, "batch_size": BATCH, "max_in_flight": BATCH,
                   "seed": seed, **({"options": options} if options else {})},
    }
    url = f"sqlite:///{workdir / (name + '.db')}"
    api.run(spec, storage=url, executor="inline")
    with archive.open(url) as handle:
        rows = sorted((r for r in handle.campaign(name).evaluations() if r["status"] == "done"),
                      key=lambda r: r["seq"])
    return (np.array([r["objective"] for r in rows], dtype=float),
            np.array([[r["measures"]["m0"], r["measures"]["m1"]] for r in rows], dtype=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, dims 4 and 20, budgets 1,000 and 3,000")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed … first-seed + seeds - 1")
    parser.add_argument("--dims", type=int, nargs="+", default=None)
    parser.add_argument("--functions", nargs="+", default=["sphere", "rastrigin"])
    parser.add_argument("--budgets", type=int, nargs="+", default=None)
    args = parser.parse_args()
    seeds = args.seeds or (2 if args.quick else 5)
    dims = args.dims or ([4, 20] if args.quick else [4, 6, 10, 20])
    budgets = sorted(args.budgets or ([1000, 3000] if args.quick else [1000, 3000, 10000]))
    methods = ("ours", *PYRIBS)
    print(f"batch {BATCH}, grid {BINS}x{BINS}, seeds {args.first_seed}-{args.first_seed + seeds - 1}; "
          "mean normalised QD-score per method", flush=True)
    print(f"{'problem':<16}{'budget':>7} " + " ".join(f"{m:>9}" for m in methods)
          + f" {'pyribs best':>12} {'ratio':>7} {'s.e.':>7}", flush=True)
    start = time.perf_counter()
    ratios, ties = [], 0
    with tempfile.TemporaryDirectory() as tmp:
        for fn in args.functions:
            for dim in dims:
                scores: dict[str, dict[int, list[float]]] = {m: {n: [] for n in budgets} for m in methods}
                for seed in range(args.first_seed, args.first_seed + seeds):
                    streams = {"ours": atlas_stream(fn, dim, budgets[-1], seed, Path(tmp))}
                    streams |= {m: pyribs_stream(m, fn, dim, budgets[-1], seed) for m in PYRIBS}
                    for m, (obj, meas) in streams.items():
                        for n in budgets:
                            scores[m][n].append(normalised_qd(obj, meas, dim, n))
                for n in budgets:
                    mean = {m: float(np.mean(scores[m][n])) for m in methods}
                    best = max(PYRIBS, key=lambda m: mean[m])
                    ratio = mean["ours"] / max(mean[best], 1e-12)
                    se = ratio * float(np.hypot(*(relative_se(scores[m][n]) for m in ("ours", best))))
                    ratios.append(ratio)
                    ties += ratio < 1.0 <= ratio + se
                    print(f"{fn + '-LP d' + str(dim):<16}{n:>7} " + " ".join(f"{mean[m]:>9.3f}" for m in methods)
                          + f" {best:>12} {ratio:>7.4f} {se:>7.4f}", flush=True)
    print(f"ratio ours / pyribs best: min {min(ratios):.4f}, mean {np.mean(ratios):.3f}, "
          f"{sum(r >= 1.0 for r in ratios)}/{len(ratios)} at >= 1.0 and {ties} under it by less than one s.e.; "
          f"{time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
