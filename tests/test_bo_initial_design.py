"""``bo``'s initial design: Sobol points until max(2(d + 1), batch_size) points are
evaluated or in flight, then the model's (docs/proposers.md, the ``bo`` row)."""

from __future__ import annotations

import numpy as np
import pytest

from search.params import FloatParam
from search.proposers.base import Observation
from search.space import SearchSpace
from tests.test_bayes_edges import LAYOUT, proposer

PLANE = SearchSpace({"x": FloatParam(type="float", low=0.0, high=1.0),
                     "y": FloatParam(type="float", low=0.0, high=1.0)})


@pytest.mark.parametrize("batch_size, sobol", [(1, 6), (9, 9)])
def test_the_default_initial_design_is_two_d_plus_two_or_a_batch(batch_size: int, sobol: int) -> None:
    """d = 2: asked for one point at a time and told each before the next, ``bo`` proposes
    6 Sobol points (2(d + 1)), then the model's; with a batch_size of 9, 9 Sobol points."""
    bo = proposer("bo", PLANE, {"num_restarts": 2, "raw_samples": 32}, batch_size=batch_size)
    sources = []
    for i in range(sobol + 1):
        (proposal,) = bo.ask(1)
        x = np.asarray(proposal.x, dtype=float)
        bo.tell([Observation(i, i, x, PLANE.decode(x), -float(((x - 0.4) ** 2).sum()), x,
                             int(LAYOUT.index_of(x[None])[0]), dict(proposal.meta), "bo")])
        sources.append(proposal.meta["source"])
    assert sources == ["sobol"] * sobol + ["bo"]
