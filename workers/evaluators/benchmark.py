"""Benchmark domains of the QD literature, vectorised over a batch.

Config: ``{function: sphere | rastrigin | arm, dim: 20, measure_names: [m0, m1]}``
(:class:`~workers.evaluators.configs.BenchmarkConfig`). Params: either one vector
parameter ``x`` (a float with ``size: dim``) or ``x0 … x{dim-1}``; :meth:`check_space`
refuses a space that gives neither. Every result holds the two measures
``measure_names`` names, and no other: :meth:`check_measures` refuses a campaign measure
of another name (a third measure ``m2`` failed every evaluation as missing).

- ``sphere``, ``rastrigin``: the linear-projection domains of Fontaine et al. (2020) as
  pyribs' ``examples/sphere.py`` and the CMA-MAE paper define them. With
  s = 0.4 · 5.12 = 2.048 and the clipping bound B = 5.12:

      sphere:     f(x) = Σ (x_i − s)²
      rastrigin:  f(x) = 10 n + Σ [(x_i − s)² − 10 cos(2π (x_i − s))]
      objective = 100 · (f(x) − f_worst) / (0 − f_worst),  f_worst = f(−B · 1)

  measures: clip each x_i to [−B, B] by x_i ↦ B / x_i when |x_i| > B, then
  m₁ = Σ_{i < n/2} clip(x_i), m₂ = Σ_{i ≥ n/2} clip(x_i); each in [−B n/2, B n/2].
- ``arm``: the planar arm repertoire (Cully et al. 2015; pyribs' tutorial): n links of
  length 1, joint angles θ ∈ [−π, π]; objective = −Var(θ); measures = the end
  effector (x, y) = (Σ cos(Σ_{j≤i} θ_j), Σ sin(Σ_{j≤i} θ_j)), each in [−n, n].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from workers.contract import EvalContext, Evaluator, Units, measure_problems
from workers.evaluators.configs import BenchmarkConfig, validate_config

BOUND = 5.12
SHIFT = 0.4 * BOUND


def _sphere_raw(x: np.ndarray) -> np.ndarray:
    return np.sum(np.square(x - SHIFT), axis=1)


def _rastrigin_raw(x: np.ndarray) -> np.ndarray:
    z = x - SHIFT
    return 10 * x.shape[1] + np.sum(np.square(z) - 10 * np.cos(2 * np.pi * z), axis=1)


def linear_projection(x: np.ndarray, raw: str = "sphere") -> tuple[np.ndarray, np.ndarray]:
    """Objectives (n,) in [0, 100] and measures (n, 2) of the linear-projection domain."""
    fn = _sphere_raw if raw == "sphere" else _rastrigin_raw
    dim = x.shape[1]
    worst = fn(np.full((1, dim), -BOUND))[0]
    objective = (fn(x) - worst) / (0.0 - worst) * 100.0
    clipped = x.copy()
    mask = (clipped < -BOUND) | (clipped > BOUND)
    clipped[mask] = BOUND / clipped[mask]
    measures = np.stack(
        [clipped[:, : dim // 2].sum(axis=1), clipped[:, dim // 2 :].sum(axis=1)], axis=1
    )
    return objective, measures


def arm(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Objectives (n,) = −Var(θ) and end-effector measures (n, 2) of a unit-link arm."""
    objective = -np.var(theta, axis=1)
    cum = np.cumsum(theta, axis=1)
    measures = np.stack([np.cos(cum).sum(axis=1), np.sin(cum).sum(axis=1)], axis=1)
    return objective, measures


class BenchmarkEvaluator(Evaluator):
    """Sphere, Rastrigin (linear projection) and the planar arm, a whole batch per call."""

    max_batch_size = 100_000
    config_model = BenchmarkConfig

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        settings: BenchmarkConfig = validate_config(BenchmarkConfig, config)
        self.config = settings.model_dump()
        self.function = settings.function
        self.dim = settings.dim
        self.measure_names = list(settings.measure_names)

    @classmethod
    def check_space(cls, config: dict[str, Any], space: dict[str, dict[str, Any]]) -> list[str]:
        """The space gives the ``dim`` coordinates, always (none under a ``when``): a float
        ``x`` of ``size: dim``, or ``x0 … x{dim-1}``."""
        dim = BenchmarkConfig.model_validate(config).dim
        coordinates = ["x"] if "x" in space else [f"x{i}" for i in range(dim)]
        problems = [f"space.{name}.when: a benchmark coordinate is always needed; it cannot be conditional"
                    for name in coordinates if (space.get(name) or {}).get("when")]
        if "x" in space:
            x = space["x"]
            if x.get("type") != "float":
                return [f"space.x: must be a float parameter (it is {x.get('type')})"]
            if x.get("size", 1) != dim:
                return [f"space.x.size: is {x.get('size', 1)}, but evaluator.config.dim is {dim}"]
            return problems
        missing = [f"x{i}" for i in range(dim) if f"x{i}" not in space]
        if missing:
            return [f"space: the benchmark needs a float x with size {dim} (evaluator.config.dim), or x0 … x{dim - 1}; "
                    f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''} missing"]
        return problems

    @classmethod
    def check_measures(cls, config: dict[str, Any], measures: list[str]) -> list[str]:
        """Each campaign measure is one of the two the results hold (``measure_names``)."""
        names = BenchmarkConfig.model_validate(config).measure_names
        return measure_problems("benchmark", measures, names,
                                returns=f"it returns two, named by evaluator.config.measure_names: {', '.join(names)}")

    @classmethod
    def units(cls, config: dict[str, Any]) -> Units:
        """None: the domains' objectives (a 0-100 score, −Var(θ)) and measures (sums of
        clipped coordinates, an end effector in link lengths) are abstract numbers."""
        return Units()

    def _matrix(self, params: list[dict[str, Any]]) -> np.ndarray:
        rows = []
        for p in params:
            if "x" in p:
                row = np.asarray(p["x"], dtype=float).ravel()
            else:
                row = np.array([p[f"x{i}"] for i in range(self.dim)], dtype=float)
            if row.shape != (self.dim,):
                raise ValueError(f"expected {self.dim} coordinates, got {row.shape[0]}")
            rows.append(row)
        return np.stack(rows)

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> list[dict[str, Any]]:
        x = self._matrix(params)
        if self.function == "arm":
            obj, meas = arm(x)
        else:
            obj, meas = linear_projection(x, self.function)
        m0, m1 = self.measure_names
        return [
            {"objective": float(o), "measures": {m0: float(a), m1: float(b)}}
            for o, (a, b) in zip(obj, meas, strict=True)
        ]
