"""``bo``: Bayesian optimisation of the objective with BoTorch.

A scrambled Sobol design of ``initial_design`` points, then, each ask, a GP of the
fitness (``SingleTaskGP``, or ``MixedSingleTaskGP`` when the space has categoricals;
outcomes standardised) and q = batch-size candidates maximising
qLogNoisyExpectedImprovement. Evaluations in flight are passed as pending points, and
so are failed ones: they are left out of the fit and never proposed again; no proposal
repeats a point evaluated, pending or proposed earlier in its batch
(:func:`search.proposers.acquisition.maximise`).

**A bounded fit.** An exact GP costs O(n³) a fit, and qLogNEI's baseline (the points it
improves on) is every point fitted: with ``max_fit_points`` (default ``MAX_FIT_POINTS``; 0:
no bound) the model is fitted on at most that many observations, and the baseline is the
same ones (pruned by BoTorch as before). Past the bound, :meth:`BoProposer.fit_rows` keeps
the best observations (:meth:`BoProposer.fit_order`: by the objective here; ``mo-bo``'s
by Pareto dominance, ``qd-bo``'s every elite first), every one that must be kept and at
least half the bound of them, and fills the rest with a sample of the others drawn from
(seed, ask number), so that a resumed campaign fits, and proposes, what an uninterrupted
one does. Failed and pending points are still all passed as pending, and no proposal
repeats any point evaluated.

Outcomes of any finite magnitude are fitted (:func:`search.proposers.gp.standardise`). An
ask whose model still cannot be fitted or maximised (a numerical error of torch, GPyTorch
or BoTorch: ``MODEL_ERRORS``) proposes the next Sobol points instead, with one warning on
the ``entropy_atlas.bo`` logger naming the error, and the warnings the failed attempt
raised dropped: a campaign never stops, nor becomes unresumable, because a GP could not
be fitted; the next ask tries the model again.

**Warm fits.** A fit starts from the hyperparameters the previous fit of the same outcome
left (``self.hyper``), capped at ``gp.WARM_FIT_MAXITER`` L-BFGS iterations instead of
``gp.FIT_MAXITER``. ``bo``'s one GP: at every ask, by the parameters' names. ``qd-bo``'s
and ``mo-bo``'s GP per outcome (:meth:`BoProposer.fit_outcomes`): by ``<outcome>.<name>``,
the outcome being its column of :meth:`BoProposer.outcome`, while the fit has at most
``gp.WARM_FIT_GROWTH`` times the observations of that outcome's last cold fit
(``self.cold_fits``); past it, cold again. An outcome never fitted before, or a start that
does not fit its model (:func:`search.proposers.gp.fit_gp`), is fitted cold; ``mo-bo``'s
qLogNEI of one outcome, when no other varies, is fitted cold.

State: everything is rebuilt from SQL on resume (observations in the order they were
recorded, pending points in proposal order); the checkpoint keeps how many asks and
Sobol draws were made (fields ``asks``, ``sobol_drawn``), the last fits' hyperparameters
(arrays ``hyper.<name>``), the next fits' starts, and the observations of each outcome's
last cold fit (field ``cold_fits``, where there are any). Each ask seeds torch
from (seed, ask number), so a resumed campaign proposes the same next batch as one never
interrupted. A checkpoint without hyperparameters (version 1, or ``qd-bo``'s and
``mo-bo``'s before their fits were warm-started) is read, and the next fits start cold. A
legacy pickle is not read: both counts are set to the number of rows, an upper bound, so
no Sobol point and no ask seed is used twice, and the next fits start cold.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.exceptions.errors import BotorchError, ModelFittingError
from botorch.models import ModelListGP
from botorch.sampling.normal import SobolQMCNormalSampler
from torch.quasirandom import SobolEngine

from search.proposers import acquisition, checkpoint, gp
from search.proposers.base import History, Observation, Proposal, Proposer, ProposerContext, rows_so_far
from search.proposers.checkpoint import Checkpoint

MC_SAMPLES = 64  # quasi-MC draws of qLogNEI (botorch's default is 128)
MAX_FIT_POINTS = 500
"""The default of ``max_fit_points``: the most observations a model is fitted on. Fitted on
every observation, a cold ask took 12–30 s at n = 1000 (``bo``; its warm asks 2–9 s) and
30–76 s (``mo-bo``, ``qd-bo``, whose fits are all cold), 75–227 s at n = 2000, on one core;
at 500, 3–18 s, ``bo``'s warm asks 1–3 s (docs/benchmarks.md, "bo at large n")."""
FIT_SAMPLE_STREAM = 1  # the sample of a bounded fit is drawn from (seed, ask number, this)
MODEL_ERRORS = (RuntimeError, ValueError, ArithmeticError, BotorchError, ModelFittingError)
"""What a fit or an acquisition raises on data it cannot model (torch's ``_LinAlgError`` and
linear_operator's ``NotPSDError`` are ``RuntimeError``): the ask falls back to Sobol points."""

log = logging.getLogger("entropy_atlas.bo")


class ObservationBook:
    """Observed points, their outcomes, failures and points in flight, in a stable order."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.x: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.failed: list[np.ndarray] = []
        self.pending: dict[bytes, np.ndarray] = {}

    def propose(self, x: np.ndarray) -> None:
        self.pending[np.asarray(x, dtype=float).tobytes()] = np.asarray(x, dtype=float)

    def observe(self, o: Observation, outcome: np.ndarray | None) -> None:
        self.pending.pop(np.asarray(o.x, dtype=float).tobytes(), None)
        if outcome is None:
            self.failed.append(np.asarray(o.x, dtype=float))
        else:
            self.x.append(np.asarray(o.x, dtype=float))
            self.y.append(outcome)

    def avoid(self) -> np.ndarray:
        """Points the acquisition should treat as taken: in flight, or failed."""
        pts = list(self.pending.values()) + self.failed
        return np.stack(pts) if pts else np.zeros((0, self.dim))


class BoProposer(Proposer):
    name = "bo"
    asks_are_slow = True
    checkpoint_version = 2
    migrates_versions = (1,)  # version 1 had no hyperparameters: the next fit starts cold
    option_names = ("initial_design", "num_restarts", "raw_samples", "max_fit_points")
    restarts_default = 8  # the acquisition's optimisation: starts, and the raw samples they are picked from
    raw_samples_default = 256

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        dim = ctx.space.dim
        self.initial_design = self.int_option("initial_design", max(2 * (dim + 1), ctx.batch_size))
        self.num_restarts = self.int_option("num_restarts", self.restarts_default)
        self.raw_samples = self.int_option("raw_samples", self.raw_samples_default)
        self.max_fit_points = self.int_option("max_fit_points", MAX_FIT_POINTS, minimum=0)  # 0: no bound
        if self.raw_samples < self.num_restarts:  # BoTorch picks each restart's start among the raw samples
            raise self.option_error("raw_samples", f"must be >= num_restarts ({self.num_restarts}): each restart "
                                                   f"starts from one of the raw samples (got {self.raw_samples})")
        self.encoder = gp.Encoder(ctx.space)
        self.book = ObservationBook(self.ctx.space.dim)
        self.asks = 0
        self.sobol_drawn = 0
        self.hyper: dict[str, np.ndarray] = {}  # the last fits', the next fits' starts
        self.cold_fits: dict[int, int] = {}  # per outcome of fit_outcomes: the observations of its last cold fit
        self._sobol = SobolEngine(dim, scramble=True, seed=ctx.seed)

    # -- outcomes: what the GP models (one column here; subclasses add more) --
    def outcome(self, o: Observation) -> np.ndarray | None:
        return None if o.fitness is None else np.array([o.fitness])

    def ask(self, n: int) -> list[Proposal]:
        self.asks += 1
        torch.manual_seed(int(np.random.SeedSequence([self.ctx.seed, self.asks]).generate_state(1)[0]))
        rng = np.random.default_rng([self.ctx.seed, self.asks])
        meta: dict[str, object] = {"source": self.name, "ask": self.asks}
        if len(self.book.x) + len(self.book.pending) < self.initial_design or len(self.book.x) < 2:
            xs = self._draw_sobol(n)
            meta["source"] = "sobol"
        else:
            xs, failure = self._suggest_or_none(n, rng)
            if xs is None:
                xs = self._draw_sobol(n)
                meta.update(source="sobol", fallback=failure)
        proposals = []
        for x in xs:
            self.book.propose(x)
            proposals.append(Proposal(x, meta=dict(meta)))
        return proposals

    def _draw_sobol(self, n: int) -> np.ndarray:
        """The next ``n`` points of the scrambled Sobol sequence (counted in the checkpoint)."""
        self.sobol_drawn += n
        return self._sobol.draw(n).double().numpy()

    def _suggest_or_none(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray | None, str]:
        """:meth:`suggest`'s points and "", or None and the error's type when the model raised
        one of ``MODEL_ERRORS``: then one warning is logged (:meth:`_warn_fallback`) and the
        warnings of the attempt are dropped; else they are shown as usual."""
        failure: Exception | None = None
        with warnings.catch_warnings(record=True) as caught:
            gp.hide_jitter_warnings()
            try:
                with gp.torch_threads():
                    xs = self.suggest(n, rng)
            except MODEL_ERRORS as exc:
                failure = exc
        if failure is not None:
            self._warn_fallback(failure, n)
            return None, type(failure).__name__
        for w in caught:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
        return xs, ""

    def _warn_fallback(self, exc: Exception, n: int) -> None:
        """The one warning of an ask that fell back to Sobol points: the error's type and first line."""
        reason = (str(exc).strip().splitlines() or [""])[0][:200]
        log.warning("proposer %s: ask %d: the model could not be fitted or maximised (%s: %s); this ask "
                    "proposes %d Sobol points instead", self.name, self.asks, type(exc).__name__, reason, n)

    def suggest(self, n: int, rng: np.random.Generator) -> np.ndarray:
        z, _ = gp.standardise(np.stack(self.book.y)[:, :1])
        return self.improve(z, n, rng, warm=True)

    def improve(self, z: np.ndarray, n: int, rng: np.random.Generator, warm: bool) -> np.ndarray:
        """The n points of highest qLogNEI of one outcome (z: the evaluated points' outcomes,
        n × 1, through :func:`gp.standardise`), maximised; fitted on, and improving on, the
        observations :meth:`fit_rows` keeps. ``warm``: the fit starts from the
        last one's hyperparameters and leaves its own for the next (``self.hyper``)."""
        dev = gp.device()
        rows = self.fit_rows(z)
        x = gp.tensor(self.encoder.to_model(np.stack(self.book.x)[rows]), dev)
        model = gp.fit_gp(x, gp.tensor(z[rows], dev), self.encoder.cat_dims, start=self.hyper if warm else None)
        if warm:
            self.hyper = gp.hyperparameters(model)
        pending = self.pending_inputs(dev)
        acqf = qLogNoisyExpectedImprovement(model, X_baseline=x, X_pending=pending, prune_baseline=True,
                                            sampler=SobolQMCNormalSampler(torch.Size([MC_SAMPLES])))
        return acquisition.maximise(acqf, self.encoder, n, rng, dev, self.num_restarts, self.raw_samples,
                                    pending=pending, evaluated=np.stack(self.book.x))

    def fit_outcomes(self, x: torch.Tensor, z: torch.Tensor, outcomes: Sequence[int]) -> ModelListGP:
        """Independent GPs of the columns of ``z`` on inputs ``x`` (:func:`gp.fit_model_list`),
        column j being outcome ``outcomes[j]`` (a column of :meth:`outcome`'s vector). Each
        starts from that outcome's last fit (``self.hyper``'s ``<outcome>.<name>``) while
        ``x`` has at most ``gp.WARM_FIT_GROWTH`` times the observations of its last cold fit
        (``self.cold_fits``), else cold, as one never fitted, or whose start does not fit;
        each leaves its hyperparameters for the next, and a cold one its observations."""
        n = len(x)
        starts: list[dict[str, np.ndarray] | None] = []
        for i in outcomes:
            start = {name.removeprefix(f"{i}."): value for name, value in self.hyper.items()
                     if name.startswith(f"{i}.")}
            warm = bool(start) and n <= gp.WARM_FIT_GROWTH * self.cold_fits.get(i, 0)
            starts.append(start if warm else None)
        model = gp.fit_model_list(x, z, self.encoder.cat_dims, starts=starts)
        for i, start, fitted in zip(outcomes, starts, model.models, strict=True):
            if not gp.start_fits(fitted, start):  # fitted cold
                self.cold_fits[i] = n
            self.hyper.update({f"{i}.{name}": value for name, value in gp.hyperparameters(fitted).items()})
        return model

    def fit_rows(self, y: np.ndarray) -> np.ndarray:
        """Which observations (indices of ``self.book.x``, ascending) the model is fitted on,
        given their outcomes ``y`` (n × k, as modelled). All of them up to ``max_fit_points``
        (or when it is 0); past it, that many: the first of :meth:`fit_order` — the ones it
        must keep, and at least half the bound (rounded up) — and a sample of the others
        without replacement, drawn from (seed, ask number), the same in a resumed campaign."""
        n, cap = len(y), self.max_fit_points
        if not cap or n <= cap:
            return np.arange(n)
        order, must = self.fit_order(y)
        kept = min(cap, max(cap - cap // 2, must))
        rng = np.random.default_rng([self.ctx.seed, self.asks, FIT_SAMPLE_STREAM])
        sample = rng.choice(order[kept:], size=cap - kept, replace=False)
        return np.sort(np.concatenate([order[:kept], sample]))

    def fit_order(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        """The observations, those a bounded fit wants most first, and how many of the first
        it must keep: here the best first (:func:`gp.best_first`; by Pareto dominance when
        ``y`` has several columns), the undominated ones kept."""
        return gp.best_first(y)

    def pending_inputs(self, dev: torch.device) -> torch.Tensor | None:
        """The points in flight and failed as model inputs (None when there are none)."""
        avoid = self.book.avoid()
        return gp.tensor(self.encoder.to_model(avoid), dev) if len(avoid) else None

    def tell(self, observations: list[Observation]) -> None:
        for o in observations:
            self.book.observe(o, self.outcome(o))

    # -- checkpoints -------------------------------------------------------------
    def to_checkpoint(self) -> Checkpoint:
        """How many asks and Sobol draws were made, the last fits' hyperparameters (arrays
        ``hyper.<name>``, the next fits' starts) and each outcome's last cold fit (field
        ``cold_fits``, when any); the data is the archive's."""
        arrays = {f"hyper.{name}": value for name, value in self.hyper.items()}
        fields: dict[str, object] = {"asks": self.asks, "sobol_drawn": self.sobol_drawn}
        if self.cold_fits:
            fields["cold_fits"] = {str(i): n for i, n in sorted(self.cold_fits.items())}
        return Checkpoint(fields=fields, arrays=arrays)

    def from_checkpoint(self, saved: Checkpoint | None, history: History) -> None:
        self._rebuild_book(history)
        if saved is not None:
            self._set_counts(int(saved.fields["asks"]), int(saved.fields["sobol_drawn"]))
            self.hyper = {name.removeprefix("hyper."): value for name, value in saved.arrays.items()
                          if name.startswith("hyper.")}
            self.cold_fits = {int(i): int(n) for i, n in saved.fields.get("cold_fits", {}).items()}

    def from_legacy(self, history: History) -> None:
        """Rebuild from the archive; both counts become the number of rows (an upper bound)."""
        self._rebuild_book(history)
        rows = rows_so_far(history)
        self._set_counts(rows, rows)
        checkpoint.warn_legacy(self.name, f"observations from the archive, Sobol and ask counts set to {rows} "
                                          f"(no Sobol point is drawn twice)")

    def _rebuild_book(self, history: History) -> None:
        """Observations in the order recorded, then the points in flight."""
        self.book = ObservationBook(self.ctx.space.dim)
        for o in history.finished():
            self.book.observe(o, self.outcome(o))
        for x in history.pending_x():
            self.book.propose(x)

    def _set_counts(self, asks: int, sobol_drawn: int) -> None:
        """Resume the ask count and the Sobol sequence after ``sobol_drawn`` points."""
        self.asks = asks
        self.sobol_drawn = sobol_drawn
        self._sobol = SobolEngine(self.ctx.space.dim, scramble=True, seed=self.ctx.seed)
        if self.sobol_drawn:
            self._sobol.fast_forward(self.sobol_drawn)
