"""Maximising an acquisition over the GP's input space (:class:`search.proposers.gp.Encoder`).

Continuous spaces: BoTorch's ``optimize_acqf`` (``num_restarts`` L-BFGS-B restarts picked
from ``raw_samples`` scrambled Sobol points).

Mixed spaces: all categorical combinations (:meth:`Encoder.fixed_features`, C of them)
are optimised in **one** batch of restarts instead of one ``optimize_acqf`` per
combination:

    per combination:  r = max(32, raw_samples // C) raw Sobol points, k = max(2, ⌈num_restarts / C⌉)
                      restarts drawn from them by Boltzmann sampling (BoTorch's ``initialize_q_batch``)
    all C·k restarts: one batched L-BFGS-B run (BoTorch's parallel ``fmin_l_bfgs_b_batched``), the
                      categorical coordinates of each restart fixed to its combination's values

so the acquisition is evaluated on C·k points a call rather than k, and BoTorch's and
GPyTorch's per-call overhead is paid once per L-BFGS-B iteration instead of C times.
A parameter that a combination switches off is held at 0.5 by :class:`ConditionalInputs`
(it maps the point the acquisition sees, so its gradient along that coordinate is zero),
which lets restarts of different combinations share one optimiser although different
coordinates are fixed in each.

q > 1 is sequential greedy, in continuous and mixed spaces alike: each chosen point
becomes pending for the next (``set_X_pending``, with the points in flight and failed),
and the next point's restarts start where the previous point's ended (at local optima of
an acquisition that differs only near the chosen point), not from fresh raw samples: they
converge in a few iterations instead of tens. (One joint ``optimize_acqf(q=q)`` put two or
three points of a batch on the same corner of the cube.)

**No repeats.** A point is never chosen when it repeats (:func:`duplicates`: within
``DUPLICATE_TOL`` in every coordinate of the unit cube, compared as proposed, categoricals
at their choice's centre and switched-off coordinates at 0.5) a point evaluated, in
flight, failed, or chosen earlier in the batch: the restart with the next-best
acquisition value is taken instead, and when every restart ended on a repeat, a
scrambled Sobol point that repeats nothing (:func:`fresh_points`).

Spaces of categoricals only: nothing is left to optimise continuously (BoTorch's
``optimize_acqf`` with every feature fixed takes one point, not a batch of restarts).
The choices are enumerated instead (all of them, or ``raw_samples`` drawn at random when
there are more), scored by the acquisition, and the q best taken sequentially greedy
(:func:`maximise_discrete`): a choice never tried first, then one evaluated, and a point
pending or failed (the acquisition's pending points) or already chosen only when no other
is left.

The budget is fixed: at most ``ACQF_MAXITER`` L-BFGS-B iterations per restart and
``ACQF_MAXLS`` line-search steps per iteration, a stop at a relative improvement below
``ACQF_FTOL``, and no second round with fresh initial conditions when L-BFGS-B stops
abnormally (BoTorch's default retries, doubling the time).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf
from botorch.optim.initializers import initialize_q_batch
from botorch.utils.sampling import draw_sobol_samples
from scipy.spatial import cKDTree
from torch.quasirandom import SobolEngine

from search.proposers.gp import Encoder, tensor

ACQF_MAXITER = 20  # L-BFGS-B iterations per restart
ACQF_MAXLS = 10  # line-search steps per L-BFGS-B iteration (scipy's default is 20)
ACQF_FTOL = 1e-5
"""A restart stops when an iteration improves the (log) acquisition by less than this,
relatively: 1e-4 absolute on a log-EI of about −10, a 0.01 % change of the EI (BoTorch's
default, ``factr`` 1e7, is about 2e-9: iterations that move the point by nothing that matters)."""
RAW_BATCH = 512  # raw points scored per call of the acquisition
DUPLICATE_TOL = 1e-4
"""Two points of the unit cube within this of each other in every coordinate are one point:
a candidate that close to a point evaluated, in flight, failed or already chosen repeats it."""
FRESH_DRAWS = 64  # Sobol points drawn for the fallback when every candidate repeats a point


def restarts_per_combination(num_restarts: int, raw_samples: int, combinations: int) -> tuple[int, int]:
    """(restarts, raw samples) per categorical combination: the totals shared out, at least 2 and 32."""
    return max(2, -(-num_restarts // combinations)), max(32, raw_samples // combinations)


class ConditionalInputs(AcquisitionFunction):
    """``acqf`` of the point with every coordinate its categorical combination switches off at 0.5.

    A point's combination is the row of ``combinations`` (C × m, choice indices of the m
    categorical coordinates ``cat_dims``) that it equals; ``inactive`` (C × d, bool) says
    which coordinates that combination switches off. A point of no listed combination is
    passed through unchanged. Pending points are mapped the same way."""

    def __init__(self, acqf: AcquisitionFunction, cat_dims: list[int], combinations: torch.Tensor,
                 inactive: torch.Tensor) -> None:
        super().__init__(acqf.model)
        self.acqf = acqf
        self.cat_dims = cat_dims
        self.combinations = combinations
        self.inactive = inactive.to(combinations)

    def project(self, x: torch.Tensor) -> torch.Tensor:
        match = (x[..., self.cat_dims].unsqueeze(-2) == self.combinations).all(dim=-1)  # ... × C
        off = (match.to(x) @ self.inactive) > 0  # ... × d
        return torch.where(off, torch.full_like(x, 0.5), x)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        return self.acqf(self.project(X))

    @property
    def X_pending(self) -> torch.Tensor | None:
        return self.acqf.X_pending

    @X_pending.setter
    def X_pending(self, value: torch.Tensor | None) -> None:
        self.acqf.X_pending = value

    def set_X_pending(self, X_pending: torch.Tensor | None = None) -> None:
        self.acqf.set_X_pending(None if X_pending is None else self.project(X_pending))


def combination_tensors(encoder: Encoder, fixed: list[dict[int, float]],
                        dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The combinations' choice indices (C × m) and the coordinates each switches off (C × d)."""
    cats = encoder.cat_dims
    values = torch.tensor([[f[d] for d in cats] for f in fixed], dtype=torch.double, device=dev)
    inactive = torch.zeros(len(fixed), encoder.dim, dtype=torch.double, device=dev)
    for i, f in enumerate(fixed):
        for d in f:
            if d not in cats:
                inactive[i, d] = 1.0
    return values, inactive


def combination_starts(acq_function: AcquisitionFunction, bounds: torch.Tensor, q: int, num_restarts: int,
                       raw_samples: int, *, cat_dims: list[int], combinations: torch.Tensor, per_combination: int,
                       **_: Any) -> torch.Tensor:
    """Initial conditions, ``per_combination`` per combination in the order of ``combinations``:
    ``raw_samples`` Sobol q-batches per combination (its categorical coordinates set), scored,
    and Boltzmann-sampled (an ``ic_generator`` for ``optimize_acqf``)."""
    count = len(combinations)
    raw = draw_sobol_samples(bounds=bounds, n=count * raw_samples, q=q).view(count, raw_samples, q, -1)
    raw[..., cat_dims] = combinations.view(count, 1, 1, -1).to(raw)
    flat = raw.view(count * raw_samples, q, -1)
    with torch.no_grad():
        scores = torch.cat([acq_function(chunk) for chunk in flat.split(RAW_BATCH)]).view(count, raw_samples)
    starts = [initialize_q_batch(raw[c], scores[c], n=per_combination)[0] for c in range(count)]
    return torch.cat(starts)


def canonical(encoder: Encoder, x: np.ndarray) -> np.ndarray:
    """Unit-cube points as they are proposed: categoricals at their choice's centre,
    coordinates their point switches off at 0.5 (what the GP sees, mapped back)."""
    x = np.asarray(x, dtype=float).reshape(-1, encoder.dim)
    return encoder.from_model(encoder.to_model(x)) if len(x) else x


def duplicates(points: np.ndarray, taken: np.ndarray, tol: float = DUPLICATE_TOL) -> np.ndarray:
    """For each row of ``points``, whether it repeats a row of ``taken``: within ``tol`` of it
    in every coordinate (the Chebyshev distance, through a k-d tree)."""
    points = np.asarray(points, dtype=float)
    if not len(points) or not len(taken):
        return np.zeros(len(points), dtype=bool)
    distance, _ = cKDTree(np.asarray(taken, dtype=float)).query(points, p=np.inf)
    return distance <= tol


def fresh_points(encoder: Encoder, count: int, taken: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``count`` scrambled Sobol points (canonical, :func:`canonical`) that repeat no row of
    ``taken`` nor each other: the fallback when every candidate repeats one. Sobol points
    (seeded from ``rng``) are drawn until enough are fresh, at most ``FRESH_DRAWS`` of them;
    then the rest are taken as drawn."""
    sobol = SobolEngine(encoder.dim, scramble=True, seed=int(rng.integers(2**31)))
    drawn = canonical(encoder, sobol.draw(FRESH_DRAWS, dtype=torch.double).numpy())
    picked: list[np.ndarray] = []
    for x in drawn:
        if len(picked) == count:
            break
        if not duplicates(x[None], np.vstack([taken.reshape(-1, encoder.dim), *picked]))[0]:
            picked.append(x)
    picked += list(drawn[: count - len(picked)])
    return np.stack(picked)


def maximise(acqf: AcquisitionFunction, encoder: Encoder, q: int, rng: np.random.Generator, dev: torch.device,
             num_restarts: int, raw_samples: int, pending: torch.Tensor | None = None,
             evaluated: np.ndarray | None = None) -> np.ndarray:
    """The q points (unit cube) that maximise ``acqf`` and repeat no point evaluated, pending
    or chosen before them (see the module docstring). ``pending``: the points ``acqf`` was
    built with as pending (model inputs, in flight and failed; None: ``acqf.X_pending``),
    kept pending while the q points are chosen one by one; they must be passed, as qLogNEI
    folds them into its baseline and its ``X_pending`` is None. ``evaluated``: the points
    evaluated (unit cube). ``acqf`` is left with the points chosen before the last one added
    to its pending points (it is built for one ask: resetting would cost qLogNEHVI a box
    decomposition)."""
    if q <= 0:
        return np.zeros((0, encoder.dim))
    base_pending = acqf.X_pending if pending is None else pending
    done = np.zeros((0, encoder.dim)) if evaluated is None else canonical(encoder, evaluated)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if encoder.cats and len(encoder.cats) == encoder.dim:
            choices = tensor(encoder.to_model(categorical_choices(encoder, raw_samples, rng)), dev)
            tried = None if not len(done) else tensor(encoder.to_model(done), dev)
            return encoder.from_model(maximise_discrete(acqf, choices, q, base_pending, tried).cpu().numpy())
        taken = np.vstack([done, encoder.from_model(base_pending.cpu().numpy()) if base_pending is not None
                           else np.zeros((0, encoder.dim))])
        if not encoder.cats:
            restarts = Restarts(acqf, {"num_restarts": num_restarts, "raw_samples": raw_samples})
        else:
            restarts = mixed_restarts(acqf, encoder, rng, dev, num_restarts, raw_samples)
        return greedy(restarts, encoder, q, base_pending, taken, rng, dev)


class Restarts:
    """One L-BFGS-B run of every restart (``optimize_acqf`` with ``q`` 1, ``kwargs`` its
    restarts and how they start) over ``acqf``, each restart's end mapped by ``project``."""

    def __init__(self, acqf: AcquisitionFunction, kwargs: dict[str, Any],
                 project: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.acqf = acqf
        self.kwargs = kwargs
        self.project = project if project is not None else (lambda x: x)

    def run(self, bounds: torch.Tensor, starts: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Every restart's end (restarts × 1 × d) and acquisition value, from ``starts`` (None: raw samples)."""
        options = {"maxiter": ACQF_MAXITER, "maxls": ACQF_MAXLS, "ftol": ACQF_FTOL, "factr": None}
        ends, values = optimize_acqf(self.acqf, bounds=bounds, q=1, options=options, batch_initial_conditions=starts,
                                     retry_on_optimization_warning=False, return_best_only=False, **self.kwargs)
        return ends.detach(), values.detach().reshape(-1)


def mixed_restarts(acqf: AcquisitionFunction, encoder: Encoder, rng: np.random.Generator, dev: torch.device,
                   num_restarts: int, raw_samples: int) -> Restarts:
    """The restarts of a mixed space: every categorical combination's share of them in one
    batch, their categorical coordinates fixed, switched-off ones held at 0.5."""
    fixed = encoder.fixed_features(rng)
    combinations, inactive = combination_tensors(encoder, fixed, dev)
    per_combination, raw_per_combination = restarts_per_combination(num_restarts, raw_samples, len(fixed))
    wrapped = ConditionalInputs(acqf, encoder.cat_dims, combinations, inactive)
    by_restart = combinations.repeat_interleave(per_combination, dim=0)  # (C·k) × m
    kwargs = {"num_restarts": len(by_restart), "raw_samples": raw_per_combination,
              "fixed_features": {d: by_restart[:, i] for i, d in enumerate(encoder.cat_dims)},
              "ic_generator": combination_starts, "cat_dims": encoder.cat_dims, "combinations": combinations,
              "per_combination": per_combination}
    return Restarts(wrapped, kwargs, wrapped.project)


def greedy(restarts: Restarts, encoder: Encoder, q: int, base_pending: torch.Tensor | None, taken: np.ndarray,
           rng: np.random.Generator, dev: torch.device) -> np.ndarray:
    """q points chosen one by one: each the best restart's end that repeats nothing in
    ``taken`` (unit cube) nor a point chosen before it (:func:`pick`), which then becomes
    pending (``set_X_pending``) for the next; the next point's restarts start where these ended."""
    bounds = encoder.bounds(dev)
    chosen: list[np.ndarray] = []
    starts = None  # the first point's from raw samples, the next ones' where the previous restarts ended
    for _ in range(q):
        if chosen:  # the points chosen so far are pending for the next
            picked = tensor(encoder.to_model(np.stack(chosen)), dev)
            restarts.acqf.set_X_pending(torch.cat([p for p in (base_pending, picked) if p is not None]))
        ends, values = restarts.run(bounds, starts)
        cube = canonical(encoder, encoder.from_model(restarts.project(ends).squeeze(-2).cpu().numpy()))
        chosen.append(pick(cube, values.cpu().numpy(), np.vstack([taken, *chosen]), encoder, rng))
        starts = ends
    return np.stack(chosen)


def pick(cube: np.ndarray, values: np.ndarray, taken: np.ndarray, encoder: Encoder,
         rng: np.random.Generator) -> np.ndarray:
    """The point of highest ``values`` among ``cube`` (restarts' ends) that repeats no row of
    ``taken``; when every one does, a fresh Sobol point (:func:`fresh_points`)."""
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")
    fresh = ~duplicates(cube[order], taken)
    if fresh.any():
        return cube[order[int(np.argmax(fresh))]]
    return fresh_points(encoder, 1, taken, rng)[0]


def categorical_choices(encoder: Encoder, limit: int, rng: np.random.Generator) -> np.ndarray:
    """The points (unit cube) of a space of categoricals only: every combination of choices
    when there are at most ``limit``, else ``limit`` drawn at random (duplicates dropped)."""
    sizes = [n for _, n in encoder.cats]
    if math.prod(sizes) <= limit:
        index = np.array(list(itertools.product(*(range(n) for n in sizes))), dtype=float)
    else:
        index = np.unique(np.stack([rng.integers(n, size=limit) for n in sizes], axis=1), axis=0).astype(float)
    return (index + 0.5) / np.array(sizes, dtype=float)


def _rows_in(choices: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """For each choice, whether it equals a row of ``rows``."""
    if rows is None or not len(rows):
        return torch.zeros(len(choices), dtype=torch.bool, device=choices.device)
    return (choices.unsqueeze(1) == rows.to(choices).unsqueeze(0)).all(dim=-1).any(dim=-1)


def maximise_discrete(acqf: AcquisitionFunction, choices: torch.Tensor, q: int,
                      base_pending: torch.Tensor | None, evaluated: torch.Tensor | None = None) -> torch.Tensor:
    """The q of ``choices`` (model inputs, C × d) that maximise ``acqf``, sequentially greedy:
    each pick is the choice of highest acquisition, with ``base_pending`` (in flight or
    failed) and the picks before it pending, among the choices never tried; when none is
    left, among those ``evaluated``; when none is left either, among all of them (a repeat
    of a pending point or a pick). Like :func:`maximise` in a mixed space, ``acqf`` is left
    with the picks but the last added to its pending points (BoTorch's
    ``optimize_acqf_discrete`` resets them, which costs qLogNEHVI two more box decompositions
    an ask; it reads the pending points from ``X_pending``, None in qLogNEI, and has no
    repeats to fall back on)."""
    choices = torch.unique(choices, dim=0)  # a switched-off categorical collapses combinations
    # 0: never tried, 1: evaluated, 2: pending, failed or picked
    rank = torch.maximum(_rows_in(choices, evaluated).long(), 2 * _rows_in(choices, base_pending).long())
    picks: list[torch.Tensor] = []
    for _ in range(q):
        if picks:
            acqf.set_X_pending(torch.cat([p for p in (base_pending, *picks) if p is not None]))
        with torch.no_grad():
            values = torch.cat([acqf(chunk.unsqueeze(-2)) for chunk in choices.split(RAW_BATCH)])
        values = values.masked_fill(rank > rank.min(), -math.inf)
        best = int(values.argmax())
        rank[best] = 2
        picks.append(choices[best : best + 1])
    return torch.cat(picks)
