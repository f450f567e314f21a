"""Gaussian-process plumbing shared by the Bayesian proposers (BoTorch / GPyTorch).

Inputs are the unit cube of :class:`search.space.SearchSpace`, normalised by
construction; categorical coordinates are turned into choice indices 0 … n−1 so that a
``MixedSingleTaskGP`` gives them a categorical kernel.

Outcomes are standardised before the model sees them (:func:`standardise`), per column in
float64: divided by their largest magnitude first, so that a mean and a standard deviation
of objectives of any finite magnitude (1e300, 1e-300) neither overflow nor vanish (BoTorch's
``Standardize`` alone squared 1e300 to infinity and the fit failed in ``linalg.eigh``); a
column that does not vary is centred to zeros. The models keep BoTorch's ``Standardize``
(a no-op on standardised data) so that a warm start reads the same hyperparameters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from botorch.exceptions.warnings import InputDataWarning
from botorch.fit import fit_gpytorch_mll
from botorch.models import MixedSingleTaskGP, ModelListGP, SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from gpytorch.mlls import ExactMarginalLogLikelihood

from search.params import CategoricalParam
from search.space import SearchSpace

# linear_operator adds a jitter to a covariance that is numerically not positive definite
# (points that coincide, a categorical-only space) and says so on every posterior: routine,
# and nothing a campaign's user can act on. Its other warnings are still shown.
JITTER_WARNING = r"A not p\.d\., added jitter"


def hide_jitter_warnings() -> None:
    """Ignore linear_operator's jitter warning (set at import, and again inside a
    ``catch_warnings`` block whose filters started without it, as under pytest)."""
    warnings.filterwarnings("ignore", message=JITTER_WARNING, category=RuntimeWarning)


hide_jitter_warnings()

MAX_CATEGORY_COMBOS = 24
FIT_MAXITER = 100
"""L-BFGS iterations of a hyperparameter fit: the mixed kernel's fit otherwise runs to
thousands (28 s at n = 60 on one core) for a log-likelihood within 0.01 of this one's."""
WARM_FIT_MAXITER = 20  # a fit warm-started from the previous ask's optimum
WARM_FIT_GROWTH = 1.2
"""``qd-bo``'s and ``mo-bo``'s GP of an outcome is warm-started while it is fitted on at most
this many times the observations of that outcome's last cold fit, and fitted cold again past
it. Warm-started at every ask, the chain can stay in the optimum it found on few points: in
a ``mo-bo`` run (4 floats, batch 2) the fitness GP's log-likelihood per observation was
−0.24 at n = 58 against 0.97 for a cold fit of the same data. Cold fits at n growing by
this factor cost little (they are cheap while n is small; past ``max_fit_points`` the
fitted n no longer grows, and every fit is warm)."""
FIT_ATTEMPTS = 2  # botorch retries a failed fit from resampled priors; 5 by default


CPU_THREADS = 1
"""Torch threads for a fit and an acquisition on the CPU. Their matrices are small
(n ≤ a few hundred): a second thread saves little, and on cores shared with other work
OpenMP's spinning threads made single asks 10–20× slower (18–31 s instead of 1–2 s at
n = 50–200 on 2 busy cores). One thread also makes results independent of the core count."""


@contextlib.contextmanager
def torch_threads(count: int = CPU_THREADS) -> Iterator[None]:
    """``torch.set_num_threads(count)`` for the duration, the previous count restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def device() -> torch.device:
    """CUDA when there is one (the GP math runs there), else the CPU."""
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


class Encoder:
    """Unit cube <-> the GP's input space.

    - Categorical coordinates become choice indices 0 … n−1, so that a
      ``MixedSingleTaskGP`` gives them a categorical kernel.
    - A parameter inactive in a point (its ``when`` unmet) sits at 0.5 in the GP's input,
      whatever the raw coordinate holds: the GP sees one value where the objective cannot
      depend on it, instead of noise. When optimising the acquisition, each categorical
      combination fixes the parameters it switches off at 0.5 too.
    """

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.dim = space.dim
        self.cats: list[tuple[int, int]] = [
            (slot.start, len(slot.param.choices)) for slot in space.slots if isinstance(slot.param, CategoricalParam)
        ]
        self._slots = {slot.name: slot for slot in space.slots}
        self._conditional = [slot for slot in space.slots if slot.param.when]

    @property
    def cat_dims(self) -> list[int]:
        return [d for d, _ in self.cats]

    def to_model(self, x: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=float, copy=True)
        if self._conditional and out.size:
            flat = out.reshape(-1, self.dim)
            for name, active in self._active_masks(flat).items():
                slot = self._slots[name]
                flat[~active, slot.start : slot.start + slot.size] = 0.5
            out = flat.reshape(out.shape)
        for d, n in self.cats:
            out[..., d] = np.minimum(np.floor(out[..., d] * n), n - 1)
        return out

    def _active_masks(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        """Per conditional parameter, which rows (unit-cube points) have it active."""
        masks: dict[str, np.ndarray] = {}
        decoded: list[dict[str, Any]] | None = None  # decoded once, for conditions on numbers
        for slot in self.space.slots:
            when = slot.param.when
            if not when:
                masks[slot.name] = np.ones(len(flat), dtype=bool)
            elif all(isinstance(self._slots[p].param, CategoricalParam) for p in when if p in self._slots):
                active = np.ones(len(flat), dtype=bool)
                for parent, wanted in when.items():
                    parent_slot = self._slots.get(parent)
                    if parent_slot is None:
                        active[:] = False
                        continue
                    choices = list(parent_slot.param.choices)
                    allowed = [choices.index(w) for w in (wanted if isinstance(wanted, list) else [wanted])
                               if w in choices]
                    index = np.minimum(np.floor(flat[:, parent_slot.start] * len(choices)), len(choices) - 1)
                    active &= masks[parent] & np.isin(index, allowed)
                masks[slot.name] = active
            else:
                decoded = decoded if decoded is not None else [self.space.decode(row) for row in flat]
                masks[slot.name] = np.array([slot.name in values for values in decoded])
        return {slot.name: masks[slot.name] for slot in self._conditional}

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
        """Categorical combinations to optimise over (all of them, or a random sample), each
        with the coordinates of the parameters it switches off fixed at 0.5."""
        if not self.cats:
            return []
        sizes = [range(n) for _, n in self.cats]
        total = math.prod(len(s) for s in sizes)
        if total <= MAX_CATEGORY_COMBOS:
            combos = list(itertools.product(*sizes))
        else:
            combos = [tuple(int(rng.integers(n)) for _, n in self.cats) for _ in range(MAX_CATEGORY_COMBOS)]
        fixed = []
        for combo in combos:
            features = {d: float(v) for (d, _), v in zip(self.cats, combo, strict=True)}
            point = np.full((1, self.dim), 0.5)
            for (d, n), v in zip(self.cats, combo, strict=True):
                point[0, d] = (v + 0.5) / n
            for name, active in self._active_masks(point).items():
                slot = self._slots[name]
                if not active[0]:
                    features.update({slot.start + i: 0.5 for i in range(slot.size)})
            fixed.append(features)
        return fixed


CONSTANT_STD = 1e-12
"""A column whose standard deviation, divided by its largest magnitude, is below this does
not vary: it is centred, not scaled (float64 resolves 2e-16 of the magnitude)."""


@dataclasses.dataclass(frozen=True)
class OutcomeScale:
    """Per column, y = (z · std + mean) · scale: z is what the model is fitted on;
    ``constant``: whether the column does not vary (its z all zero)."""

    scale: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    constant: np.ndarray

    def mean_of(self, z_mean: np.ndarray) -> np.ndarray:
        """A posterior mean of z in the outcomes' units."""
        return (z_mean * self.std + self.mean) * self.scale

    def std_of(self, z_std: np.ndarray) -> np.ndarray:
        """A posterior standard deviation of z in the outcomes' units (never squared: no overflow)."""
        return z_std * (self.std * self.scale)


def standardise(y: np.ndarray) -> tuple[np.ndarray, OutcomeScale]:
    """Outcomes (n × k, finite) standardised per column, and the map back: each column is
    divided by its largest magnitude (1 if all zero), then centred on its mean and divided
    by its standard deviation, all in float64. A column whose standard deviation is below
    ``CONSTANT_STD`` is constant: its z is exactly zero, its std 1."""
    y = np.asarray(y, dtype=np.float64)
    scale = np.max(np.abs(y), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    unit = y / scale
    mean = unit.mean(axis=0)
    std = unit.std(axis=0, ddof=1) if len(unit) > 1 else np.zeros(unit.shape[1])
    constant = ~(std >= CONSTANT_STD)
    std = np.where(constant, 1.0, std)
    z = np.where(constant, 0.0, (unit - mean) / std)
    return z, OutcomeScale(scale, mean, std, constant)


DOMINANCE_CHUNK = 4_000_000  # elements (rows × points × outcomes) compared at once by :func:`best_first`


def best_first(y: np.ndarray) -> tuple[np.ndarray, int]:
    """The observations (rows of ``y``, n × k outcomes, all maximised) best first, and how
    many lead that order undominated. One outcome: by its value, highest first. Several: by
    how many observations dominate each (at least as good in every outcome, better in one;
    0 for the non-dominated), then by the first outcome, highest first. Ties keep the
    observations' order."""
    y = np.asarray(y, dtype=float)
    n, k = y.shape
    if k == 1:
        order = np.argsort(-y[:, 0], kind="stable")
        return order, int(np.count_nonzero(y[:, 0] == y[order[0], 0])) if n else 0
    dominated_by = np.zeros(n, dtype=np.int64)
    step = max(1, DOMINANCE_CHUNK // max(1, n * k))
    for start in range(0, n, step):
        rows = y[start : start + step, None, :]  # rows × 1 × k, against every observation (1 × n × k)
        dominates = (y[None] >= rows).all(axis=-1) & (y[None] > rows).any(axis=-1)
        dominated_by[start : start + step] = dominates.sum(axis=1)
    order = np.lexsort((-y[:, 0], dominated_by))
    return order, int(np.count_nonzero(dominated_by == 0))


@contextlib.contextmanager
def quiet_inputs() -> Iterator[None]:
    """BoTorch's ``InputDataWarning`` silenced while a model is built: a constant outcome
    (a measure that never varies) is standardised to zeros, which its check calls
    "not standardized" on every ask."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputDataWarning)
        yield


def tensor(x: Any, dev: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.double, device=dev)


def fit_gp(x: torch.Tensor, y: torch.Tensor, cat_dims: list[int],
           start: Mapping[str, np.ndarray] | None = None) -> SingleTaskGP:
    """An exact GP of one outcome (y: n × 1, through :func:`standardise`), hyperparameters by marginal likelihood.

    ``start`` (what :func:`hyperparameters` returned for the previous fit of the same
    outcome) warm-starts the optimiser, capped at ``WARM_FIT_MAXITER`` iterations: one more
    observation moves the optimum little, so it converges in a few iterations instead of a
    hundred. A start that does not fit the model (a parameter missing, of another shape or
    not finite: another space, another model) is ignored whole, and the fit is cold."""
    with quiet_inputs():
        if cat_dims:
            model = MixedSingleTaskGP(x, y, cat_dims=cat_dims, outcome_transform=Standardize(m=1))
        else:
            model = SingleTaskGP(x, y, outcome_transform=Standardize(m=1))
    warm = start is not None and _load_hyperparameters(model, start)
    _fit(ExactMarginalLogLikelihood(model.likelihood, model), WARM_FIT_MAXITER if warm else FIT_MAXITER)
    return model


def _fit(mll: Any, maxiter: int = FIT_MAXITER) -> None:
    """Maximise ``mll`` over the hyperparameters: at most ``maxiter`` L-BFGS iterations,
    ``FIT_ATTEMPTS`` attempts, botorch's warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit_gpytorch_mll(mll, optimizer_kwargs={"options": {"maxiter": maxiter}}, max_attempts=FIT_ATTEMPTS)


def hyperparameters(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The model's raw hyperparameters by name (not its data): a fit's warm start."""
    return {name: p.detach().cpu().numpy().copy() for name, p in model.named_parameters()}


def start_fits(model: torch.nn.Module, start: Mapping[str, np.ndarray] | None) -> bool:
    """Whether ``start`` holds a value for every parameter of ``model``: its name, its shape, finite."""
    params = list(model.named_parameters())
    return bool(start) and bool(params) and all(
        (value := start.get(name)) is not None and tuple(np.shape(value)) == tuple(p.shape)
        and bool(np.isfinite(value).all()) for name, p in params)


def _load_hyperparameters(model: torch.nn.Module, values: Mapping[str, np.ndarray]) -> bool:
    """Copy ``values`` into the model's parameters when they fit every one (:func:`start_fits`);
    else change nothing. Whether they were copied."""
    if not start_fits(model, values):
        return False
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.as_tensor(values[name], dtype=p.dtype, device=p.device))
    return True


def fit_model_list(x: torch.Tensor, ys: torch.Tensor, cat_dims: list[int],
                   starts: Sequence[Mapping[str, np.ndarray] | None] | None = None) -> ModelListGP:
    """Independent GPs of each column of ``ys`` (n × k, through :func:`standardise`) on the
    same inputs: a ``ModelListGP`` of :func:`fit_gp`'s models, each fitted on its own and
    warm-started from ``starts[i]`` (column i's previous fit; None, or no ``starts``: cold).

    One model per outcome rather than one batched multi-output model (``SingleTaskGP`` and
    ``MixedSingleTaskGP`` take k columns): a batched fit runs one L-BFGS over every
    outcome's hyperparameters until the slowest converges, and took 1.5–2× as long (n = 500,
    three outcomes, cold and warm) for optima no better."""
    starts = starts if starts is not None else [None] * ys.shape[1]
    return ModelListGP(*[fit_gp(x, ys[:, i : i + 1], cat_dims, start=start)
                         for i, start in zip(range(ys.shape[1]), starts, strict=True)])
