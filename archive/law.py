"""The entropy-performance law of Cui et al. (arXiv 2505.22617): R = −a·exp(H) + b.

R is the performance (a campaign's objective) and H the policy entropy (a measure, nats).
The law predicts the performance ceiling at H = 0: R = −a + b. It is fitted by least
squares with :func:`scipy.optimize.curve_fit` (the model is linear in a and b, so the
fit is the ordinary least-squares line of R on exp(H), started from that solution);
the 95 % confidence intervals are ``estimate ± t_{0.975, n−2} · standard error``, from
the parameters' covariance, and the ceiling's interval uses
Var(−a + b) = Var(a) + Var(b) − 2 Cov(a, b). R² = 1 − SS_res / SS_tot.

Points that cannot determine the law are refused before fitting with
:class:`LawFitError` (:func:`_fit_points`), one reason each, never numbers: fewer than
:data:`MIN_POINTS`; fewer than :data:`MIN_POINTS` distinct entropies
(:func:`distinct_entropies`: values closer than :data:`ENTROPY_TOLERANCE` nats, or than
:data:`ENTROPY_RELATIVE_TOLERANCE` of the entropies' spread, count as one; a curve of two
parameters through two entropies always fits, so its a, b and ceiling would say nothing);
and a performance that is the same at every point (a = 0 and the ceiling is that value).
A fit whose covariance cannot be estimated is refused too (SciPy's ``OptimizeWarning``
is not shown), and so is one whose estimates, intervals or R² are not finite floats
(values too large to square, such as objectives of ±1e200).

The sign of a (:func:`floor_warnings`): with a > 0, R falls as H grows and −a + b is the
law's highest R, its ceiling; with a < 0, R *rises* with H and −a + b is its lowest R
for H >= 0, a floor, not a ceiling. :attr:`LawFit.bound` names which, for labels, and a
fit with a < 0 is warned about.

R is a performance, higher is better: the law's ceiling is the best R that entropy
consumed down to H = 0 leaves reachable, and every reading of it here (the bound's name,
the mixed-regime test of points above the ceiling, the range of R) rests on that. A
campaign whose objective is minimised (a loss) is therefore fitted on its fitness,
R = −objective (:func:`performance_of`, as the archive ranks elites), labelled ``−NAME``
(:func:`performance_name`), with :attr:`LawFit.negated` and :attr:`LawReading.negated` set
and a warning that says so and gives the bound in the objective's own terms
(:func:`negated_warnings`). The fit is the same line either way (least squares is
unchanged by negating R: a, b, −a + b and their intervals change sign, R² does not), so
this chooses the reading, not the numbers: fitted on the loss itself, the loss's highest
value at H = 0, the *worst* bound, would have been called the ceiling, and the paper's
regime (the loss falls as entropy is consumed) would have been warned about as a floor. So
a ceiling is always the best bound, for a minimised objective too. The per-run and pooled
R, a validation accuracy, is a performance already and is never negated.

Over a campaign: every ``done`` evaluation with a finite objective and a finite value of
the entropy measure (looked up in its measures, then its metrics) is one point; only real
numbers count (:func:`real_number`: ``"1"`` or ``False`` is no value). The
default measure is ``final_entropy`` (the ``entropy_rl`` evaluator's) when the campaign
has it, else the campaign's first measure.

Three readings of a campaign (:data:`MODES`, :func:`campaign_law`):

- ``per-run`` (the paper's use): the law is fitted per run, over that run's training
  checkpoints, H = the training entropy and R = the validation accuracy at each
  checkpoint (``metrics["trajectory"]`` of an ``entropy_rl`` evaluation,
  :func:`fit_run_law`). Each run gives its own a, b, ceiling, R², n; the reading
  summarises them by their medians.
- ``pooled``: one fit over every run's checkpoints together.
- ``cross-configuration``: one fit over the runs' *final* values, R = the objective and
  H = the entropy measure, one point per evaluation (:func:`cross_configuration_law`).
  This compares configurations, not one run's entropy consumption.

The default is ``per-run`` when some done evaluation has a trajectory of at least
:data:`MIN_POINTS` checkpoints, else ``cross-configuration``.

Grouped readings, one fit per value of a search parameter (``atlas law NAME --by PARAM``),
are :mod:`archive.law_groups`'; a reading holds them in ``by`` and ``groups``.

Mixed regimes (:func:`mixed_regimes`): with a > 0 the law's highest R for H >= 0 is its
ceiling, at H = 0, so measured R above the ceiling's 95 % interval is possible under the
law only by noise. The rule: take the m points with H >= 0 at which the law's own
prediction lies within the ceiling's 95 % interval (those where it predicts its ceiling,
give or take its uncertainty); under one law with symmetric noise each lies above the
interval's upper bound with probability at most 1/2, so the fit is flagged when k of them
do, k >= :data:`MIN_POINTS`, and the one-sided binomial probability of k or more of m at
1/2 is below :data:`MIXED_P` (a sign test). The warning suggests ``--by`` with the space's
categorical parameters. A flat top (R saturating at its maximum for a while as H grows,
which the law cannot draw) is flagged too: the points then do not follow the law either.
Two regimes that straddle the ceiling evenly near H = 0 are not caught by this rule (R²
and ``--by`` are the tools there).

A ceiling outside R's possible range (:func:`ceiling_range_warnings`): where R's unit is
bounded (:data:`BOUNDED_UNITS`: ``fraction``, [0, 1]; the objective's unit from the
campaign's settings in ``cross-configuration``, ``fraction`` for the validation accuracy
of ``per-run`` and ``pooled``), a fit whose ceiling estimate −a + b lies outside that
range is flagged (the estimate, not its interval: a ceiling of 1.44 [0.95, 1.93] for an
accuracy is an extrapolation the points cannot support, though its interval reaches
below 1); ``per-run`` counts the runs whose ceiling does. A reading's warnings are its
:attr:`LawReading.warnings` (:func:`reading_warnings`), in its ``to_dict()`` too.

Errors name an argument as the Python call and the CLI both spell it: ``measure
(--measure)``, ``mode (--mode)``, ``by (--by)``; a value to give it as the command line
types it, then the call: ``--mode cross-configuration (mode='cross-configuration' from
Python)`` (:data:`CROSS_WORDS`), where ``mode (--mode) cross-configuration`` had read as
neither.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from archive.records import CampaignSettings
from entropy_atlas.errors import AtlasError

DEFAULT_MEASURE = "final_entropy"
MIN_POINTS = 3
PER_RUN, POOLED, CROSS = "per-run", "pooled", "cross-configuration"
MODES = (PER_RUN, POOLED, CROSS)
CROSS_WORDS = f"--mode {CROSS} (mode={CROSS!r} from Python)"  # how an error says to fit across configurations
TRAJECTORY = "trajectory"  # the metric that holds a run's checkpoints
TRAIN_ENTROPY, VAL_ACCURACY = "train_entropy", "val_accuracy"  # its H and R columns
WEAK_R2 = 0.3  # below this, the fitted law explains too little of R to read a ceiling from it
ENTROPY_TOLERANCE = 1e-6  # nats: two entropies closer than this are one value (:func:`distinct_entropies`)
ENTROPY_RELATIVE_TOLERANCE = 1e-3  # ... or closer than this share of the entropies' spread
MIXED_P = 0.005  # :func:`mixed_regimes`' sign test: the one-sided probability below which it flags a fit
UNSET = "(unset)"  # the group of the evaluations without the ``by`` parameter
BOUNDED_UNITS = {"fraction": (0.0, 1.0)}  # a unit whose values lie in a range: R's possible values
VAL_ACCURACY_UNIT = "fraction"  # a trajectory's validation accuracy: the per-run and pooled R


class LawFitError(AtlasError, ValueError):
    """Too few points, or points that cannot determine the law."""


class DegeneratePointsError(LawFitError):
    """Enough points that still cannot determine the law (:func:`_degenerate`: one entropy,
    fewer than :data:`MIN_POINTS` distinct ones, or R the same at every point)."""


@dataclasses.dataclass
class LawFit:
    """R = −a·exp(H) + b fitted to ``n`` points."""

    a: float
    b: float
    a_ci: tuple[float, float]
    b_ci: tuple[float, float]
    ceiling: float  # −a + b, the predicted R at H = 0
    ceiling_ci: tuple[float, float]
    r2: float
    n: int
    measure: str = "entropy"
    objective: str = "objective"  # R's name: ``−NAME`` where negated (:func:`performance_name`)
    entropy: list[float] = dataclasses.field(default_factory=list)
    performance: list[float] = dataclasses.field(default_factory=list)
    negated: bool = False  # R is a minimised objective's negation, its fitness (module docstring)

    @property
    def bound(self) -> str:
        """What −a + b is: ``"ceiling"`` (a >= 0: R falls as H grows, so its value at H = 0
        is the highest) or ``"floor"`` (a < 0: R rises with H, so it is the lowest for H >= 0)."""
        return "floor" if self.a < 0 else "ceiling"

    def predict(self, entropy: Any) -> Any:
        """R at entropy H (scalar or array)."""
        return -self.a * np.exp(entropy) + self.b

    def to_dict(self) -> dict[str, Any]:
        """The fit's numbers and names, without its points (and ``negated``, which a
        reading's :meth:`LawReading.to_dict` gives once)."""
        out = dataclasses.asdict(self)
        out.pop("entropy")
        out.pop("performance")
        out.pop("negated")
        return out


NEGATION = "−"  # the sign before a negated objective's name (:func:`performance_name`)


def performance_name(objective: str, maximize: bool = True) -> str:
    """The name of R for an objective: the objective's own where it is maximised, else
    ``−NAME``, its negation (the module docstring's rule)."""
    return objective if maximize else f"{NEGATION}{objective}"


def performance_of(ev: Mapping[str, Any], maximize: bool = True) -> float | None:
    """An evaluation's R in the ``cross-configuration`` reading: its objective where it is a
    :func:`real_number`, negated where the objective is minimised (its fitness); ``None``
    where it is no number."""
    value = real_number(ev.get("objective"))
    return value if value is None or maximize else -value


MAX_EXP_ARGUMENT = math.log(np.finfo(float).max)  # 709.78: exp of more is inf
HUGE = 1e100  # past this, a value squared (the fit's sums of squares) leaves a float's range


def _law(h: np.ndarray, a: float, b: float) -> np.ndarray:
    return -a * np.exp(h) + b


def _law_jacobian(h: np.ndarray, a: float, b: float) -> np.ndarray:
    """The derivatives of :func:`_law` in a and b at each H: (−exp(H), 1). Given to
    ``curve_fit``, whose finite differences, scaled by the parameter, vanish where a ≈ 0
    (they made the covariance of a flat fit infinite)."""
    return np.column_stack([-np.exp(h), np.ones_like(h)])


def fit_law(entropy: Sequence[float], performance: Sequence[float], measure: str = "entropy",
            objective: str = "objective", negated: bool = False) -> LawFit:
    """Fit R = −a·exp(H) + b to paired (H, R) values: the finite pairs, at least
    :data:`MIN_POINTS`, with exp(H) within a float's range, at least :data:`MIN_POINTS`
    distinct entropies (:func:`distinct_entropies`) and R not the same at every point; a
    fit whose covariance cannot be estimated or whose results are not all finite is
    refused. Each refusal is a :class:`LawFitError`; NumPy's overflow warnings and SciPy's
    ``OptimizeWarning`` on the way are not shown (the refusal says it). ``performance`` is
    R as given; ``negated`` says that it is a minimised objective's negation
    (:attr:`LawFit.negated`: R's range is then the negated range of the objective's unit)."""
    h, r = _fit_points(entropy, performance, measure, objective)
    with np.errstate(all="ignore"):
        fit = _least_squares(h, r, measure, objective)
    _require_finite(fit, h, r)
    fit.negated = negated
    return fit


def distinct_entropies(h: Sequence[float]) -> list[list[float]]:
    """The entropies ``h`` in groups of one value each, lowest first: each group starts at
    its lowest value and takes every later value within the tolerance of it, the larger of
    :data:`ENTROPY_TOLERANCE` nats and :data:`ENTROPY_RELATIVE_TOLERANCE` of the spread
    max(h) − min(h) (so 1e-28 and 0 are one value, and six points at H ≈ 1e-9 beside one
    at 0.09 are two)."""
    values = sorted(float(v) for v in h)
    if not values:
        return []
    tol = entropy_tolerance(values)
    groups = [[values[0]]]
    for v in values[1:]:
        if v - groups[-1][0] > tol:
            groups.append([v])
        else:
            groups[-1].append(v)
    return groups


def entropy_tolerance(h: Sequence[float]) -> float:
    """The distance under which two of the entropies ``h`` are one value (:func:`distinct_entropies`)."""
    return max(ENTROPY_TOLERANCE, ENTROPY_RELATIVE_TOLERANCE * (max(h) - min(h))) if len(h) else ENTROPY_TOLERANCE


def _fit_points(entropy: Sequence[float], performance: Sequence[float], measure: str,
                objective: str) -> tuple[np.ndarray, np.ndarray]:
    """The finite (H, R) pairs :func:`fit_law` fits, or the :class:`LawFitError` of why they cannot be fitted."""
    h = np.asarray(entropy, dtype=float)
    r = np.asarray(performance, dtype=float)
    if h.shape != r.shape or h.ndim != 1:
        raise LawFitError(f"entropy and performance must be paired lists, got shapes {h.shape} and {r.shape}")
    keep = np.isfinite(h) & np.isfinite(r)
    h, r = h[keep], r[keep]
    if len(h) < MIN_POINTS:
        raise LawFitError(f"the entropy-performance law needs at least {MIN_POINTS} points with a finite "
                          f"{objective} and {measure}; got {len(h)}")
    if h.max() > MAX_EXP_ARGUMENT:
        raise LawFitError(f"{measure} reaches {h.max():.6g}, where exp(H) is past a float's range (H <= "
                          f"{MAX_EXP_ARGUMENT:.0f}); the law is for an entropy in nats: is {measure} one?")
    problem = _degenerate(h, r, measure, objective)
    if problem:
        raise DegeneratePointsError(problem)
    return h, r


def _degenerate(h: np.ndarray, r: np.ndarray, measure: str, objective: str) -> str | None:
    """Why finite points ``h``, ``r`` cannot determine the law, one sentence (``None`` where
    they can): one entropy (within :func:`entropy_tolerance`), R the same everywhere (R past
    :data:`HUGE` is left to :func:`_require_finite`), fewer than :data:`MIN_POINTS` distinct
    entropies, or exp(H) the same to a float's precision."""
    groups = distinct_entropies(h)
    top = float(np.abs(r).max())
    flat = top <= HUGE and float(r.max() - r.min()) <= 1e-12 * max(1.0, top)  # huge R: refused as not finite
    span = "" if np.ptp(h) == 0 else f", {h.min():.3g} to {h.max():.3g}: closer than {entropy_tolerance(h):.3g} nats"
    if len(groups) == 1:
        both = f" and the same {objective} ({r[0]:.6g}): there is nothing to fit" if flat else \
            "; the law's slope is undetermined"
        return f"every point has the same {measure} ({h[0]:.6g}{span}){both}"
    if flat:
        return (f"{objective} is the same ({r[0]:.6g}) at every point: it does not change with {measure}, so a = 0 "
                f"and −a + b is that value, neither a ceiling nor a floor")
    if len(groups) < MIN_POINTS:
        shown = ", ".join(f"{g[0]:.3g} ({len(g)} point{'' if len(g) == 1 else 's'})" for g in groups)
        return (f"the points have only {len(groups)} distinct values of {measure} ({shown}; values closer than "
                f"{entropy_tolerance(h):.3g} nats count as one): the law's curve passes through two entropies "
                f"whatever the points, so its a, b and ceiling would say nothing; it needs at least {MIN_POINTS}")
    x = np.exp(h)
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())):
        return (f"exp({measure}) is the same at every point to a float's precision ({measure} {h.min():.6g} to "
                f"{h.max():.6g}); the law's slope is undetermined")
    return None


def _least_squares(h: np.ndarray, r: np.ndarray, measure: str, objective: str) -> LawFit:
    """The least-squares fit of R = −a·exp(H) + b with its 95 % intervals and R² (see the
    module docstring), not checked for being finite: infinite intervals where the
    parameters' covariance cannot be estimated (SciPy's ``OptimizeWarning``, not shown)."""
    import warnings

    from scipy import stats
    from scipy.optimize import OptimizeWarning, curve_fit

    n = len(h)
    slope, intercept = np.polyfit(np.exp(h), r, 1)
    if not np.isfinite([slope, intercept]).all():
        return _not_finite(n, measure, objective)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        (a, b), pcov = curve_fit(_law, h, r, p0=(-slope, intercept), jac=_law_jacobian)
    if np.all(np.isfinite(pcov)):
        t = float(stats.t.ppf(0.975, n - 2))
        se_a, se_b = math.sqrt(max(pcov[0, 0], 0.0)), math.sqrt(max(pcov[1, 1], 0.0))
        se_c = math.sqrt(max(pcov[0, 0] + pcov[1, 1] - 2 * pcov[0, 1], 0.0))
    else:  # refused by :func:`_require_finite`
        t, se_a, se_b, se_c = math.inf, math.inf, math.inf, math.inf
    resid = r - _law(h, a, b)
    ss_res = float(resid @ resid)
    ss_tot = float(((r - r.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    ceiling = -a + b
    return LawFit(a=float(a), b=float(b), a_ci=(a - t * se_a, a + t * se_a), b_ci=(b - t * se_b, b + t * se_b),
                  ceiling=float(ceiling), ceiling_ci=(ceiling - t * se_c, ceiling + t * se_c), r2=r2, n=n,
                  measure=measure, objective=objective, entropy=h.tolist(), performance=r.tolist())


def _not_finite(n: int, measure: str, objective: str) -> LawFit:
    """A fit of ``n`` points whose every result is NaN, for :func:`_require_finite` to refuse."""
    nan = (math.nan, math.nan)
    return LawFit(a=math.nan, b=math.nan, a_ci=nan, b_ci=nan, ceiling=math.nan, ceiling_ci=nan, r2=math.nan,
                  n=n, measure=measure, objective=objective)


def _require_finite(fit: LawFit, h: np.ndarray, r: np.ndarray) -> None:
    """A :class:`LawFitError` unless a, b, the ceiling, their intervals and R² are all
    finite; it blames the values' size only where some R or exp(H) of the points ``h``,
    ``r`` is past :data:`HUGE`."""
    values = (fit.a, fit.b, fit.ceiling, fit.r2, *fit.a_ci, *fit.b_ci, *fit.ceiling_ci)
    if all(math.isfinite(v) for v in values):
        return
    with np.errstate(all="ignore"):
        huge = max(float(np.abs(r).max()), float(np.exp(h).max())) > HUGE
    why = ("its values are too large for a float's range" if huge
           else "the points do not determine a and b apart (their covariance cannot be estimated)")
    raise LawFitError(f"the entropy-performance law cannot be fitted to these {fit.n} points: the fit of "
                      f"{fit.objective} on exp({fit.measure}) is not finite (a {fit.a:.6g}, b {fit.b:.6g}, "
                      f"R² {fit.r2:.3g}); {why}")


def default_measure(settings: CampaignSettings) -> str:
    """``final_entropy`` when the campaign measures it, else its first measure."""
    names = list(settings.measures)
    if DEFAULT_MEASURE in names or not names:
        return DEFAULT_MEASURE
    return names[0]


def campaign_points(name: str, settings: CampaignSettings, done: list[dict[str, Any]],
                    measure: str | None = None) -> tuple[str, list[float], list[float]]:
    """(measure, entropies, performances) of a campaign's ``done`` evaluations (H from the
    evaluation's measures, else its metrics; R their :func:`performance_of`: the objective,
    negated where it is minimised): the pairs where both are :func:`real_number`."""
    measure = measure or default_measure(settings)
    hs, rs = [], []
    seen = False
    for ev in done:
        value = measured_value(ev, measure)
        if value is not None:
            seen = True
        h, r = real_number(value), performance_of(ev, settings.maximize)
        if h is not None and r is not None:
            hs.append(h)
            rs.append(r)
    if not seen and done:
        measures = sorted({k for ev in done for k in (ev.get("measures") or {})})
        metrics = sorted({k for ev in done for k, v in run_metrics(ev).items()
                          if k not in measures and real_number(v) is not None})
        raise LawFitError(f"campaign {name!r} has no measure or metric named {measure!r} (measures: "
                          f"{listed_names(measures)}; metrics with a number: {listed_names(metrics)})")
    return measure, hs, rs


MAX_LISTED_NAMES = 12  # an error lists this many names, then says how many more


def listed_names(names: Sequence[str]) -> str:
    """``names`` joined by commas, the first :data:`MAX_LISTED_NAMES` and ``and N more``; ``none`` for none."""
    more = f" and {len(names) - MAX_LISTED_NAMES} more" if len(names) > MAX_LISTED_NAMES else ""
    return ", ".join(names[:MAX_LISTED_NAMES]) + more or "none"


def measured_value(ev: dict[str, Any], measure: str) -> Any:
    """An evaluation's value of ``measure``: from its measures, else its metrics (``None`` in neither)."""
    value = (ev.get("measures") or {}).get(measure)
    return run_metrics(ev).get(measure) if value is None else value


def real_number(value: Any) -> float | None:
    """``value`` as a float where it is a real number (an ``int`` or ``float``, NumPy's
    too; not a ``bool``) with a finite float value; ``None`` for anything else (``"1"``,
    ``False``, ``None``, NaN, ±inf, an integer past a float's range)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def cross_configuration_law(name: str, settings: CampaignSettings, done: list[dict[str, Any]],
                            measure: str | None = None) -> LawFit:
    """The ``cross-configuration`` fit: one point per ``done`` evaluation, its final
    objective R against its entropy ``measure`` H, so the fit runs across configurations
    (not over one run's training, as the paper's per-run law). A minimised objective is
    fitted on its negation, named ``−NAME`` (module docstring)."""
    measure, hs, rs = campaign_points(name, settings, done, measure)
    if len(hs) < MIN_POINTS:
        raise LawFitError(f"campaign {name!r} has {len(hs)} done evaluation(s) with a finite "
                          f"{settings.objective} and {measure}; the entropy-performance law needs at least "
                          f"{MIN_POINTS}")
    return fit_law(hs, rs, measure=measure, objective=performance_name(settings.objective, settings.maximize),
                   negated=not settings.maximize)


def trajectory_points(trajectory: Any) -> tuple[list[float], list[float]]:
    """(training entropies, validation accuracies) of a run's trajectory: columns
    ``{"train_entropy": [...], "val_accuracy": [...]}`` (the ``entropy_rl`` evaluator's
    ``metrics["trajectory"]``) or a list of ``{"train_entropy": H, "val_accuracy": R}``
    checkpoints; a checkpoint counts where both are :func:`real_number`. Anything else gives no points."""
    if isinstance(trajectory, Mapping):
        hs, rs = trajectory.get(TRAIN_ENTROPY), trajectory.get(VAL_ACCURACY)
        if not isinstance(hs, list) or not isinstance(rs, list) or len(hs) != len(rs):
            return [], []
    elif isinstance(trajectory, list) and all(isinstance(c, Mapping) for c in trajectory):
        hs = [c.get(TRAIN_ENTROPY) for c in trajectory]
        rs = [c.get(VAL_ACCURACY) for c in trajectory]
    else:
        return [], []
    out_h, out_r = [], []
    for h, r in zip(hs, rs, strict=True):
        h, r = real_number(h), real_number(r)
        if h is not None and r is not None:
            out_h.append(h)
            out_r.append(r)
    return out_h, out_r


def fit_run_law(trajectory: Any) -> LawFit:
    """The paper's law for one run: R = −a·exp(H) + b fitted by least squares over the
    run's checkpoints i, H_i its training entropy and R_i its validation accuracy
    (:func:`trajectory_points` reads the forms it takes); at least :data:`MIN_POINTS`."""
    hs, rs = trajectory_points(trajectory)
    return fit_law(hs, rs, measure=TRAIN_ENTROPY, objective=VAL_ACCURACY)


@dataclasses.dataclass
class RunLaw:
    """One run's law: the evaluation (``id``, ``seq``) and its :func:`fit_run_law` fit."""

    evaluation_id: int
    seq: int
    fit: LawFit

    def to_dict(self) -> dict[str, Any]:
        return {"evaluation_id": self.evaluation_id, "seq": self.seq, **self.fit.to_dict()}


@dataclasses.dataclass
class LawGroup:
    """One value of a grouped reading's parameter: ``value`` (``None`` for :data:`UNSET`),
    its ``label`` as shown, its ``n`` points and their ``fit``, or ``None`` and the
    ``reason`` it could not be fitted (fewer than :data:`MIN_POINTS` points, or a
    :class:`LawFitError`)."""

    value: Any
    label: str
    n: int
    fit: LawFit | None = None
    reason: str | None = None
    entropy: list[float] = dataclasses.field(default_factory=list)  # its points, drawn where not fitted
    performance: list[float] = dataclasses.field(default_factory=list)
    varying: tuple[str, ...] = ()  # the other categorical parameters that vary within it
    binned: bool = False  # a range of a continuous parameter's values (``value`` its [low, high]), not one value
    evaluations: int = 0  # how many evaluations gave it points

    def title(self, by: str) -> str:
        """How the group is named in warnings and legends: ``PARAM = VALUE``, or
        ``PARAM in [LOW, HIGH)`` for a range of a continuous parameter."""
        return f"{by} {'in' if self.binned else '='} {self.label}"

    def to_dict(self) -> dict[str, Any]:
        """``value``, ``label``, ``unset``, ``n``, ``fitted``, ``reason`` and the fit's a, b,
        ceiling, their intervals and R² (``None`` each where not fitted)."""
        keys = ("a", "b", "a_ci", "b_ci", "ceiling", "ceiling_ci", "r2")
        fitted = {k: getattr(self.fit, k) for k in keys} if self.fit else dict.fromkeys(keys)
        return {"value": self.value, "label": self.label, "unset": self.label == UNSET and self.value is None,
                "n": self.n, "fitted": self.fit is not None, "reason": self.reason, **fitted}


@dataclasses.dataclass
class LawReading:
    """A campaign's law in one of :data:`MODES`. ``fit`` is the single fit (``pooled``,
    ``cross-configuration``); ``runs`` the per-run fits (``per-run``); ``skipped`` the
    evaluations a per-run or pooled reading could not use, with why. A grouped reading
    has its parameter in ``by`` and one :class:`LawGroup` per value in ``groups``, fitted
    ones first by ceiling (highest first), then the others by label. ``categorical``
    names the space's categorical parameters (:func:`categorical_params`), for the
    mixed-regime warning's suggestion; ``unit`` is R's unit (:func:`reading_unit`), for
    the ceiling-range warning. ``negated``: R is a minimised objective's negation, named
    ``−NAME`` in ``objective`` (a ``cross-configuration`` reading; module docstring)."""

    mode: str
    name: str
    measure: str
    objective: str
    fit: LawFit | None = None
    runs: list[RunLaw] = dataclasses.field(default_factory=list)
    skipped: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    by: str | None = None
    groups: list[LawGroup] = dataclasses.field(default_factory=list)
    categorical: tuple[str, ...] = ()
    unit: str | None = None
    reason: str | None = None  # why a grouped reading has no ungrouped ``fit`` (:class:`DegeneratePointsError`)
    binned: bool = False  # ``by`` is continuous and its groups are ranges of its values (:mod:`archive.law_groups`)
    negated: bool = False  # R is the minimised objective's negation (:func:`performance_of`)

    @property
    def warnings(self) -> list[str]:
        """What a reader of this reading should doubt, one sentence each (:func:`reading_warnings`):
        what ``atlas law`` prints on stderr and in its ``--json`` ``warnings``."""
        return reading_warnings(self)

    def median(self) -> dict[str, float]:
        """The medians of the per-run a, b, ceiling −a + b, R² and n (NaN with no runs)."""
        keys = ("a", "b", "ceiling", "r2", "n")
        if not self.runs:
            return dict.fromkeys(keys, math.nan)
        return {k: float(np.median([getattr(r.fit, k) for r in self.runs])) for k in keys}

    def to_dict(self) -> dict[str, Any]:
        """``mode``, ``measure``, ``objective`` (R's name: ``−NAME`` where ``negated``),
        ``negated`` and, per mode: the fit's fields (``pooled``, ``cross-configuration``),
        or ``runs`` and their ``median`` (``per-run``); ``skipped`` runs; ``by`` and its
        ``groups`` where grouped; last, the :attr:`warnings`."""
        out: dict[str, Any] = {"mode": self.mode, "measure": self.measure, "objective": self.objective,
                               "negated": self.negated}
        if self.fit is not None:
            out.update(self.fit.to_dict())
        if self.mode == PER_RUN:
            out["runs"] = [r.to_dict() for r in self.runs]
            out["median"] = self.median()
        if self.mode != CROSS:
            out["skipped"] = [{"evaluation_id": i, "reason": why} for i, why in self.skipped]
        if self.by is not None:
            out["by"] = self.by
            out["binned"] = self.binned
            out["reason"] = self.reason
            out["groups"] = [g.to_dict() for g in self.groups]
        out["warnings"] = self.warnings
        return out


def _run_fits(done: list[dict[str, Any]]) -> tuple[list[RunLaw], list[tuple[int, str]]]:
    runs, skipped = [], []
    for ev in done:
        raw = run_metrics(ev).get(TRAJECTORY)
        ident = int(ev.get("id", -1))
        if raw is None:
            skipped.append((ident, "no trajectory"))
            continue
        rs = trajectory_points(raw)[1]
        if len(rs) >= MIN_POINTS and min(rs) == max(rs):  # a = 0 and R² = 1 would say nothing
            skipped.append((ident, f"{VAL_ACCURACY} is the same ({rs[0]:.6g}) at every checkpoint"))
            continue
        try:
            runs.append(RunLaw(ident, int(ev.get("seq", -1)), fit_run_law(raw)))
        except LawFitError as exc:
            skipped.append((ident, str(exc)))
    return runs, skipped


def _untracked(done: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """The evaluations of ``done`` without a trajectory, as a pooled reading's ``skipped``."""
    return [(int(ev.get("id", -1)), "no trajectory") for ev in done if run_metrics(ev).get(TRAJECTORY) is None]


def has_trajectories(done: list[dict[str, Any]]) -> bool:
    """Whether some evaluation has a trajectory with at least :data:`MIN_POINTS` points."""
    return any(len(trajectory_points(run_metrics(ev).get(TRAJECTORY))[0]) >= MIN_POINTS
               for ev in done)


def resolve_mode(done: list[dict[str, Any]], measure: str | None, mode: str | None,
                 runs_default: str = PER_RUN) -> str:
    """The reading's mode: ``mode`` where given (one of :data:`MODES`), else ``runs_default``
    (``per-run``) when :func:`has_trajectories` and no ``measure`` is named, else
    ``cross-configuration``. An empty ``measure`` or an unknown ``mode`` is refused."""
    if measure is not None and not measure.strip():
        raise LawFitError("measure (--measure) is empty: name a measure or a metric, or leave it out for the default")
    if mode is None:
        mode = runs_default if measure is None and has_trajectories(done) else CROSS
    if mode not in MODES:
        raise LawFitError(f"unknown mode (--mode) {mode!r} (known: {', '.join(MODES)})")
    return mode


def campaign_law(name: str, settings: CampaignSettings, done: list[dict[str, Any]],
                 measure: str | None = None, mode: str | None = None,
                 space: Mapping[str, Any] | None = None, keep_unfitted: bool = False) -> LawReading:
    """The campaign's law in ``mode`` (see the module docstring; the default by
    :func:`resolve_mode`); ``measure`` is the cross-configuration fit's H only (the per-run
    and pooled fits use each run's training entropy). ``space`` is the campaign spec's
    ``space``, read for :func:`categorical_params`. One fit per value of a parameter:
    :func:`archive.law_groups.grouped_law`, which passes ``keep_unfitted``: points the law
    cannot be fitted to (:class:`DegeneratePointsError`) then give a reading with no
    ``fit`` and the ``reason``, as its groups may still be fitted, instead of the error."""
    mode = resolve_mode(done, measure, mode)
    try:
        reading = _reading(name, settings, done, measure, mode)
    except DegeneratePointsError as exc:
        if not keep_unfitted or mode == PER_RUN:
            raise
        reading = LawReading(mode, name, measure or default_measure(settings) if mode == CROSS else TRAIN_ENTROPY,
                             performance_name(settings.objective, settings.maximize) if mode == CROSS
                             else VAL_ACCURACY, reason=str(exc), skipped=_untracked(done) if mode == POOLED else [])
    reading.negated = mode == CROSS and not settings.maximize
    reading.categorical = categorical_params(space, done)
    reading.unit = reading_unit(reading, settings)
    return reading


def reading_unit(reading: LawReading, settings: CampaignSettings) -> str | None:
    """R's unit: the objective's in the settings' ``units`` (``cross-configuration``; a
    negated objective's too, its range negated by :func:`fit_range`), else
    :data:`VAL_ACCURACY_UNIT` (``per-run`` and ``pooled``, whose R is a validation accuracy)."""
    return settings.units.get(settings.objective) if reading.mode == CROSS else VAL_ACCURACY_UNIT


def _reading(name: str, settings: CampaignSettings, done: list[dict[str, Any]], measure: str | None,
             mode: str) -> LawReading:
    """The ungrouped reading of :func:`campaign_law` in ``mode`` (a known one)."""
    if mode == CROSS:
        fit = cross_configuration_law(name, settings, done, measure)
        return LawReading(CROSS, name, fit.measure, fit.objective, fit=fit)
    if measure is not None:
        raise LawFitError(f"measure (--measure) chooses the cross-configuration fit's H; the {mode} fit uses "
                          f"each run's {TRAIN_ENTROPY} (metrics.{TRAJECTORY}): drop measure (--measure) for the "
                          f"{mode} fit, or fit {measure} across configurations with {CROSS_WORDS}")
    runs, skipped = _run_fits(done)
    if mode == PER_RUN:
        if not runs:
            raise LawFitError(f"campaign {name!r} has no done evaluation with a trajectory of at least "
                              f"{MIN_POINTS} checkpoints ({len(done)} done); fit across configurations "
                              f"with {CROSS_WORDS}")
        return LawReading(PER_RUN, name, TRAIN_ENTROPY, VAL_ACCURACY, runs=runs, skipped=skipped)
    hs: list[float] = []
    rs: list[float] = []
    used = 0
    for ev in done:
        h, r = trajectory_points(run_metrics(ev).get(TRAJECTORY))
        used += bool(h)
        hs += h
        rs += r
    if len(hs) < MIN_POINTS:
        raise LawFitError(f"campaign {name!r} has {len(hs)} trajectory checkpoint(s) over its done evaluations; "
                          f"the pooled law needs at least {MIN_POINTS}; fit across configurations with "
                          f"{CROSS_WORDS}")
    fit = fit_law(hs, rs, measure=TRAIN_ENTROPY, objective=VAL_ACCURACY)
    return LawReading(POOLED, name, TRAIN_ENTROPY, VAL_ACCURACY, fit=fit,
                      skipped=[s for s in skipped if s[1] == "no trajectory"])


def categorical_params(space: Mapping[str, Any] | None, done: list[dict[str, Any]]) -> tuple[str, ...]:
    """The categorical parameters, in the space's order: those of ``type: categorical`` in
    ``space`` (a campaign spec's); without a space, those whose every value over ``done``
    is a str or a bool."""
    if isinstance(space, Mapping):
        return tuple(k for k, p in space.items() if isinstance(p, Mapping) and p.get("type") == "categorical")
    values: dict[str, list[Any]] = {}
    for ev in done:
        for k, v in (ev.get("params") or {}).items():
            values.setdefault(k, []).append(v)
    return tuple(k for k, vs in values.items() if all(isinstance(v, str | bool) for v in vs))


@dataclasses.dataclass
class MixedRegimes:
    """What :func:`mixed_regimes` found: ``near`` points where the law predicts its
    ceiling, ``above`` of them above the ceiling's 95 % interval, and ``p``, the sign
    test's one-sided probability of that many or more under one law."""

    near: int
    above: int
    p: float


def mixed_regimes(fit: LawFit) -> MixedRegimes | None:
    """The mixed-regime rule (module docstring): with a > 0, the m points with H >= 0 whose
    predicted R lies within the ceiling's 95 % interval; flagged when k >= :data:`MIN_POINTS`
    of them lie above its upper bound and P(Binomial(m, 1/2) >= k) < :data:`MIXED_P`;
    ``None`` where the rule does not fire."""
    from scipy import stats

    h, r = np.asarray(fit.entropy, dtype=float), np.asarray(fit.performance, dtype=float)
    if fit.a <= 0 or len(h) != fit.n:
        return None
    near = (h >= 0) & (fit.predict(h) >= fit.ceiling_ci[0])
    top = fit.ceiling_ci[1] + 1e-9 * max(1.0, abs(fit.ceiling))  # not a rounding error's excess
    m, k = int(near.sum()), int((near & (r > top)).sum())
    if k < MIN_POINTS:
        return None
    p = float(stats.binom.sf(k - 1, m, 0.5))
    return MixedRegimes(near=m, above=k, p=p) if p < MIXED_P else None


def _mixed_warning(fit: LawFit, mixed: MixedRegimes, categorical: Sequence[str]) -> str:
    """The mixed-regime warning: what :func:`mixed_regimes` found and the ``--by`` to try."""
    lo, hi = fit.ceiling_ci
    which = (f"categorical parameters: {', '.join(categorical)}" if categorical
             else "a parameter that separates them")
    return (f"the points do not follow one law: {mixed.above} of the {mixed.near} points where the law predicts "
            f"its ceiling (H near 0) lie above the ceiling −a + b = {fit.ceiling:.3g} and its 95% CI "
            f"[{lo:.3g}, {hi:.3g}], which one law exceeds only by noise, at most half of them (sign test p = "
            f"{mixed.p:.2g}); they may mix regimes: fit each apart with --by PARAM ({which})")


def _group_warnings(reading: LawReading) -> list[str]:
    """A grouped reading's warnings: the measure's (once); the ungrouped fit's own
    :func:`_fit_warnings` prefixed ``all points (ungrouped):``, less its mixed-regime one
    (grouping is what that one suggests); each fitted group's prefixed with its
    :meth:`LawGroup.title` (its mixed-regime suggestion naming the other categorical
    parameters that vary within the group); a line when each fitted group of a pooled
    reading is one run (:func:`_one_run_groups_warning`); and one when no group could be
    fitted (:func:`_no_group_warning`)."""
    out = _measure_warnings(reading.measure)
    if reading.fit is not None:
        out += [f"all points (ungrouped): {w}"
                for w in _fit_warnings(reading.fit, reading.categorical, reading.unit, mixed=False)]
    for group in reading.groups:
        if group.fit is not None:
            out += [f"{group.title(reading.by or '')}: {w}"
                    for w in _fit_warnings(group.fit, group.varying, reading.unit)]
    out += _one_run_groups_warning(reading)
    if reading.groups and not any(g.fit for g in reading.groups):
        out.append(_no_group_warning(reading))
    return out


def _one_run_groups_warning(reading: LawReading) -> list[str]:
    """The warning for a pooled grouped reading whose fitted groups, two or more, each
    hold one run: each group's fit is then that run's per-run law, not a law of the value."""
    fitted = [g for g in reading.groups if g.fit is not None]
    if reading.mode != POOLED or len(fitted) < 2 or any(g.evaluations != 1 for g in fitted):
        return []
    return [f"each of the {len(fitted)} fitted groups of {reading.by} holds one run: each group's fit is that "
            f"run's own law over its checkpoints (what --mode per-run reads), not a law shared by the runs of "
            f"one value of {reading.by}; group by a parameter several runs share"]


def _no_group_warning(reading: LawReading) -> str:
    """Why no group of a grouped reading was fitted. For a categorical ``by`` (in the
    reading's ``categorical``): its groups are too small, the largest has k points, so more
    evaluations per value are needed (or, where some group has :data:`MIN_POINTS` points,
    each group's reason says why it was not fitted); for any other parameter, the question
    whether it is continuous (one value per evaluation makes groups of one)."""
    by, count = reading.by, len(reading.groups)
    largest = max(g.n for g in reading.groups)
    head = f"no value of {by} has a fittable group of at least {MIN_POINTS} points ({count} groups"
    if reading.binned:
        return (f"{head}, ranges of the continuous {by}, the largest of {largest} point"
                f"{'' if largest == 1 else 's'}): see each group's reason")
    if by not in reading.categorical:
        return f"{head}): is {by} continuous?"
    if largest < MIN_POINTS:
        return (f"{head}, the largest of {largest} point{'' if largest == 1 else 's'}): the groups of the "
                f"categorical {by} are too small; fitting the law per value needs more evaluations per value")
    return f"{head}, the largest of {largest} points): no group of the categorical {by} could be fitted (see each " \
           f"group's reason)"


def reading_warnings(reading: LawReading) -> list[str]:
    """:func:`law_warnings` of the single fit (with the reading's categorical parameters
    for the mixed-regime suggestion); for a grouped reading, :func:`_group_warnings` in its
    place; for ``per-run``, the median R² below :data:`WEAK_R2`, how many runs fall below
    it, how many runs have a ceiling outside R's range (:func:`_runs_range_warnings`), and
    how many evaluations were skipped."""
    if reading.by is not None:
        out = _group_warnings(reading)
    elif reading.fit is not None:
        out = law_warnings(reading.fit, reading.categorical, reading.unit)
    else:
        out = []
        weak = sum(r.fit.r2 < WEAK_R2 for r in reading.runs)
        median = reading.median()["r2"]
        if median < WEAK_R2:
            out.append(f"the median per-run R² = {median:.3f} is below {WEAK_R2:g}: the runs' fits explain little "
                       f"of {reading.objective}, so their a, b and ceilings say little")
        elif weak:
            out.append(f"{weak} of {len(reading.runs)} runs have R² below {WEAK_R2:g}")
        out += _runs_floor_warnings(reading)
        out += _runs_range_warnings(reading)
    if reading.mode != CROSS and reading.skipped:
        out.append(f"{len(reading.skipped)} done evaluation(s) skipped (no usable trajectory)")
    return negated_warnings(reading) + out


def negated_warnings(reading: LawReading) -> list[str]:
    """The line, first of a ``negated`` reading's warnings, that says R is the minimised
    objective's negation and gives the ungrouped fit's bound in the objective's own terms
    (none for a reading that is not negated)."""
    if not reading.negated:
        return []
    name = reading.objective.removeprefix(NEGATION)
    head = (f"{name} is minimised, so the law is fitted to R = {reading.objective} (higher is better, as the "
            f"law's R): a, b and −a + b are values of {reading.objective}")
    fit = reading.fit
    if fit is None:
        return [f"{head}; a ceiling is the negation of the best {name} the law predicts"]
    lo, hi = fit.ceiling_ci
    best = "the best" if fit.bound == "ceiling" else "the worst"
    return [f"{head}: the {fit.bound} −a + b = {fit.ceiling:.3g} is a {name} of {-fit.ceiling:.3g} "
            f"[{-hi:.3g}, {-lo:.3g}] at H = 0, {best} the law predicts for H >= 0"]


def _runs_floor_warnings(reading: LawReading) -> list[str]:
    """A per-run reading's line counting the runs with a < 0 (:func:`floor_warnings`),
    naming up to five (evaluation and a); none where no run has."""
    rising = [r for r in reading.runs if r.fit.bound == "floor"]
    if not rising:
        return []
    shown = ", ".join(f"{r.evaluation_id} (a = {r.fit.a:.3g})" for r in rising[:5])
    more = f" and {len(rising) - 5} more" if len(rising) > 5 else ""
    return [f"{len(rising)} of {len(reading.runs)} runs have a < 0: their {reading.objective} rises with "
            f"{reading.measure}, so their −a + b is the value at H = 0, a floor, not a ceiling (marked floor in "
            f"the table and the figure): evaluations {shown}{more}"]


def _runs_range_warnings(reading: LawReading) -> list[str]:
    """A per-run reading's line counting the runs whose ceiling lies outside R's range
    (:func:`unit_range` of the reading's ``unit``; none where it is unbounded or none does)."""
    bounds = unit_range(reading.unit)
    if bounds is None:
        return []
    outside = [r for r in reading.runs if _outside(r.fit.ceiling, bounds)]
    if not outside:
        return []
    lo, hi = bounds
    shown = ", ".join(f"{r.evaluation_id} ({outside_text(r.fit.ceiling, bounds)})" for r in outside[:5])
    more = f" and {len(outside) - 5} more" if len(outside) > 5 else ""
    return [f"{len(outside)} of {len(reading.runs)} runs have a ceiling −a + b outside [{lo:g}, {hi:g}], the range "
            f"of {reading.objective} (a {reading.unit}): evaluations {shown}{more}; a ceiling no run can reach "
            f"says their checkpoints are too few or too noisy to pin it down"]


def unit_range(unit: str | None) -> tuple[float, float] | None:
    """The range of values of a quantity in ``unit`` (:data:`BOUNDED_UNITS`, matched
    ignoring case and surrounding spaces); ``None`` for an unbounded or unknown unit."""
    return BOUNDED_UNITS.get(unit.strip().lower()) if isinstance(unit, str) else None


def fit_range(fit: LawFit, unit: str | None) -> tuple[float, float] | None:
    """The range of a fit's R where its ``unit`` has one (:func:`unit_range`): the unit's,
    or its negation, [−1, 0] for a fraction, where R is a minimised objective's negation
    (:attr:`LawFit.negated`)."""
    bounds = unit_range(unit)
    if bounds is None or not fit.negated:
        return bounds
    return -bounds[1] + 0.0, -bounds[0] + 0.0  # + 0.0: 0, not -0


def _outside(value: float, bounds: tuple[float, float]) -> bool:
    """Whether ``value`` lies outside ``bounds`` by more than a rounding error (1e-9)."""
    return value < bounds[0] - 1e-9 or value > bounds[1] + 1e-9


def outside_digits(value: float, bounds: tuple[float, float]) -> int:
    """The significant digits, at least 3, that ``value`` takes to be shown outside
    ``bounds`` (3 for a value inside them)."""
    if not _outside(value, bounds):
        return 3
    return next((d for d in range(3, 18) if not bounds[0] <= float(f"{value:.{d}g}") <= bounds[1]), 17)


def outside_text(value: float, bounds: tuple[float, float]) -> str:
    """``value`` (outside ``bounds``) with three significant digits, or as many more as it
    takes for the number shown to lie outside too (1.005, not ``1``, for a value above 1)."""
    return f"{value:.{outside_digits(value, bounds)}g}"


def ceiling_range_warnings(fit: LawFit, unit: str | None) -> list[str]:
    """The warning for a fit whose ceiling estimate −a + b lies outside R's range where R's
    ``unit`` has one (:func:`fit_range`: a ``fraction``'s [0, 1], [−1, 0] for a negated
    one); the rule reads the
    estimate, not its 95 % interval (an interval reaching back into the range does not make
    an impossible estimate plausible), and says when the whole interval lies outside too.
    Its numbers have the digits it takes for each one outside the range to show so
    (:func:`outside_digits`: ``1.0004 [1.0003, 1.0005]``, not ``1 [1, 1]``)."""
    bounds = fit_range(fit, unit)
    if bounds is None or not _outside(fit.ceiling, bounds):
        return []
    lo, hi = bounds
    c_lo, c_hi = fit.ceiling_ci
    side = f"above {hi:g}" if fit.ceiling > hi else f"below {lo:g}"
    whole = " (its whole 95% CI too)" if c_lo > hi or c_hi < lo else ""
    d = max(outside_digits(v, bounds) for v in (fit.ceiling, c_lo, c_hi))  # every number shown as outside as it is
    return [f"the {fit.bound} −a + b = {fit.ceiling:.{d}g} [{c_lo:.{d}g}, {c_hi:.{d}g}] lies {side}"
            f"{whole}, outside "
            f"[{lo:g}, {hi:g}], the range of {fit.objective} ({'the negation of ' if fit.negated else ''}a {unit}): "
            f"no configuration can reach it, so the "
            f"points are probably too few or too noisy to pin the {fit.bound} down"]


def law_warnings(fit: LawFit, categorical: Sequence[str] = (), unit: str | None = None) -> list[str]:
    """What a reader of ``fit`` should doubt, one sentence each: a measure whose name does
    not contain "entropy" (the law relates performance to an entropy H, so another measure
    is probably the wrong axis), R² below :data:`WEAK_R2` (the curve explains little of
    the variation of R, so its a, b and ceiling say little), points that look like
    mixed regimes (:func:`mixed_regimes`; the warning suggests ``--by`` with the
    ``categorical`` parameters), and a ceiling outside the range of R's ``unit``
    (:func:`ceiling_range_warnings`); first, where a < 0, that −a + b is a floor, not a
    ceiling (:func:`floor_warnings`)."""
    return [*_measure_warnings(fit.measure), *_fit_warnings(fit, categorical, unit)]


def _measure_warnings(measure: str) -> list[str]:
    """The warning for a measure whose name does not contain "entropy" (none for one that does)."""
    if "entropy" in measure.lower():
        return []
    return [f"the measure {measure!r} does not look like an entropy; the law R = −a·exp(H) + b "
            f"is about an entropy H (choose one with --measure)"]


def _fit_warnings(fit: LawFit, categorical: Sequence[str], unit: str | None = None,
                  mixed: bool = True) -> list[str]:
    """The warnings on the fit itself: a < 0 (:func:`floor_warnings`), R² below
    :data:`WEAK_R2` (one warning where both, the first in brackets), mixed regimes (unless
    ``mixed`` is false), and a ceiling outside the range of R's ``unit``
    (:func:`ceiling_range_warnings`)."""
    out = floor_warnings(fit)
    if fit.r2 < WEAK_R2:  # with a < 0 too, one warning says both
        floor = f" ({out.pop()})" if out else ""
        out.append(f"R² = {fit.r2:.3f} is below {WEAK_R2:g}: the fit explains little of {fit.objective}, "
                   f"so a, b and the {fit.bound} say little{floor}")
    found = mixed_regimes(fit) if mixed else None
    if found is not None:
        out.append(_mixed_warning(fit, found, categorical))
    return out + ceiling_range_warnings(fit, unit)


def floor_warnings(fit: LawFit) -> list[str]:
    """The warning for a fit with a < 0: R rises with H there, so −a + b, the law's value at
    H = 0, is its lowest for H >= 0, a floor, not a ceiling (:attr:`LawFit.bound`); it says
    too when a's 95 % interval reaches 0 or above (the sign itself is then uncertain)."""
    if fit.bound != "floor":
        return []
    lo, hi = fit.a_ci
    unsure = "; a's 95% CI reaches 0, so the points do not settle whether it rises or falls" if hi >= 0 else ""
    return [f"a = {fit.a:.3g} [{lo:.3g}, {hi:.3g}] is below 0: {fit.objective} rises with {fit.measure} here, "
            f"so −a + b = {fit.ceiling:.3g} is its value at H = 0, a floor, not a ceiling{unsure}"]


def run_metrics(ev: dict[str, Any]) -> dict[str, Any]:
    """An evaluation's metrics, ``{}`` where none or not an object (stored by an older version)."""
    metrics = ev.get("metrics")
    return metrics if isinstance(metrics, dict) else {}
