"""A ``kind: python`` evaluator whose objective follows the entropy-performance law exactly
(plus a small deterministic wobble): R = −A·exp(H) + B with H a search parameter."""

from __future__ import annotations

import math
from typing import Any

A, B = 0.3, 0.95


def evaluate(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    h = float(params["h"])
    wobble = 0.002 * math.sin(37.0 * h)
    return {"objective": -A * math.exp(h) + B + wobble,
            "measures": {"final_entropy": h, "other": 1.0 - h},
            "metrics": {"policy_entropy": 2 * h}}
