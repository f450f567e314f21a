"""The entropy-performance law's 95 % intervals are the ordinary least-squares ones:
estimate ± t_{0.975, n−2} · standard error, the ceiling −a + b being the OLS line of R on
exp(H) at exp(0) = 1 (archive/law.py's module docstring; docs/entropy_rl.md)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from archive.law import fit_law


def test_the_intervals_of_a_and_the_ceiling_are_the_textbook_ones() -> None:
    """12 noisy points, computed independently: the slope's interval t · s / sqrt(Sxx), the
    line's mean at x = 1 t · s · sqrt(1/n + (1 − x̄)² / Sxx), with t the 0.975 quantile of
    Student's t on n − 2 degrees of freedom (a 90 % interval, t_{0.95}, passed every other
    test; so did Var(−a + b) with + 2 Cov(a, b))."""
    rng = np.random.default_rng(3)
    h = np.linspace(0.1, 1.5, 12)
    r = -0.2 * np.exp(h) + 0.9 + rng.normal(0, 0.02, h.size)
    fit = fit_law(h.tolist(), r.tolist())
    x, n = np.exp(h), h.size
    slope, intercept = np.polyfit(x, r, 1)
    s2 = float(((r - (slope * x + intercept)) ** 2).sum()) / (n - 2)
    sxx = float(((x - x.mean()) ** 2).sum())
    t = stats.t.ppf(0.975, n - 2)
    se_a = np.sqrt(s2 / sxx)
    se_ceiling = np.sqrt(s2 * (1 / n + (1 - x.mean()) ** 2 / sxx))
    ceiling = slope + intercept
    assert fit.a == pytest.approx(-slope, rel=1e-6) and fit.ceiling == pytest.approx(ceiling, rel=1e-6)
    assert fit.a_ci == pytest.approx((-slope - t * se_a, -slope + t * se_a), rel=1e-5)
    assert fit.ceiling_ci == pytest.approx((ceiling - t * se_ceiling, ceiling + t * se_ceiling), rel=1e-5)
