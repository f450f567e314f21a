"""``mo-bo``'s ``measure_directions``: a measure named ``minimize`` is modelled negated, one
not named is maximized (docs/proposers.md, the ``mo-bo`` row; mo_bo.py's docstring)."""

from __future__ import annotations

import numpy as np

from search.proposers import build_proposer
from search.proposers.base import Observation
from tests.test_llm import llm_context


def test_a_minimised_measure_is_modelled_negated_and_one_not_named_is_maximized() -> None:
    """The outcomes of a result of fitness 0.7 and measures (ma, mb) = (0.1, 0.3) with
    ``{ma: minimize}``: 0.7, −0.1 and 0.3; with no directions, 0.7, 0.1 and 0.3."""
    told = Observation(evaluation_id=1, seq=1, x=np.array([0.5, 0.5]), params={"a": 0.5, "b": 0.5}, fitness=0.7,
                       measures=np.array([0.1, 0.3]), cell=0, meta={})
    minimised = build_proposer("mo-bo", llm_context({"measure_directions": {"ma": "minimize"}}))
    assert minimised.outcome(told).tolist() == [0.7, -0.1, 0.3]
    assert build_proposer("mo-bo", llm_context({})).outcome(told).tolist() == [0.7, 0.1, 0.3]
