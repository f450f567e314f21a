"""Gaussian-process plumbing shared by the Bayesian proposers (BoTorch / GPyTorch).

Inputs are the unit cube of :class:`search.space.SearchSpace`, normalised by
construction; categorical coordinates are turned into choice indices 0 … n−1 so that a
``MixedSingleTaskGP`` gives them a categorical kernel. Outcomes are standardised.
"""

from __future__ import annotations

import itertools
import math
import warnings
from typing import Any

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.optim import optimize_acqf, optimize_acqf_mixed
from gpytorch.mlls import ExactMarginalLogLikelihood, SumMarginalLogLikelihood

from search.params import CategoricalParam
from search.space import SearchSpace

MAX_CATEGORY_COMBOS = 24


def device() -> torch.device:
    """CUDA when there is one (the GP math runs there), else the CPU."""
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


class Encoder:
    """Unit cube <-> the GP's input space (categorical coordinates as choice indices)."""

    def __init__(self, space: SearchSpace) -> None:
        self.dim = space.dim
        self.cats: list[tuple[int, int]] = [
            (slot.start, len(slot.param.choices)) for slot in space.slots if isinstance(slot.param, CategoricalParam)
        ]

    @property
    def cat_dims(self) -> list[int]:
        return [d for d, _ in self.cats]

    def to_model(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=float, copy=True)
        for d, n in self.cats:
            out[..., d] = np.minimum(np.floor(out[..., d] * n), n - 1)
        return out

    def from_model(self, z: np.ndarray) -> np.ndarray:
        out = np.array(z, dtype=float, copy=True)
        for d, n in self.cats:
            out[..., d] = (np.clip(np.round(out[..., d]), 0, n - 1) + 0.5) / n
        return np.clip(out, 0.0, 1.0)

    def bounds(self, dev: torch.device) -> torch.Tensor:
        lo, hi = np.zeros(self.dim), np.ones(self.dim)
        for d, n in self.cats:
            hi[d] = n - 1
        return torch.tensor(np.stack([lo, hi]), dtype=torch.double, device=dev)

    def fixed_features(self, rng: np.random.Generator) -> list[dict[int, float]]:
        """Categorical combinations to optimise over: all of them, or a random sample."""
        if not self.cats:
            return []
        sizes = [range(n) for _, n in self.cats]
        total = math.prod(len(s) for s in sizes)
        if total <= MAX_CATEGORY_COMBOS:
            combos = list(itertools.product(*sizes))
        else:
            combos = [tuple(int(rng.integers(n)) for _, n in self.cats) for _ in range(MAX_CATEGORY_COMBOS)]
        return [{d: float(v) for (d, _), v in zip(self.cats, combo, strict=True)} for combo in combos]


def tensor(x: Any, dev: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.double, device=dev)


def fit_gp(x: torch.Tensor, y: torch.Tensor, cat_dims: list[int]) -> SingleTaskGP:
    """An exact GP of one outcome (y: n × 1), hyperparameters by marginal likelihood."""
    if cat_dims:
        model = MixedSingleTaskGP(x, y, cat_dims=cat_dims, outcome_transform=Standardize(m=1))
    else:
        model = SingleTaskGP(x, y, outcome_transform=Standardize(m=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
    return model


def fit_model_list(x: torch.Tensor, ys: torch.Tensor, cat_dims: list[int]) -> SingleTaskGP | ModelListGP:
    """Independent GPs of each column of ``ys`` (n × k): one batched multi-output
    ``SingleTaskGP`` for continuous spaces (its outputs are independent GPs with their
    own hyperparameters), a ``ModelListGP`` of mixed GPs when there are categoricals."""
    if not cat_dims:
        batched = SingleTaskGP(x, ys, outcome_transform=Standardize(m=ys.shape[1]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_gpytorch_mll(ExactMarginalLogLikelihood(batched.likelihood, batched))
        return batched
    models = [MixedSingleTaskGP(x, ys[:, i : i + 1], cat_dims=cat_dims, outcome_transform=Standardize(m=1))
              for i in range(ys.shape[1])]
    model = ModelListGP(*models)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
    return model


def maximise(acqf: Any, encoder: Encoder, q: int, rng: np.random.Generator, dev: torch.device,
             num_restarts: int, raw_samples: int) -> np.ndarray:
    """The q points (unit cube) that maximise ``acqf``; categoricals by enumeration."""
    bounds = encoder.bounds(dev)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if encoder.cats:
            cand, _ = optimize_acqf_mixed(acqf, bounds=bounds, q=q, num_restarts=num_restarts,
                                          raw_samples=raw_samples, fixed_features_list=encoder.fixed_features(rng))
        else:
            cand, _ = optimize_acqf(acqf, bounds=bounds, q=q, num_restarts=num_restarts, raw_samples=raw_samples)
    return encoder.from_model(cand.detach().cpu().numpy())
