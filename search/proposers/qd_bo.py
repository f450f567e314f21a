"""``qd-bo``: Bayesian optimisation of the whole elite map.

GP models (BoTorch) of the fitness f and of each measure m_j, fitted on every evaluation.

**EJIE** (BOP-Elites, Kent & Branke): the expected joint improvement of elites,

    EJIE(x) = Σ_c P(x ∈ c) · EI_c(x),
    EI_c(x) = (μ_f − f*_c) Φ(z) + σ_f φ(z),   z = (μ_f − f*_c) / σ_f,

where f*_c is cell c's elite fitness (``archive.qd_offset``, the zero of the QD-score,
for an empty cell). For a grid, P(x ∈ c) = Π_j [Φ((u_cj − μ_j)/σ_j) − Φ((l_cj − μ_j)/σ_j)]
with the outermost bin edges at ±∞ (measures outside the range are clipped into the edge
cells); for a CVT it is estimated from posterior samples of the measures assigned to
their nearest centroid. Candidates: scrambled Sobol points plus Gaussian perturbations
of elites, then a few rounds of local refinement around the best. A batch is chosen
greedily: after each pick (and for each evaluation in flight) the elite fitness of the
cells it will probably land in is raised to its predicted mean ("kriging believer"), and
nearby candidates are dropped. Failed points are never proposed again.

**SAIL** (``acquisition: sail``, Gaier et al.): illuminate the upper confidence bound
μ_f + κ σ_f over the predicted measures with MAP-Elites on the surrogate (pyribs
iso+line emitters), seeded with every evaluated point; then evaluate elites of that
acquisition map in cells chosen by a scrambled Sobol sequence over measure space.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.stats import qmc

from search.proposers import gp
from search.proposers.base import Observation, ProposerContext
from search.proposers.bo import BoProposer

MAX_SCORE_ELEMENTS = 20_000_000  # candidates × cells per scoring pass


def sobol_points(dim: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``n`` points of a scrambled Sobol sequence, drawn as a power of two of
    them (the same points ``Sobol.random(n)`` gives, without SciPy's warning that a count
    that is not a power of two loses the sequence's balance)."""
    return qmc.Sobol(dim, scramble=True, seed=rng).random_base2(max(0, math.ceil(math.log2(max(n, 1)))))[:n]


class QdBoProposer(BoProposer):
    name = "qd-bo"
    option_names = ("initial_design", "acquisition", "candidates", "kappa", "sail_generations", "sail_batch",
                    "mc_samples")
    ignored_options = ("num_restarts", "raw_samples")  # bo's: qd-bo scores candidate sets, it optimises nothing

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.acquisition = self.choice_option("acquisition", "ejie", ("ejie", "sail"))
        self.n_candidates = self.int_option("candidates", 2048, minimum=16)
        self.kappa = self.number_option("kappa", 1.0, minimum=0)
        self.sail_generations = self.int_option("sail_generations", 50)
        self.sail_batch = self.int_option("sail_batch", 100)
        self.mc_samples = self.int_option("mc_samples", 64)
        self.layout = ctx.layout
        k = len(self.layout.axes)
        self.offset = ctx.qd_offset
        if self.layout.kind == "grid":
            self.edges = [np.concatenate(([-np.inf], np.linspace(a.low, a.high, a.bins + 1)[1:-1], [np.inf]))
                          for a in self.layout.axes]
        self.k = k

    def outcome(self, o: Observation) -> np.ndarray | None:
        if o.fitness is None or o.measures is None:
            return None
        return np.concatenate([[o.fitness], np.asarray(o.measures, dtype=float)])

    # -- the model and the map it predicts ------------------------------------
    def _elite_fitness(self) -> np.ndarray:
        """f*_c of every cell: its elite fitness under the archive's replacement rule
        (:func:`archive.stats.elite_fitness`), raised to ``qd_offset`` (an empty cell's)."""
        from archive.stats import elite_fitness

        if not self.book.y:
            return np.full(self.layout.cells, self.offset, dtype=float)
        y = np.stack(self.book.y)
        cells = self.layout.index_of(y[:, 1:])
        return np.maximum(elite_fitness(cells, y[:, 0], self.layout.cells), self.offset)

    def _posterior(self, model: object, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dev = gp.device()
        with torch.no_grad():
            post = model.posterior(gp.tensor(self.encoder.to_model(x), dev))  # type: ignore[attr-defined]
            mean = post.mean.detach().cpu().numpy()
            std = post.variance.clamp_min(1e-12).sqrt().detach().cpu().numpy()
        return mean, std

    def _cell_probabilities(self, mean: np.ndarray, std: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """P(x ∈ c) for every candidate (rows) and cell (columns)."""
        from scipy.stats import norm

        n = len(mean)
        if self.layout.kind == "grid":
            probs = None
            for j, edges in enumerate(self.edges):
                cdf = norm.cdf((edges[None, :] - mean[:, j : j + 1]) / std[:, j : j + 1])
                pj = np.diff(cdf, axis=1)  # n × bins_j
                probs = pj if probs is None else (probs[:, :, None] * pj[:, None, :]).reshape(n, -1)
            assert probs is not None
            return probs
        tree = cKDTree(self.layout.centroids)
        draws = mean[:, None, :] + std[:, None, :] * rng.standard_normal((n, self.mc_samples, self.k))
        cells = tree.query(draws.reshape(-1, self.k))[1].reshape(n, self.mc_samples)
        probs = np.zeros((n, self.layout.cells))
        np.add.at(probs, (np.repeat(np.arange(n), self.mc_samples), cells.ravel()), 1.0 / self.mc_samples)
        return probs

    def _ejie(self, mean: np.ndarray, std: np.ndarray, best: np.ndarray,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        from scipy.stats import norm

        probs = self._cell_probabilities(mean[:, 1:], std[:, 1:], rng)
        mu, sigma = mean[:, :1], std[:, :1]
        z = (mu - best[None, :]) / sigma
        ei = (mu - best[None, :]) * norm.cdf(z) + sigma * norm.pdf(z)
        return (probs * ei).sum(axis=1), probs

    # -- proposals ---------------------------------------------------------------
    def suggest(self, n: int, rng: np.random.Generator) -> np.ndarray:
        dev = gp.device()
        x = gp.tensor(self.encoder.to_model(np.stack(self.book.x)), dev)
        y = gp.tensor(np.stack(self.book.y), dev)
        model = gp.fit_model_list(x, y, self.encoder.cat_dims)
        if self.acquisition == "sail":
            return self._sail(model, n, rng)
        return self._ejie_batch(model, n, rng)

    def _candidates(self, rng: np.random.Generator) -> np.ndarray:
        dim = self.ctx.space.dim
        per_pass = max(16, min(self.n_candidates, MAX_SCORE_ELEMENTS // max(1, self.layout.cells)))
        sobol = sobol_points(dim, per_pass // 2, rng)
        parents = np.stack(self.book.x)[rng.integers(len(self.book.x), size=per_pass - len(sobol))]
        local = np.clip(parents + rng.normal(0, 0.05, parents.shape), 0, 1)
        return np.vstack([sobol, local])

    def _ejie_batch(self, model: object, n: int, rng: np.random.Generator) -> np.ndarray:
        best = self._elite_fitness()
        believe = list(self.book.pending.values())
        if believe:  # evaluations in flight will probably fill their cells: believe the mean
            mean, std = self._posterior(model, np.stack(believe))
            probs = self._cell_probabilities(mean[:, 1:], std[:, 1:], rng)
            for row, likely in zip(mean, probs, strict=True):
                cells = likely > 0.2
                best[cells] = np.maximum(best[cells], row[0])
        cand = self._candidates(rng)
        avoid = self.book.avoid()
        chosen: list[np.ndarray] = []
        for _ in range(n):
            mean, std = self._posterior(model, cand)
            score, probs = self._ejie(mean, std, best, rng)
            taken = np.vstack([avoid, *chosen])
            if len(taken):
                near = cKDTree(taken).query(cand)[0] < 1e-3
                score[near] = -np.inf
            top = cand[np.argsort(score)[-8:]]
            # local refinement around the best candidates (a small pattern search)
            for scale in (0.02, 0.005):
                local = np.clip(np.repeat(top, 16, axis=0) + rng.normal(0, scale, (len(top) * 16, cand.shape[1])),
                                0, 1)
                lm, ls = self._posterior(model, local)
                lscore, _ = self._ejie(lm, ls, best, rng)
                pool = np.vstack([top, local])
                pool_score = np.concatenate([np.sort(score)[-8:], lscore])
                top = pool[np.argsort(pool_score)[-8:]]
            pick = top[-1]
            chosen.append(self.encoder.from_model(self.encoder.to_model(pick)))
            pm, ps = self._posterior(model, pick[None, :])
            likely = self._cell_probabilities(pm[:, 1:], ps[:, 1:], rng)[0] > 0.2
            best[likely] = np.maximum(best[likely], pm[0, 0])
        return np.stack(chosen)

    def _sail(self, model: object, n: int, rng: np.random.Generator) -> np.ndarray:
        from ribs.emitters import IsoLineEmitter

        dim = self.ctx.space.dim
        archive = self.layout.make_archive(solution_dim=dim, seed=int(rng.integers(2**31)))
        seeds = np.stack(self.book.x)
        mean, std = self._posterior(model, seeds)
        archive.add(solution=seeds, objective=mean[:, 0] + self.kappa * std[:, 0], measures=mean[:, 1:])
        emitter = IsoLineEmitter(archive, iso_sigma=0.02, line_sigma=0.2, x0=np.full(dim, 0.5),
                                 bounds=[(0.0, 1.0)] * dim, batch_size=self.sail_batch,
                                 seed=int(rng.integers(2**31)))
        for _ in range(self.sail_generations):
            sols = emitter.ask()
            m, s = self._posterior(model, sols)
            archive.add(solution=sols, objective=m[:, 0] + self.kappa * s[:, 0], measures=m[:, 1:])
        data = archive.data()
        elites, cells = np.asarray(data["solution"]), np.asarray(data["index"])
        by_cell = dict(zip(cells.tolist(), range(len(cells)), strict=True))
        lows = np.array([a.low for a in self.layout.axes])
        highs = np.array([a.high for a in self.layout.axes])
        sobol = sobol_points(self.k, 8 * n, rng)
        wanted = self.layout.index_of(lows + sobol * (highs - lows))
        avoid = self.book.avoid()
        taken_tree = cKDTree(avoid) if len(avoid) else None
        picks: list[np.ndarray] = []
        for cell in wanted:
            if len(picks) == n:
                break
            i = by_cell.get(int(cell))
            if i is None:
                continue
            x = elites[i]
            if taken_tree is not None and taken_tree.query(x)[0] < 1e-6:
                continue
            if any(np.allclose(x, p) for p in picks):
                continue
            picks.append(x)
        while len(picks) < n:  # a sparse acquisition map: top up with random elites
            picks.append(elites[rng.integers(len(elites))] if len(elites) else rng.random(dim))
        return self.encoder.from_model(self.encoder.to_model(np.stack(picks)))
