"""``portfolio``: several proposers at once, a UCB1 bandit choosing who proposes next.

Options: ``{members: {map-elites: {...options}, bo: {...}}, c: 1.0}``. Every member is
told every result (so archive-based members keep their archive complete), each its own
copy of it (:func:`_told`: a member that changes what it was told changes nothing
another member holds); only the member that made a proposal sees its bookkeeping. The
reward of a proposal is 1 when it improved the map (a new cell, or a strictly better
elite) and 0 otherwise, and a member is chosen by

    argmax_i  r̄_i + c · sqrt(2 ln N / n_i)

(r̄_i its mean reward, 1 until it is told anything; n_i its proposals, told or still in
flight; N their sum; members never asked go first), so the batches asked in one turn go
round the members. Which member made each evaluation is stored in the evaluation's
``proposer``, or the member's own label for it (``llm-fallback``), whose results still
credit the member.

The checkpoint keeps the bandit's counts (fields ``pulls``, ``rewards``, ``asked``) and each
member's own checkpoint, whole, as the byte array ``member.<name>``. From a legacy pickle
(never read) the counts are replayed from the archive's results in the order recorded,
which is what ``tell`` saw, and each member resumes as from its own legacy pickle.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from search.proposers import checkpoint
from search.proposers.base import History, Observation, OptionError, Proposal, Proposer, ProposerContext
from search.proposers.checkpoint import Checkpoint, CheckpointError

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

    def in_flight(self) -> list[Observation]:
        read = getattr(self.history, "in_flight", None)  # History.in_flight: a history may lack it
        return [] if read is None else [_for_member(o, self.member) for o in read()]

    def calls(self, proposer: str) -> list[dict[str, Any]]:
        return self.history.calls(proposer)


def _for_member(o: Observation, member: str) -> Observation:
    """``o`` as ``member`` reads it from the archive (each read builds its own
    observations): the bookkeeping (``meta``) empty unless the member proposed it."""
    if o.proposer == member:
        return o
    return Observation(o.evaluation_id, o.seq, o.x, o.params, o.fitness, o.measures, o.cell, {}, o.proposer)


def _told(o: Observation, member: str) -> Observation:
    """``o`` as ``member`` is told it: its own copy (the point and measures copied, the
    parameters and bookkeeping deep-copied: :func:`_copied`), the bookkeeping empty
    unless the member proposed it. A member that changes what it was told (``o.x[:] = …``,
    ``o.params.clear()``) had changed it for every member told after it."""
    meta = _copied(o.meta) if o.proposer == member else {}
    return Observation(o.evaluation_id, o.seq, np.array(o.x, copy=True), _copied(o.params), o.fitness,
                       None if o.measures is None else np.array(o.measures, copy=True), o.cell, meta, o.proposer)


_SCALARS = (int, float, str, bool, bytes, type(None))


def _copied(values: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` that shares nothing mutable: plain scalars as they are (the
    usual parameters: no ``deepcopy`` call each), anything else deep-copied."""
    return {k: v if isinstance(v, _SCALARS) else copy.deepcopy(v) for k, v in values.items()}


class PortfolioProposer(Proposer):
    name = "portfolio"
    option_names = ("members", "c")

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        from search.proposers import algorithm_problem, build_proposer

        members = self.option("members", DEFAULT_MEMBERS, lambda v: isinstance(v, dict) and len(v) >= 1 and all(
            isinstance(o, dict | None) for o in v.values()), "must map proposer names to their options")
        if "portfolio" in members:
            raise self.option_error("members", "a portfolio cannot contain a portfolio")
        for name in members:
            if problem := algorithm_problem(str(name)):
                raise self.option_error(f"members.{name}", problem)
        self.c = self.number_option("c", 1.0, minimum=0)
        self.members: dict[str, Proposer] = {}
        for i, (name, options) in enumerate(members.items()):
            seed = (ctx.seed + 1000 * (i + 1)) % 2**63  # within the seeds a spec allows
            sub = ProposerContext(**{**ctx.__dict__, "options": dict(options or {}), "seed": seed,
                                     "options_path": f"{ctx.options_path}.members.{name}"})
            try:
                self.members[name] = build_proposer(name, sub)
            except OptionError as exc:  # reported with the portfolio's own, and the other members'
                self.option_problems.extend(exc.lines)
        self.asks_are_slow = any(m.asks_are_slow for m in self.members.values())
        self.pulls = {name: 0 for name in self.members}  # results told, by member
        self.rewards = {name: 0.0 for name in self.members}
        self.asked = {name: 0 for name in self.members}  # proposals made, by member (told or still out)
        # a member's own labels for some of its proposals (llm's "llm-fallback"): its results credit the member
        self.owners = {f"{name}-fallback": name for name in self.members}
        self.best: dict[int, float] = {}

    @classmethod
    def option_warnings(cls, options: Mapping[str, Any], path: str = "search.options") -> list[str]:
        """The portfolio's own, then each member's (under ``members.NAME``)."""
        from search.proposers import is_available, proposer_class

        out = super().option_warnings(options, path)
        members = options.get("members")
        for name, member in (members.items() if isinstance(members, dict) else ()):
            if isinstance(member, dict) and is_available(str(name)):
                out += proposer_class(str(name)).option_warnings(member, f"{path}.members.{name}")
        return out

    def choose(self) -> str:
        """The member to ask next: one never asked, in order; else by UCB1 over what each
        has proposed, told or still in flight (``n_i`` = its pulls and its proposals out,
        a mean of 1 until it is told anything): the batches asked in one turn, before any
        result comes back, go round the members instead of all to the first."""
        unasked = [m for m, n in self.asked.items() if n == 0]
        if unasked:
            return unasked[0]
        counts = {m: max(self.pulls[m], self.asked[m]) for m in self.members}
        total = sum(counts.values())
        return max(self.members, key=lambda m: (self.rewards[m] / self.pulls[m] if self.pulls[m] else 1.0)
                   + self.c * math.sqrt(2 * math.log(total) / counts[m]))

    def ask(self, n: int) -> list[Proposal]:
        first = self.choose()
        order = [first, *[m for m in self.members if m != first]]
        for name in order:  # a member waiting on its results yields to the next
            proposals = self.members[name].ask(n)
            if proposals:
                for p in proposals:
                    if p.proposer is None or p.proposer == name:
                        p.proposer = name
                    else:  # the member's own label (llm-fallback) stays; its results still credit the member
                        self.owners[p.proposer] = name
                self.asked[name] += len(proposals)
                return proposals
        return []

    def take_calls(self) -> list[dict[str, Any]]:
        return [c for m in self.members.values() for c in m.take_calls()]

    def tell(self, observations: list[Observation]) -> None:
        for o in observations:
            self._credit(o)
        for name, member in self.members.items():
            member.tell([_told(o, name) for o in observations])

    def _credit(self, o: Observation) -> None:
        """Count ``o`` for the member that proposed it: reward 1 when it improved the map."""
        member = self.owners.get(o.proposer or "", o.proposer)
        if member in self.pulls:
            improved = o.fitness is not None and o.cell is not None and (
                o.cell not in self.best or o.fitness > self.best[o.cell])
            self.pulls[member] += 1
            self.rewards[member] += 1.0 if improved else 0.0
        if o.fitness is not None and o.cell is not None and o.fitness > self.best.get(o.cell, -math.inf):
            self.best[o.cell] = o.fitness

    # -- checkpoints -------------------------------------------------------------
    def to_checkpoint(self) -> Checkpoint:
        """The bandit's counts and each member's checkpoint (as bytes, its own format)."""
        arrays = {f"member.{name}": np.frombuffer(m.state(), dtype=np.uint8) for name, m in self.members.items()}
        return Checkpoint(fields={"pulls": self.pulls, "rewards": self.rewards, "asked": self.asked}, arrays=arrays)

    def from_checkpoint(self, saved: Checkpoint | None, history: History) -> None:
        if saved is not None:
            self._check_members(saved)
            self.pulls = {m: int(saved.fields["pulls"][m]) for m in self.members}
            self.rewards = {m: float(saved.fields["rewards"][m]) for m in self.members}
            asked = saved.fields.get("asked") or self.pulls  # a checkpoint from before it was kept: the pulls
            self.asked = {m: max(int(asked.get(m, 0)), self.pulls[m]) for m in self.members}
        for name, member in self.members.items():
            state = None if saved is None else saved.arrays[f"member.{name}"].tobytes()
            member.restore(state, _MemberHistory(history, name))
        self._best_from(history)

    def from_legacy(self, history: History) -> None:
        """Members resume as from their own legacy pickle (rebuilt, or refused); the counts
        are replayed from the results in the order recorded."""
        for name, member in self.members.items():
            member.from_legacy(_MemberHistory(history, name))
        self.pulls = {name: 0 for name in self.members}
        self.rewards = {name: 0.0 for name in self.members}
        self.best = {}
        for o in history.finished():
            self._credit(o)
        self.asked = dict(self.pulls)
        self._best_from(history)
        checkpoint.warn_legacy(self.name, "the bandit's counts replayed from the results")

    def _check_members(self, saved: Checkpoint) -> None:
        """The checkpoint holds state for exactly this portfolio's members."""
        stored = set(saved.fields["pulls"]) | {k.removeprefix("member.") for k in saved.arrays}
        if stored != set(self.members) or set(saved.fields["rewards"]) != set(self.members):
            raise CheckpointError(
                f"the checkpoint of proposer {self.name!r} is of members {sorted(stored)}, not "
                f"{sorted(self.members)}: resume with the members that wrote it")

    def _best_from(self, history: History) -> None:
        self.best = {e.cell: e.fitness for e in history.elites() if e.cell is not None and e.fitness is not None}
