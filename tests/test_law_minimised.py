"""The entropy-performance law of a minimised objective (a loss): R is a performance, so the
cross-configuration fit is of the fitness R = −objective, named ``−NAME``; a ceiling is
then always the best bound (the loss's lowest), never the worst (:mod:`archive.law`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from archive.law import CROSS, campaign_law, fit_law
from archive.law_figures import law_figure
from archive.records import CampaignSettings

HS = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2]


def settings(maximize: bool, units: dict[str, str] | None = None) -> CampaignSettings:
    return CampaignSettings(objective="loss", maximize=maximize, qd_offset=0.0, budget=8, algorithm="random",
                            measures=("final_entropy",), measure_directions={}, params=("t",),
                            coordinate_options=(10,), units=dict(units or {}))


def points(values: list[float]) -> list[dict[str, Any]]:
    return [{"id": 100 + i, "seq": i, "status": "done", "params": {"t": h}, "objective": r,
             "measures": {"final_entropy": h}} for i, (h, r) in enumerate(zip(HS, values, strict=True))]


# the paper's regime for a loss: it rises with the entropy (0.1·exp(H) + 0.2, with noise), its lowest at H = 0
LOSS = [0.1 * math.exp(h) + 0.2 + e for h, e in zip(HS, [0.01, -0.01, 0.0, 0.01, -0.01, 0.0], strict=True)]


def test_a_minimised_objective_is_fitted_on_its_negation_and_its_best_bound_is_the_ceiling() -> None:
    reading = campaign_law("c", settings(maximize=False), points(LOSS), mode=CROSS)
    fit = reading.fit
    assert fit is not None and fit.negated and reading.negated
    assert reading.objective == fit.objective == "−loss"
    raw = fit_law(HS, LOSS)  # the same points as they are: the same line, every sign turned
    assert math.isclose(fit.a, -raw.a) and math.isclose(fit.b, -raw.b) and math.isclose(fit.r2, raw.r2)
    assert fit.a > 0 and fit.bound == "ceiling"  # the loss rises with H: its lowest, the best, at H = 0
    assert raw.bound == "floor"  # ... which a fit of the loss itself called a floor (and its worst a ceiling)
    assert math.isclose(-fit.ceiling, min(0.1 * math.exp(0) + 0.2, 1.0), abs_tol=0.03)
    doc = reading.to_dict()
    assert (doc["objective"], doc["negated"], doc["ceiling"]) == ("−loss", True, fit.ceiling)
    first = reading.warnings[0]
    assert first.startswith("loss is minimised, so the law is fitted to R = −loss")
    assert f"the ceiling −a + b = {fit.ceiling:.3g} is a loss of {-fit.ceiling:.3g}" in first
    assert not any("floor" in w for w in reading.warnings)


def test_a_loss_that_falls_with_the_entropy_has_its_worst_bound_called_a_floor() -> None:
    falling = [1.0 - 0.1 * math.exp(h) for h in HS]  # lower (better) at high entropy: the worst at H = 0
    reading = campaign_law("c", settings(maximize=False), points([v + e for v, e in zip(
        falling, [0.01, -0.01, 0.0, 0.01, -0.01, 0.0], strict=True)]), mode=CROSS)
    assert reading.fit is not None and reading.fit.bound == "floor"
    assert "the worst the law predicts" in reading.warnings[0]


def test_a_maximised_objective_is_fitted_as_it_is() -> None:
    reading = campaign_law("c", settings(maximize=True), points(LOSS), mode=CROSS)
    assert reading.fit is not None and not reading.fit.negated and not reading.negated
    assert reading.objective == "loss" and reading.to_dict()["negated"] is False
    assert not any("minimised" in w for w in reading.warnings)


def test_a_minimised_fraction_s_range_is_its_negation() -> None:
    """An error rate (a fraction, minimised): R = −error lies in [−1, 0]; a ceiling above 0
    (an error below 0) is flagged, one inside is not."""
    inside = campaign_law("c", settings(False, {"loss": "fraction"}), points(LOSS), mode=CROSS)
    assert not any("outside" in w for w in inside.warnings)
    below_zero = [0.5 * math.exp(h) - 0.6 + e for h, e in zip(HS, [0.01, -0.01, 0.0, 0.01, -0.01, 0.0], strict=True)]
    outside = campaign_law("c", settings(False, {"loss": "fraction"}), points(below_zero), mode=CROSS)
    flagged = [w for w in outside.warnings if "outside [-1, 0], the range of −loss (the negation of a fraction)" in w]
    assert len(flagged) == 1 and "above 0" in flagged[0]


def test_the_figure_names_r_and_marks_the_ceiling(tmp_path: Path, drawn: list[Figure]) -> None:
    reading = campaign_law("c", settings(maximize=False), points(LOSS), mode=CROSS)
    assert reading.fit is not None
    law_figure(reading.fit, tmp_path / "law.png")
    (ax,) = drawn[-1].axes
    assert ax.get_ylabel() == "−loss  (loss is minimised)"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("ceiling −a + b = ") for t in legend) and not any("floor" in t for t in legend)
