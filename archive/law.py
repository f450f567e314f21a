"""The entropy-performance law of Cui et al. (arXiv 2505.22617): R = −a·exp(H) + b.

R is the performance (a campaign's objective) and H the policy entropy (a measure, nats).
The law predicts the performance ceiling at H = 0: R = −a + b. It is fitted by least
squares with :func:`scipy.optimize.curve_fit` (the model is linear in a and b, so the
fit is the ordinary least-squares line of R on exp(H), started from that solution);
the 95 % confidence intervals are ``estimate ± t_{0.975, n−2} · standard error``, from
the parameters' covariance, and the ceiling's interval uses
Var(−a + b) = Var(a) + Var(b) − 2 Cov(a, b). R² = 1 − SS_res / SS_tot.

Over a campaign: every ``done`` evaluation with a finite objective and a finite value of
the entropy measure (looked up in its measures, then its metrics) is one point. The
default measure is ``final_entropy`` (the ``entropy_rl`` evaluator's) when the campaign
has it, else the campaign's first measure.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archive.records import CampaignSettings
from entropy_atlas.errors import AtlasError

DEFAULT_MEASURE = "final_entropy"
MIN_POINTS = 3
WEAK_R2 = 0.3  # below this, the fitted law explains too little of R to read a ceiling from it


class LawFitError(AtlasError, ValueError):
    """Too few points, or points that cannot determine the law."""


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
    objective: str = "objective"
    entropy: list[float] = dataclasses.field(default_factory=list)
    performance: list[float] = dataclasses.field(default_factory=list)

    def predict(self, entropy: Any) -> Any:
        """R at entropy H (scalar or array)."""
        return -self.a * np.exp(entropy) + self.b

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out.pop("entropy")
        out.pop("performance")
        return out


def _law(h: np.ndarray, a: float, b: float) -> np.ndarray:
    return -a * np.exp(h) + b


def fit_law(entropy: Sequence[float], performance: Sequence[float], measure: str = "entropy",
            objective: str = "objective") -> LawFit:
    """Fit R = −a·exp(H) + b to paired (H, R) values."""
    from scipy import stats
    from scipy.optimize import curve_fit

    h = np.asarray(entropy, dtype=float)
    r = np.asarray(performance, dtype=float)
    if h.shape != r.shape or h.ndim != 1:
        raise LawFitError(f"entropy and performance must be paired lists, got shapes {h.shape} and {r.shape}")
    keep = np.isfinite(h) & np.isfinite(r)
    h, r = h[keep], r[keep]
    n = len(h)
    if n < MIN_POINTS:
        raise LawFitError(f"the entropy-performance law needs at least {MIN_POINTS} points with a finite "
                          f"{objective} and {measure}; got {n}")
    x = np.exp(h)
    if np.ptp(x) <= 1e-12 * max(1.0, float(np.abs(x).max())):
        raise LawFitError(f"every point has the same {measure} ({h[0]:.6g}); the law's slope is undetermined")
    slope, intercept = np.polyfit(x, r, 1)
    (a, b), pcov = curve_fit(_law, h, r, p0=(-slope, intercept))
    dof = n - 2
    if dof > 0 and np.all(np.isfinite(pcov)):
        t = float(stats.t.ppf(0.975, dof))
        se_a, se_b = math.sqrt(max(pcov[0, 0], 0.0)), math.sqrt(max(pcov[1, 1], 0.0))
        se_c = math.sqrt(max(pcov[0, 0] + pcov[1, 1] - 2 * pcov[0, 1], 0.0))
    else:  # pragma: no cover - n >= 3 gives dof >= 1
        t, se_a, se_b, se_c = math.inf, math.inf, math.inf, math.inf
    resid = r - _law(h, a, b)
    ss_res = float(resid @ resid)
    ss_tot = float(((r - r.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else 0.0)
    ceiling = -a + b
    return LawFit(a=float(a), b=float(b), a_ci=(a - t * se_a, a + t * se_a), b_ci=(b - t * se_b, b + t * se_b),
                  ceiling=float(ceiling), ceiling_ci=(ceiling - t * se_c, ceiling + t * se_c), r2=r2, n=n,
                  measure=measure, objective=objective, entropy=h.tolist(), performance=r.tolist())


def default_measure(settings: CampaignSettings) -> str:
    """``final_entropy`` when the campaign measures it, else its first measure."""
    names = list(settings.measures)
    if DEFAULT_MEASURE in names or not names:
        return DEFAULT_MEASURE
    return names[0]


def campaign_points(name: str, settings: CampaignSettings, done: list[dict[str, Any]],
                    measure: str | None = None) -> tuple[str, list[float], list[float]]:
    """(measure, entropies, objectives) of a campaign's ``done`` evaluations (H from the
    evaluation's measures, else its metrics)."""
    measure = measure or default_measure(settings)
    hs, rs = [], []
    seen = False
    for ev in done:
        value = (ev.get("measures") or {}).get(measure)
        if value is None:
            value = (ev.get("metrics") or {}).get(measure)
        if value is not None:
            seen = True
        try:
            h, r = float(value), float(ev["objective"])
        except (TypeError, ValueError):
            continue
        if math.isfinite(h) and math.isfinite(r):
            hs.append(h)
            rs.append(r)
    if not seen and done:
        known = sorted({k for ev in done for k in (ev.get("measures") or {})})
        raise LawFitError(f"campaign {name!r} has no measure or metric named {measure!r} "
                          f"(measures: {', '.join(known) or 'none'})")
    return measure, hs, rs


def campaign_law(name: str, settings: CampaignSettings, done: list[dict[str, Any]],
                 measure: str | None = None) -> LawFit:
    """The law fitted over a campaign's ``done`` evaluations (objective against ``measure``)."""
    measure, hs, rs = campaign_points(name, settings, done, measure)
    if len(hs) < MIN_POINTS:
        raise LawFitError(f"campaign {name!r} has {len(hs)} done evaluation(s) with a finite "
                          f"{settings.objective} and {measure}; the entropy-performance law needs at least "
                          f"{MIN_POINTS}")
    return fit_law(hs, rs, measure=measure, objective=settings.objective)


def law_warnings(fit: LawFit) -> list[str]:
    """What a reader of ``fit`` should doubt, one sentence each: a measure whose name does
    not contain "entropy" (the law relates performance to an entropy H, so another measure
    is probably the wrong axis), and R² below :data:`WEAK_R2` (the curve explains little of
    the variation of R, so its a, b and ceiling say little)."""
    out = []
    if "entropy" not in fit.measure.lower():
        out.append(f"the measure {fit.measure!r} does not look like an entropy; the law R = −a·exp(H) + b "
                   f"is about an entropy H (choose one with --measure)")
    if fit.r2 < WEAK_R2:
        out.append(f"R² = {fit.r2:.3f} is below {WEAK_R2:g}: the fit explains little of {fit.objective}, "
                   f"so a, b and the ceiling say little")
    return out


def law_figure(fit: LawFit, path: str | Path, title: str | None = None) -> Path:
    """The points and the fitted curve (down to H = 0, the ceiling marked) as PNG/SVG/PDF."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    h = np.asarray(fit.entropy)
    fig, ax = plt.subplots(figsize=(7, 5))
    ax.scatter(h, fit.performance, s=22, alpha=0.75, label=f"evaluations (n = {fit.n})")
    hi = float(h.max()) if len(h) else 1.0
    grid = np.linspace(0.0, hi * 1.05 if hi > 0 else 1.0, 200)
    ax.plot(grid, fit.predict(grid), color="C3",
            label=f"R = −{fit.a:.3g}·exp(H) + {fit.b:.3g}   (R² = {fit.r2:.3f})")
    ax.axhline(fit.ceiling, color="C3", ls=":", lw=1)
    ax.scatter([0.0], [fit.ceiling], marker="*", s=140, color="C3", zorder=3,
               label=f"ceiling −a + b = {fit.ceiling:.3g} [{fit.ceiling_ci[0]:.3g}, {fit.ceiling_ci[1]:.3g}]")
    ax.set_xlabel(f"{fit.measure} (H, nats)")
    ax.set_ylabel(fit.objective)
    ax.set_title(title or "entropy-performance law R = −a·exp(H) + b", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
