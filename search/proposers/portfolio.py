"""``portfolio``: several proposers at once, a UCB1 bandit choosing who proposes next.

Options: ``{members: {map-elites: {...options}, bo: {...}}, c: 1.0}``. Every member is
told every result (so archive-based members keep their archive complete); only the
member that made a proposal sees its bookkeeping. The reward of a proposal is 1 when it
improved the map (a new cell, or a strictly better elite) and 0 otherwise, and a member
is chosen by

    argmax_i  r̄_i + c · sqrt(2 ln N / n_i)

(r̄_i its mean reward, n_i its told proposals, N their sum; members never told go
first). Which member made each evaluation is stored in the evaluation's ``proposer``.
"""

from __future__ import annotations

import math
import pickle
from typing import Any

from search.proposers.base import History, Observation, OptionError, Proposal, Proposer, ProposerContext

DEFAULT_MEMBERS: dict[str, dict[str, Any]] = {"map-elites": {}, "random": {}}


class _MemberHistory:
    """A member's view of the archive: its own bookkeeping only on its own evaluations."""

    def __init__(self, history: History, member: str) -> None:
        self.history = history
        self.member = member

    def elites(self) -> list[Observation]:
        return self.history.elites()

    def finished(self) -> list[Observation]:
        return [_for_member(o, self.member) for o in self.history.finished()]

    def pending_x(self) -> Any:
        return self.history.pending_x()

    def calls(self, proposer: str) -> list[dict[str, Any]]:
        return self.history.calls(proposer)


def _for_member(o: Observation, member: str) -> Observation:
    if o.proposer == member:
        return o
    return Observation(o.evaluation_id, o.seq, o.x, o.params, o.fitness, o.measures, o.cell, {}, o.proposer)


class PortfolioProposer(Proposer):
    name = "portfolio"
    option_names = ("members", "c")

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        from search.proposers import build_proposer

        members = self.option("members", DEFAULT_MEMBERS, lambda v: isinstance(v, dict) and len(v) >= 1,
                              "must map proposer names to their options")
        if "portfolio" in members:
            raise OptionError("search.options.members: a portfolio cannot contain a portfolio")
        self.c = float(self.option("c", 1.0))
        self.members: dict[str, Proposer] = {}
        for i, (name, options) in enumerate(members.items()):
            sub = ProposerContext(**{**ctx.__dict__, "options": dict(options or {}), "seed": ctx.seed + 1000 * (i + 1)})
            self.members[name] = build_proposer(name, sub)
        self.pulls = {name: 0 for name in self.members}
        self.rewards = {name: 0.0 for name in self.members}
        self.best: dict[int, float] = {}

    def choose(self) -> str:
        untold = [m for m, n in self.pulls.items() if n == 0]
        if untold:
            return untold[0]
        total = sum(self.pulls.values())
        return max(self.members, key=lambda m: self.rewards[m] / self.pulls[m]
                   + self.c * math.sqrt(2 * math.log(total) / self.pulls[m]))

    def ask(self, n: int) -> list[Proposal]:
        first = self.choose()
        order = [first, *[m for m in self.members if m != first]]
        for name in order:  # a member waiting on its results yields to the next
            proposals = self.members[name].ask(n)
            if proposals:
                for p in proposals:
                    p.proposer = name
                return proposals
        return []

    def take_calls(self) -> list[dict[str, Any]]:
        return [c for m in self.members.values() for c in m.take_calls()]

    def tell(self, observations: list[Observation]) -> None:
        for o in observations:
            if o.proposer in self.pulls:
                improved = o.fitness is not None and o.cell is not None and (
                    o.cell not in self.best or o.fitness > self.best[o.cell])
                self.pulls[o.proposer] += 1
                self.rewards[o.proposer] += 1.0 if improved else 0.0
            if o.fitness is not None and o.cell is not None and o.fitness > self.best.get(o.cell, -math.inf):
                self.best[o.cell] = o.fitness
        for name, member in self.members.items():
            member.tell([_for_member(o, name) for o in observations])

    def state(self) -> bytes:
        return pickle.dumps({"pulls": self.pulls, "rewards": self.rewards,
                             "members": {name: m.state() for name, m in self.members.items()}})

    def restore(self, state: bytes | None, history: History) -> None:
        data = pickle.loads(state) if state is not None else {}
        for name, member in self.members.items():
            member.restore(data.get("members", {}).get(name), _MemberHistory(history, name))
        if data:
            self.pulls, self.rewards = data["pulls"], data["rewards"]
        self.best = {e.cell: e.fitness for e in history.elites() if e.cell is not None and e.fitness is not None}

    def exploration(self) -> dict[str, float]:
        """Each member's share of proposals told so far."""
        total = sum(self.pulls.values()) or 1
        return {m: n / total for m, n in self.pulls.items()}
