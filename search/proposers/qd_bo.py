"""``qd-bo``: Bayesian optimisation of the whole elite map.

GP models (BoTorch) of the fitness f and of each measure m_j, one per outcome, each
warm-started from that outcome's fit at the previous ask (:meth:`BoProposer.fit_outcomes
<search.proposers.bo.BoProposer.fit_outcomes>`: at most ``gp.WARM_FIT_MAXITER`` iterations)
while it is fitted on at most ``gp.WARM_FIT_GROWTH`` times the observations of the
outcome's last cold fit, else cold, as is the first; fitted on every
evaluation up to ``max_fit_points`` (:class:`search.proposers.bo.BoProposer`); past it, on
every current elite (the best first) and at least half the bound of the best others, the
rest a sample drawn from (seed, ask number) (:meth:`QdBoProposer.fit_order`). The elite
fitnesses f*_c, the candidates' parents and the points no proposal repeats are still
taken from every evaluation.

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
cells it will probably land in is raised to its predicted mean ("kriging believer").

No proposal repeats a point evaluated, in flight, failed or picked earlier in its batch
(:func:`search.proposers.acquisition.duplicates`: within ``DUPLICATE_TOL`` in every
coordinate of the unit cube; perturbations clipped to the cube's edge land on the same
point): such candidates, refined ones included, are never picked, and when none is left,
a fresh scrambled Sobol point is (:func:`search.proposers.acquisition.fresh_points`).

**SAIL** (``acquisition: sail``, Gaier et al.): illuminate the upper confidence bound
μ_f + κ σ_f over the predicted measures with MAP-Elites on the surrogate (pyribs
iso+line emitters), seeded with every evaluated point; then evaluate elites of that
acquisition map in cells chosen by a scrambled Sobol sequence over measure space (an elite
that repeats a point is skipped; a batch short of elites is topped up with other elites of
the map, then fresh Sobol points).

The GPs are fitted on standardised outcomes (:func:`search.proposers.gp.standardise`, any
finite magnitude); their posteriors are mapped back to the outcomes' units, in which the
elite fitnesses and the cell edges are.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.stats import qmc

from search.proposers import gp
from search.proposers.acquisition import canonical, duplicates, fresh_points
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
                    "mc_samples", "max_fit_points")
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
        self.outcome_scale: gp.OutcomeScale | None = None  # this ask's: the models' outcomes -> the outcomes' units

    def outcome(self, o: Observation) -> np.ndarray | None:
        if o.fitness is None or o.measures is None:
            return None
        return np.concatenate([[o.fitness], np.asarray(o.measures, dtype=float)])

    # -- the model and the map it predicts ------------------------------------
    def fit_order(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        """Every current elite first (each cell's, under the archive's replacement rule: its
        highest fitness, the earliest of equals), the highest fitness first, then the other
        observations by fitness; the elites are kept. The model must place the map, not one
        optimum: the elites span it."""
        fitness = y[:, 0]
        cells = np.asarray(self.layout.index_of(y[:, 1:]))
        by_cell = np.lexsort((np.arange(len(y)), -fitness, cells))  # each cell's elite leads its cell
        leads = np.ones(len(y), dtype=bool)
        leads[1:] = cells[by_cell][1:] != cells[by_cell][:-1]
        elite = np.zeros(len(y), dtype=bool)
        elite[by_cell[leads]] = True
        ranked = np.argsort(-fitness, kind="stable")
        return np.concatenate([ranked[elite[ranked]], ranked[~elite[ranked]]]), int(elite.sum())

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
        """The posterior mean and standard deviation of every outcome at each point of ``x``
        (rows), in the outcomes' units. Each point is a batch of its own: only the marginals
        are used, and the joint posterior of m points built their m × m covariance (m = 2048
        candidates: 3–6× the time at n = 200)."""
        dev = gp.device()
        with torch.no_grad():
            points = gp.tensor(self.encoder.to_model(x), dev).unsqueeze(-2)  # m × 1 × d
            post = model.posterior(points)  # type: ignore[attr-defined]
            mean = post.mean.squeeze(-2).detach().cpu().numpy()
            std = post.variance.squeeze(-2).clamp_min(1e-12).sqrt().detach().cpu().numpy()
        if self.outcome_scale is None:
            return mean, std
        return self.outcome_scale.mean_of(mean), self.outcome_scale.std_of(std)

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
        y = np.stack(self.book.y)
        rows = self.fit_rows(y)
        x = gp.tensor(self.encoder.to_model(np.stack(self.book.x)[rows]), dev)
        z, self.outcome_scale = gp.standardise(y)
        model = self.fit_outcomes(x, gp.tensor(z[rows], dev), range(y.shape[1]))  # warm-started per outcome
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

    def _taken(self) -> np.ndarray:
        """The points no proposal may repeat: evaluated, in flight and failed (unit cube, canonical)."""
        return canonical(self.encoder, np.vstack([np.stack(self.book.x), self.book.avoid()]))

    def _believe(self, model: object, points: np.ndarray, best: np.ndarray, rng: np.random.Generator) -> None:
        """Kriging believer: raise f*_c of the cells each of ``points`` probably lands in to its predicted mean."""
        mean, std = self._posterior(model, points)
        probs = self._cell_probabilities(mean[:, 1:], std[:, 1:], rng)
        for row, likely in zip(mean, probs, strict=True):
            cells = likely > 0.2
            best[cells] = np.maximum(best[cells], row[0])

    def _ejie_batch(self, model: object, n: int, rng: np.random.Generator) -> np.ndarray:
        """n picks, greedily: each the best candidate (:meth:`_refine`) that repeats nothing
        taken or picked, then believed to fill its cells."""
        best = self._elite_fitness()
        believe = list(self.book.pending.values())
        if believe:  # evaluations in flight will probably fill their cells: believe the mean
            self._believe(model, np.stack(believe), best, rng)
        cand = canonical(self.encoder, self._candidates(rng))
        taken = self._taken()
        chosen: list[np.ndarray] = []
        for _ in range(n):
            blocked = np.vstack([taken, *chosen])
            mean, std = self._posterior(model, cand)
            score, _ = self._ejie(mean, std, best, rng)
            score[duplicates(cand, blocked)] = -np.inf
            pick = self._refine(model, cand, score, best, blocked, rng)
            chosen.append(pick)
            self._believe(model, pick[None, :], best, rng)
        return np.stack(chosen)

    def _refine(self, model: object, cand: np.ndarray, score: np.ndarray, best: np.ndarray, blocked: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
        """The best of the eight best candidates and two rounds of perturbations around the
        best eight (a small pattern search), none repeating a row of ``blocked``; a fresh
        Sobol point when every one does."""
        order = np.argsort(score)[-8:]
        top, top_score = cand[order], score[order]
        for scale in (0.02, 0.005):
            noise = rng.normal(0, scale, (len(top) * 16, cand.shape[1]))
            local = canonical(self.encoder, np.clip(np.repeat(top, 16, axis=0) + noise, 0, 1))
            lm, ls = self._posterior(model, local)
            lscore, _ = self._ejie(lm, ls, best, rng)
            lscore[duplicates(local, blocked)] = -np.inf
            pool, pool_score = np.vstack([top, local]), np.concatenate([top_score, lscore])
            keep = np.argsort(pool_score)[-8:]
            top, top_score = pool[keep], pool_score[keep]
        if not np.isfinite(top_score[-1]):
            return fresh_points(self.encoder, 1, blocked, rng)[0]
        return top[-1]

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
        in_wanted = [elites[by_cell[int(c)]] for c in wanted if int(c) in by_cell]
        others = elites[rng.permutation(len(elites))]  # a sparse acquisition map: top up with other elites
        return self._fresh_picks(np.vstack([np.zeros((0, dim)), *in_wanted, others]), n, rng)

    def _fresh_picks(self, ranked: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """The first n of ``ranked`` (canonical) that repeat no point taken nor each other,
        topped up with fresh Sobol points."""
        taken = self._taken()
        picks: list[np.ndarray] = []
        for x in canonical(self.encoder, ranked):
            if len(picks) == n:
                break
            if not duplicates(x[None], np.vstack([taken, *picks]))[0]:
                picks.append(x)
        if len(picks) < n:
            picks += list(fresh_points(self.encoder, n - len(picks), np.vstack([taken, *picks]), rng))
        return np.stack(picks)
