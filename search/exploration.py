"""Exploration entropy of a campaign's proposals, per proposer (Iron Mind's measure).

For each parameter j with n_j options, p_o is the share of a proposer's evaluations
that chose option o, and

    H_j = −Σ_o p_o log₂ p_o / log₂ n_j        (0 when n_j = 1)

The run's exploration entropy is the mean of H_j over parameters, in [0, 1]. Iron Mind's
spaces are categorical; here a continuous or integer coordinate is cut into ``bins``
equal cells of its unit-cube coordinate (a float vector counts coordinate by coordinate),
so proposers of any kind are comparable.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

import numpy as np

from search.space import SearchSpace
from search.spec import CategoricalParam


def normalised_entropy(counts: Counter[int], options: int) -> float:
    total = sum(counts.values())
    if options <= 1 or total == 0:
        return 0.0
    h = -sum((c / total) * math.log2(c / total) for c in counts.values() if c)
    return h / math.log2(options)


def exploration_entropy(space: SearchSpace, rows: list[dict[str, Any]], bins: int = 10) -> dict[str, float]:
    """Mean normalised entropy over the space's coordinates, for each proposer in ``rows``."""
    by_proposer: dict[str, list[np.ndarray]] = defaultdict(list)
    for r in rows:
        by_proposer[r["proposer"]].append(np.asarray(r["x"], dtype=float))
    out: dict[str, float] = {}
    for proposer, xs in by_proposer.items():
        x = np.stack(xs)
        values = []
        for slot in space.slots:
            n = len(slot.param.choices) if isinstance(slot.param, CategoricalParam) else bins
            for d in range(slot.start, slot.start + slot.size):
                cells = np.minimum(np.floor(np.clip(x[:, d], 0, 1) * n), n - 1).astype(int)
                values.append(normalised_entropy(Counter(cells.tolist()), n))
        out[proposer] = float(np.mean(values)) if values else 0.0
    return out
