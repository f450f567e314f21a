"""``atlas law --by`` of a minimised objective: each group is fitted, as the ungrouped fit
is, on R = −objective (:func:`archive.law.performance_of`), so a group's ceiling is its best
bound (needs archive/law_groups.py's patch: /tmp/archread/law_groups.patch)."""

from __future__ import annotations

import math
from typing import Any

from archive.law import CROSS
from archive.law_groups import grouped_law
from archive.records import CampaignSettings

HS = [0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
NOISE = [0.01, -0.01, 0.0, 0.01, -0.01, 0.0]


def test_each_group_of_a_minimised_objective_is_fitted_on_its_negation() -> None:
    settings = CampaignSettings(objective="loss", maximize=False, qd_offset=0.0, budget=8, algorithm="random",
                                measures=("final_entropy",), measure_directions={}, params=("opt",),
                                coordinate_options=(2,))
    done: list[dict[str, Any]] = []
    for opt, scale in (("sgd", 0.1), ("adam", 0.2)):  # each loss rises with H: its best at H = 0
        for h, e in zip(HS, NOISE, strict=True):
            done.append({"id": len(done), "seq": len(done), "status": "done", "params": {"opt": opt},
                         "objective": scale * math.exp(h) + 0.2 + e, "measures": {"final_entropy": h}})
    space = {"opt": {"type": "categorical", "choices": ["sgd", "adam"]}}
    reading = grouped_law("c", settings, done, "opt", mode=CROSS, space=space)
    assert reading.negated and reading.fit is not None and reading.fit.bound == "ceiling"
    for group in reading.groups:
        assert group.fit is not None and group.fit.negated and group.fit.objective == "−loss"
        assert group.fit.bound == "ceiling" and group.fit.a > 0
        assert all(r < 0 for r in group.fit.performance)  # −loss
