"""The entropy-performance law R = −a·exp(H) + b: the fit, and ``atlas law``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.law import LawFitError, fit_law
from tests.rl import law_target

ATLAS = [sys.executable, "-m", "search.cli"]


def test_fit_recovers_known_a_and_b_with_intervals() -> None:
    rng = np.random.default_rng(0)
    a, b = 0.42, 0.87
    h = rng.uniform(0.05, 1.6, 60)
    r = -a * np.exp(h) + b + rng.normal(0.0, 0.01, 60)
    fit = fit_law(h, r)
    assert fit.a == pytest.approx(a, abs=0.02) and fit.b == pytest.approx(b, abs=0.03)
    assert fit.a_ci[0] < a < fit.a_ci[1] and fit.b_ci[0] < b < fit.b_ci[1]
    assert fit.ceiling == pytest.approx(fit.b - fit.a) and fit.ceiling_ci[0] < b - a < fit.ceiling_ci[1]
    assert 0 < fit.a_ci[1] - fit.a_ci[0] < 0.05
    assert fit.r2 > 0.98 and fit.n == 60
    # noise-free points: exact recovery, R² = 1
    exact = fit_law(h, -a * np.exp(h) + b)
    assert exact.a == pytest.approx(a, rel=1e-9) and exact.b == pytest.approx(b, rel=1e-9)
    assert exact.r2 == pytest.approx(1.0)
    # unrelated points: R² near 0 and an interval for a that contains 0
    noise = fit_law(h, rng.normal(0.5, 0.1, 60))
    assert noise.r2 < 0.1 and noise.a_ci[0] < 0 < noise.a_ci[1]


def test_too_few_or_degenerate_points_are_refused() -> None:
    with pytest.raises(LawFitError, match="at least 3 points"):
        fit_law([0.1, 0.2], [0.5, 0.4])
    with pytest.raises(LawFitError, match="at least 3 points"):
        fit_law([0.1, 0.2, float("nan")], [0.5, 0.4, 0.3])
    with pytest.raises(LawFitError, match="same"):
        fit_law([0.3, 0.3, 0.3], [0.5, 0.4, 0.3])


def atlas(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*ATLAS, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200"})


def law_spec(name: str, budget: int) -> dict[str, Any]:
    return {
        "name": name,
        "evaluator": {"kind": "python", "target": "tests.rl.law_target:evaluate"},
        "space": {"h": {"type": "float", "low": 0.05, "high": 1.5}},
        "objective": {"name": "accuracy", "direction": "maximize"},
        "measures": [{"name": "other", "low": -1.0, "high": 1.0, "bins": 5},
                     {"name": "final_entropy", "low": 0.0, "high": 1.5, "bins": 10}],
        "search": {"algorithm": "random", "budget": budget, "batch_size": 8, "max_in_flight": 8, "seed": 0},
    }


def test_atlas_law_on_a_campaign(tmp_path: Path) -> None:
    from search import api

    url = f"sqlite:///{tmp_path / 'law.db'}"
    api.run(law_spec("law", 30), storage=url, executor="inline")
    api.run(law_spec("tiny", 2), storage=url, executor="inline")

    done = atlas("law", "law", "--storage", url, "--out", str(tmp_path / "law.png"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "ceiling" in done.stdout and "R²" in done.stdout and "final_entropy" in done.stdout
    assert (tmp_path / "law.png").read_bytes()[:4] == b"\x89PNG"

    as_json = json.loads(atlas("law", "law", "--storage", url, "--json", cwd=tmp_path).stdout)
    assert as_json["measure"] == "final_entropy" and as_json["n"] == 30  # the default, not the first measure
    assert as_json["a"] == pytest.approx(law_target.A, abs=0.01)
    assert as_json["b"] == pytest.approx(law_target.B, abs=0.01)
    assert as_json["ceiling"] == pytest.approx(law_target.B - law_target.A, abs=0.01)
    assert as_json["r2"] > 0.99
    assert f"{as_json['a']:.6g}" in done.stdout and f"{as_json['b']:.6g}" in done.stdout

    # another entropy: a metric works too (H' = 2H, so a' fits a different curve)
    other = json.loads(atlas("law", "law", "--storage", url, "--json", "--measure", "policy_entropy",
                             cwd=tmp_path).stdout)
    assert other["measure"] == "policy_entropy" and other["r2"] < as_json["r2"]

    few = atlas("law", "tiny", "--storage", url, cwd=tmp_path)
    assert few.returncode == 2 and "needs at least 3" in few.stderr and "'tiny' has 2" in few.stderr
    unknown = atlas("law", "law", "--storage", url, "--measure", "nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "no measure or metric named 'nope'" in unknown.stderr
    missing = atlas("law", "absent", "--storage", url, cwd=tmp_path)
    assert missing.returncode == 2 and "no campaign named 'absent'" in missing.stderr
