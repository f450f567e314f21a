"""``random``: uniform samples of the unit cube, the baseline every method must beat."""

from __future__ import annotations

from search.proposers.base import Observation, Proposal, Proposer


class RandomProposer(Proposer):
    name = "random"

    def ask(self, n: int) -> list[Proposal]:
        return self.uniform(n)

    def tell(self, observations: list[Observation]) -> None:
        return None
