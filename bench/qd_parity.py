"""QD parity: Entropy Atlas's ``map-elites`` (iso+line) and ``cma-me`` vs pyribs' own Scheduler.

Linear-projection sphere, dim 20, 100x100 grid, 1,000 iterations of 540 solutions
(540,000 evaluations), the settings of pyribs' examples/sphere.py: IsoLine
(σ_iso 0.5, σ_line 0.2, one emitter of 540) and CMA-ME (15 emitters × 36, σ0 0.5,
2imp ranker, filter selection, no_improvement restarts). Entropy Atlas works in the unit
cube of x ∈ [-10.24, 10.24]^20, so its σ's are the same steps divided by the width 20.48.
Every Entropy Atlas evaluation goes through the SQLite archive.

    python bench/qd_parity.py [--iterations 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401
import numpy as np

DIM, WIDTH, BINS = 20, 20.48, 100
BOUND = DIM / 2 * 5.12


def pyribs(algorithm: str, iterations: int, seed: int) -> tuple[float, float, float]:
    from ribs.archives import GridArchive
    from ribs.emitters import EvolutionStrategyEmitter, IsoLineEmitter
    from ribs.schedulers import Scheduler

    from workers.evaluators.benchmark import linear_projection

    archive = GridArchive(solution_dim=DIM, dims=(BINS, BINS), ranges=[(-BOUND, BOUND)] * 2, seed=seed)
    seeds = np.random.SeedSequence(seed).spawn(15)
    if algorithm == "map-elites":
        emitters = [IsoLineEmitter(archive, iso_sigma=0.5, line_sigma=0.2, x0=np.zeros(DIM), batch_size=540,
                                   seed=int(seeds[0].generate_state(1)[0]))]
    else:
        emitters = [EvolutionStrategyEmitter(archive, x0=np.zeros(DIM), sigma0=0.5, ranker="2imp",
                                             selection_rule="filter", restart_rule="no_improvement",
                                             batch_size=36, seed=int(s.generate_state(1)[0])) for s in seeds]
    scheduler = Scheduler(archive, emitters)
    start = time.perf_counter()
    for _ in range(iterations):
        x = scheduler.ask()
        obj, meas = linear_projection(x, "sphere")
        scheduler.tell(obj, meas)
    elapsed = time.perf_counter() - start
    return float(archive.stats.qd_score), float(archive.stats.coverage), iterations * 540 / elapsed


def atlas(algorithm: str, iterations: int, seed: int, workdir: Path) -> tuple[float, float, float]:
    from search import api

    step = 0.5 / WIDTH
    if algorithm == "map-elites":
        options = {"variation": "iso_line", "iso_sigma": step, "line_sigma": 0.2, "random_init": 0}
    else:
        options = {"emitters": 15, "sigma0": step}
    spec = {
        "name": f"parity-{algorithm}",
        "evaluator": {"kind": "benchmark", "config": {"function": "sphere", "dim": DIM}},
        "space": {"x": {"type": "float", "low": -WIDTH / 2, "high": WIDTH / 2, "size": DIM}},
        "measures": [{"name": "m0", "low": -BOUND, "high": BOUND, "bins": BINS},
                     {"name": "m1", "low": -BOUND, "high": BOUND, "bins": BINS}],
        "search": {"algorithm": algorithm, "options": options, "budget": iterations * 540, "batch_size": 540,
                   "max_in_flight": 540, "seed": seed},
    }
    start = time.perf_counter()
    stats = api.run(spec, storage=f"sqlite:///{workdir / (algorithm + '.db')}", executor="inline")
    elapsed = time.perf_counter() - start
    return stats.qd_score, stats.coverage, stats.finished / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for algorithm in ("map-elites", "cma-me"):
            ref_qd, ref_cov, ref_rate = pyribs(algorithm, args.iterations, args.seed)
            qd, cov, rate = atlas(algorithm, args.iterations, args.seed, Path(tmp))
            print(f"{algorithm:<10} pyribs: QD {ref_qd:,.0f} cov {ref_cov:.3f} ({ref_rate:,.0f} evals/s) | "
                  f"entropy-atlas: QD {qd:,.0f} cov {cov:.3f} ({rate:,.0f} evals/s, SQLite) | "
                  f"QD ratio {qd / ref_qd:.4f}", flush=True)


if __name__ == "__main__":
    main()
