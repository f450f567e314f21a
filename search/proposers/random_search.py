"""``random``: uniform samples of the unit cube, the baseline every method must beat.

State: the generator's position (the base class's checkpoint); a legacy pickle is
replaced by a fresh stream seeded from (seed, rows so far), since random search needs
nothing else from its past.
"""

from __future__ import annotations

import numpy as np

from search.proposers import checkpoint
from search.proposers.base import History, Observation, Proposal, Proposer, rows_so_far


class RandomProposer(Proposer):
    name = "random"

    def ask(self, n: int) -> list[Proposal]:
        return self.uniform(n)

    def tell(self, observations: list[Observation]) -> None:
        return None

    def from_legacy(self, history: History) -> None:
        """Continue on a new stream seeded from (seed, rows so far): not the draws an
        uninterrupted run would make, but uniform and independent of the first ones."""
        rows = rows_so_far(history)
        self.rng = np.random.default_rng([self.ctx.seed, rows])
        checkpoint.warn_legacy(self.name, f"a fresh random stream seeded from (seed, {rows} rows)")
