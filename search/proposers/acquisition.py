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

q > 1 is sequential greedy: each chosen point becomes pending for the next, and the next
point's restarts start where the previous point's ended (at local optima of an
acquisition that differs only near the chosen point), not from fresh raw samples: they
converge in a few iterations instead of tens.

Spaces of categoricals only: nothing is left to optimise continuously (BoTorch's
``optimize_acqf`` with every feature fixed takes one point, not a batch of restarts).
The choices are enumerated instead (all of them, or ``raw_samples`` drawn at random when
there are more), scored by the acquisition, and the q best taken sequentially greedy
(:func:`maximise_discrete`), never a point pending or failed (the acquisition's pending
points) nor one already chosen while any other is left; then repeats are allowed.

The budget is fixed: at most ``ACQF_MAXITER`` L-BFGS-B iterations per restart and
``ACQF_MAXLS`` line-search steps per iteration, a stop at a relative improvement below
``ACQF_FTOL``, and no second round with fresh initial conditions when L-BFGS-B stops
abnormally (BoTorch's default retries, doubling the time).
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np
import torch
from botorch.acquisition import AcquisitionFunction
from botorch.optim import optimize_acqf
from botorch.optim.initializers import initialize_q_batch
from botorch.utils.sampling import draw_sobol_samples

from search.proposers.gp import Encoder, tensor

ACQF_MAXITER = 20  # L-BFGS-B iterations per restart
ACQF_MAXLS = 10  # line-search steps per L-BFGS-B iteration (scipy's default is 20)
ACQF_FTOL = 1e-5
"""A restart stops when an iteration improves the (log) acquisition by less than this,
relatively: 1e-4 absolute on a log-EI of about −10, a 0.01 % change of the EI (BoTorch's
default, ``factr`` 1e7, is about 2e-9: iterations that move the point by nothing that matters)."""
RAW_BATCH = 512  # raw points scored per call of the acquisition


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


def maximise(acqf: AcquisitionFunction, encoder: Encoder, q: int, rng: np.random.Generator, dev: torch.device,
             num_restarts: int, raw_samples: int, pending: torch.Tensor | None = None) -> np.ndarray:
    """The q points (unit cube) that maximise ``acqf`` (see the module docstring). ``pending``:
    the points ``acqf`` was built with as pending (model inputs; None: ``acqf.X_pending``), kept
    pending while the q points are chosen one by one; they must be passed, as qLogNEI folds
    them into its baseline and its ``X_pending`` is None. In a space with categoricals
    ``acqf`` is left with the points chosen before the last one added to its pending points
    (it is built for one ask: resetting would cost qLogNEHVI a box decomposition)."""
    bounds = encoder.bounds(dev)
    options = {"maxiter": ACQF_MAXITER, "maxls": ACQF_MAXLS, "ftol": ACQF_FTOL, "factr": None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if not encoder.cats:
            cand, _ = optimize_acqf(acqf, bounds=bounds, q=q, num_restarts=num_restarts, raw_samples=raw_samples,
                                    options=options, retry_on_optimization_warning=False)
            return encoder.from_model(cand.detach().cpu().numpy())
        if len(encoder.cats) == encoder.dim:
            choices = tensor(encoder.to_model(categorical_choices(encoder, raw_samples, rng)), dev)
            base = acqf.X_pending if pending is None else pending
            return encoder.from_model(maximise_discrete(acqf, choices, q, base).cpu().numpy())
        fixed = encoder.fixed_features(rng)
        combinations, inactive = combination_tensors(encoder, fixed, dev)
        per_combination, raw_per_combination = restarts_per_combination(num_restarts, raw_samples, len(fixed))
        wrapped = ConditionalInputs(acqf, encoder.cat_dims, combinations, inactive)
        by_restart = combinations.repeat_interleave(per_combination, dim=0)  # (C·k) × m
        fixed_by_restart = {d: by_restart[:, i] for i, d in enumerate(encoder.cat_dims)}
        base_pending = acqf.X_pending if pending is None else pending
        chosen: list[torch.Tensor] = []
        starts = None  # the first point's from raw samples, the next ones' where the previous restarts ended
        for _ in range(q):
            if chosen:  # the points chosen so far are pending for the next
                wrapped.set_X_pending(torch.cat([p for p in (base_pending, *chosen) if p is not None]))
            ends, values = optimize_acqf(
                wrapped, bounds=bounds, q=1, num_restarts=len(by_restart), raw_samples=raw_per_combination,
                options=options, retry_on_optimization_warning=False, fixed_features=fixed_by_restart,
                batch_initial_conditions=starts, return_best_only=False, ic_generator=combination_starts,
                cat_dims=encoder.cat_dims, combinations=combinations, per_combination=per_combination)
            ends = ends.detach()
            chosen.append(wrapped.project(ends[values.argmax()]))
            starts = ends
        cand = torch.cat(chosen)
    return encoder.from_model(cand.cpu().numpy())


def categorical_choices(encoder: Encoder, limit: int, rng: np.random.Generator) -> np.ndarray:
    """The points (unit cube) of a space of categoricals only: every combination of choices
    when there are at most ``limit``, else ``limit`` drawn at random (duplicates dropped)."""
    sizes = [n for _, n in encoder.cats]
    if math.prod(sizes) <= limit:
        index = np.array(list(itertools.product(*(range(n) for n in sizes))), dtype=float)
    else:
        index = np.unique(np.stack([rng.integers(n, size=limit) for n in sizes], axis=1), axis=0).astype(float)
    return (index + 0.5) / np.array(sizes, dtype=float)


def maximise_discrete(acqf: AcquisitionFunction, choices: torch.Tensor, q: int,
                      base_pending: torch.Tensor | None) -> torch.Tensor:
    """The q of ``choices`` (model inputs, C × d) that maximise ``acqf``, sequentially greedy:
    each pick is the choice of highest acquisition with ``base_pending`` (in flight or
    failed) and the picks before it pending, among the choices neither pending nor picked;
    when none is left, among all of them (a repeat). Like :func:`maximise` in a mixed space,
    ``acqf`` is left with the picks but the last added to its pending points (BoTorch's
    ``optimize_acqf_discrete`` resets them, which costs qLogNEHVI two more box decompositions
    an ask; it reads the pending points from ``X_pending``, None in qLogNEI, and has no
    repeats to fall back on)."""
    choices = torch.unique(choices, dim=0)  # a switched-off categorical collapses combinations
    taken = torch.zeros(len(choices), dtype=torch.bool, device=choices.device)
    if base_pending is not None and len(base_pending):
        taken = (choices.unsqueeze(1) == base_pending.to(choices).unsqueeze(0)).all(dim=-1).any(dim=-1)
    picks: list[torch.Tensor] = []
    for _ in range(q):
        if picks:
            acqf.set_X_pending(torch.cat([p for p in (base_pending, *picks) if p is not None]))
        with torch.no_grad():
            values = torch.cat([acqf(chunk.unsqueeze(-2)) for chunk in choices.split(RAW_BATCH)])
        if not taken.all():
            values = values.masked_fill(taken, -math.inf)
        best = int(values.argmax())
        taken[best] = True
        picks.append(choices[best : best + 1])
    return torch.cat(picks)
