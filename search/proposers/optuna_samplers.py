"""Optuna's samplers driven through ask/tell on an in-memory study fed from the archive.

``optuna-tpe`` (TPESampler), ``optuna-cmaes`` (CmaEsSampler), ``optuna-gp`` (GPSampler)
maximise the fitness; ``optuna-nsga2`` (NSGAIISampler) maximises the fitness and the
measures together (``measure_directions`` per measure, default maximize), tracing the
performance-vs-entropy front. Parameters are suggested define-by-run in the space's
order, so conditional ones appear only when active; a vector parameter ``w`` becomes
``w[0]``, ``w[1]``, …

An ``int`` of more than ``max_int_values`` values (``optuna-gp``: ``GP_MAX_INT_VALUES``; the
others: no limit) is handed to the sampler as a float on the same range and scale
(``FloatDistribution``) and rounded to the nearest integer in range: Optuna's GPSampler
enumerates every value of an integer parameter in each ask (``np.arange(low, high + 1)``),
so [0, 10^7] cost ~80 MB and 36 s an ask and [1, 4·10^18] raised "array is too big" in
every ask, after the campaign was written. Rounding a float loses nothing the sampler could
use at that width (neighbouring values are under 1/65,536 of the range apart), and the
space stays valid for every proposer, so the campaign file is not refused. Values past
2^53 are integers a float can hold (512 apart near 4·10^18).

Resume (:meth:`OptunaProposer.from_checkpoint`). The study is rebuilt from the finished
evaluations (``add_trial``), and a result whose trial this study never asked is added the
same way, so nothing is lost. The checkpoint (version 2) holds what the archive does not:

- ``trials``: the ``seq`` of the row each trial of the study holds, by trial number, so the
  rebuilt study has the same trials in the same order (-1: a trial still running, rebuilt
  running from its row in flight, :meth:`History.in_flight`, whose proposal names its number);
- ``trial_attrs``: the trials' integer system attributes (NSGA-II's and CMA-ES's
  generations), and ``study_attrs``: the study's lists of trial numbers (NSGA-II's parents
  of its last two generations);
- ``random_states``: every NumPy ``RandomState`` the sampler holds (its own, its random
  sampler's), by attribute path, the MT19937 key in ``arrays`` (``rng.<path>``);
- ``optuna-gp``: the kernel parameters its next fit starts from (``gp.<i>.*`` arrays);
  ``optuna-cmaes``: the told generations behind its CMA-ES (``cma``), replayed on resume
  (:meth:`CmaEsProposer.rebuilt_attrs`), never a pickle read from the database.

So a run stopped where no evaluation is in flight (``--budget`` at a multiple of
``batch_size``), or a reproducible one stopped at a whole batch with several in flight
(their rows in flight, told with the rest of their turn), and resumed proposes exactly what
the uninterrupted run does, under the
Optuna that wrote the checkpoint (recorded as ``optuna``: the state sits in Optuna's
private attributes, but it is NumPy's RNG state and plain numbers, so another Optuna is
warned about rather than refused: a path it lacks starts from the seed, and its draws may
differ). An evaluation in flight at the stop is its trial again, running, at its number
(the samplers read running trials, GP's as points already asked, and the trials' order and
numbers: TPE and NSGA-II go by trial number, CMA-ES seeds each ask from it), and its result
is told to it in place. Where the history has no row for such a trial (one written before
:meth:`History.in_flight`), it is left out, the numbers after it close up, and its result
is added when it finishes, with the attributes its trial had (NSGA-II's generation): the
run continues exactly only where those were the last trials asked and are told before the
next ask. A row's bookkeeping may then name a trial number of the old study, which a new
trial may hold: a result goes to the running trial of that number only if their parameters
match.
An ``int`` handed to GPSampler as a float keeps the float drawn in the proposal's
``unrounded``, so the rebuilt trial holds what the sampler drew, not the rounded value.

A version-1 checkpoint (field ``asks`` only) and a legacy pickle (not read) are resumed as
well as they can be: the study is rebuilt from the rows in the order their results were
recorded, every random state of the sampler is reseeded from the campaign's seed and the
ask count (so the first draws are not replayed: the old code re-proposed the very points it
had evaluated), NSGA-II's generations are rebuilt as asked ``batch_size`` at a time, each
batch told before the next (its next generation's parents are chosen from them), and
CMA-ES starts a new optimizer from the space's centre.
"""

from __future__ import annotations

import abc
import copy
import logging
import pickle
import re
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from search.params import CategoricalParam, FloatParam, IntParam
from search.proposers import checkpoint
from search.proposers.base import (
    History,
    Observation,
    Proposal,
    Proposer,
    ProposerContext,
    formerly_shared,
    is_int,
    rows_so_far,
)
from search.proposers.checkpoint import Checkpoint, CheckpointError

optuna.logging.set_verbosity(optuna.logging.WARNING)
log = logging.getLogger("entropy_atlas.optuna")
# the options one class took for all four samplers: each now takes its own, and its siblings' with a warning
ONCE_SHARED = ("n_startup_trials", "multivariate", "population_size", "measure_directions")


GP_MAX_INT_VALUES = 2**16
"""The most values an ``int`` parameter may have to reach ``optuna-gp`` as an integer (its
sampler enumerates them all in each ask); a wider one reaches it as a float, rounded."""

Runs = list[list[Any]]
"""A list of integers (or None) as ``[first, step, count]`` runs: ``[[0, 1, 40]]`` is 0…39,
``[[3, 0, 5]]`` five 3s, ``[[None, 0, 2]]`` two Nones (:func:`runs`, :func:`expand`)."""


class OptunaProposer(Proposer):
    """One of Optuna's samplers (:meth:`make_sampler`, which reads the options it takes; the
    first study is made when the proposer is built, so a refused option fails there).

    Its checkpoint (version 2; version 1 is still read) lets a resumed proposer continue as
    the uninterrupted one does: see the module docstring, :meth:`to_checkpoint` and
    :meth:`from_checkpoint`."""

    name = "optuna-tpe"
    multi = False  # the fitness and the measures together (NSGA-II), else the fitness alone
    max_int_values: int | None = None  # a wider int reaches the sampler as a float, rounded (None: none is)
    checkpoint_version = 2
    migrates_versions = (1,)

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        directions = self.directions_option("measure_directions") if self.multi else {}
        names = ctx.layout.measure_names
        self.measure_signs = [1.0 if directions.get(m, "maximize") == "maximize" else -1.0 for m in names]
        self.asks = 0
        self._new_study()

    @abc.abstractmethod
    def make_sampler(self) -> optuna.samplers.BaseSampler:
        """A new sampler, seeded with the campaign's seed."""

    @property
    def sampler_seed(self) -> int:
        """The campaign's seed as Optuna takes one (numpy's legacy ``RandomState``: below
        2**32): itself when it fits, else 32 bits drawn from it (:class:`numpy.random.SeedSequence`),
        so that every seed the spec allows (up to 2**63 - 1) runs, and distinct ones differ."""
        seed = self.ctx.seed
        return seed if 0 <= seed < 2**32 else int(np.random.SeedSequence(seed).generate_state(1)[0])

    def startup_trials(self) -> int:
        """``n_startup_trials`` (10): the random trials before the sampler models anything."""
        return self.int_option("n_startup_trials", 10, minimum=0)

    def _new_study(self) -> None:
        directions = ["maximize"] * (1 + (len(self.measure_signs) if self.multi else 0))
        self.study = optuna.create_study(directions=directions, sampler=self.make_sampler())
        self.running: dict[int, dict[str, Any]] = {}  # a running trial's number → the params proposed
        self.trial_seqs: list[int] = []  # the seq of the row each trial holds, by trial number (-1: not told yet)
        self.stale_attrs: dict[int, dict[str, Any]] = {}  # a trial in flight at the checkpoint: its attributes

    # -- params <-> optuna -------------------------------------------------------
    def _suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        space = self.ctx.space
        values: dict[str, Any] = {}
        for slot in space.slots:
            if not space.is_active(slot.name, values):
                continue
            p = slot.param
            if isinstance(p, CategoricalParam):
                values[slot.name] = trial.suggest_categorical(slot.name, p.choices)
            elif isinstance(p, IntParam) and self.int_as_float(p):
                values[slot.name] = round_into(trial.suggest_float(slot.name, p.low, p.high, log=p.log), p)
            elif isinstance(p, IntParam):
                values[slot.name] = trial.suggest_int(slot.name, p.low, p.high, log=p.log)
            elif p.size > 1:
                values[slot.name] = [trial.suggest_float(f"{slot.name}[{i}]", p.low, p.high, log=p.log)
                                     for i in range(p.size)]
            else:
                values[slot.name] = trial.suggest_float(slot.name, p.low, p.high, log=p.log)
        return values

    def int_as_float(self, p: IntParam) -> bool:
        """Whether ``p`` reaches the sampler as a float: it has more than ``max_int_values`` values."""
        return self.max_int_values is not None and p.high - p.low + 1 > self.max_int_values

    def _flat(self, params: dict[str, Any], unrounded: dict[str, Any] | None = None,
              ) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
        """``params`` as the study holds them; an int handed to the sampler as a float takes
        the float it drew where ``unrounded`` has it (else the rounded value)."""
        flat: dict[str, Any] = {}
        dists: dict[str, BaseDistribution] = {}
        for slot in self.ctx.space.slots:
            if slot.name not in params:
                continue
            p, v = slot.param, params[slot.name]
            if isinstance(p, CategoricalParam):
                flat[slot.name], dists[slot.name] = v, CategoricalDistribution(p.choices)
            elif isinstance(p, IntParam) and self.int_as_float(p):
                drawn = (unrounded or {}).get(slot.name, v)
                flat[slot.name], dists[slot.name] = float(drawn), FloatDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, IntParam):
                flat[slot.name], dists[slot.name] = int(v), IntDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, FloatParam) and p.size > 1:
                for i, vi in enumerate(v):
                    flat[f"{slot.name}[{i}]"] = float(vi)
                    dists[f"{slot.name}[{i}]"] = FloatDistribution(p.low, p.high, log=p.log)
            else:
                flat[slot.name], dists[slot.name] = float(v), FloatDistribution(p.low, p.high, log=p.log)
        return flat, dists

    def _flat_of(self, o: Observation) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
        """The study's form of ``o``'s params, with the floats drawn for ints where it was ours."""
        unrounded = o.meta.get("unrounded") if o.proposer == self.name else None
        return self._flat(o.params, unrounded if isinstance(unrounded, dict) else None)

    def _values(self, o: Observation) -> list[float] | None:
        if o.fitness is None:
            return None
        if not self.multi:
            return [float(o.fitness)]
        assert o.measures is not None
        return [float(o.fitness), *(s * float(m) for s, m in zip(self.measure_signs, o.measures, strict=True))]

    # -- ask/tell ----------------------------------------------------------------
    def ask(self, n: int) -> list[Proposal]:
        self.asks += 1
        out = []
        for _ in range(n):
            trial = self.study.ask()
            params = self._suggest(trial)
            self.running[trial.number] = params
            self.trial_seqs.append(-1)
            self.asked(trial)
            out.append(Proposal(self.ctx.space.encode(params), params=params, meta=self._meta(trial)))
        return out

    def asked(self, trial: optuna.Trial) -> None:
        """Called after each trial's parameters are drawn (CMA-ES records what it told)."""

    def _meta(self, trial: optuna.Trial) -> dict[str, Any]:
        """The proposal's bookkeeping: ``trial``, its number; ``unrounded``, the floats drawn
        for ints handed to the sampler as floats (so a rebuilt study holds what it drew)."""
        meta: dict[str, Any] = {"trial": trial.number}
        unrounded = {slot.name: trial.params[slot.name] for slot in self.ctx.space.slots
                     if isinstance(slot.param, IntParam) and self.int_as_float(slot.param)
                     and slot.name in trial.params}
        if unrounded:
            meta["unrounded"] = unrounded
        return meta

    def tell(self, observations: list[Observation]) -> None:
        for o in observations:
            values = self._values(o)
            number = self._running_trial(o)
            if number is None:
                self._add(o, values)
            else:
                if values is None:
                    self.study.tell(number, state=TrialState.FAIL)
                else:
                    self.study.tell(number, values if self.multi else values[0])
                self.trial_seqs[number] = o.seq

    def _running_trial(self, o: Observation) -> int | None:
        """The number of the running trial this study asked for ``o``: the number in its
        bookkeeping, with the same parameters. A row asked before a resume may name a number
        of an older study (whose trials in flight a resume left out), which a trial asked since
        may hold: its parameters differ, and it is added instead."""
        number = o.meta.get("trial", -1) if o.proposer == self.name else -1
        params = self.running.get(number)
        if params is None or self._flat(params)[0] != self._flat(o.params)[0]:
            return None
        del self.running[number]
        return number

    def _add(self, o: Observation, values: list[float] | None, system_attrs: dict[str, Any] | None = None) -> None:
        """``o`` as a new finished trial; one in flight at the checkpoint gets back the
        attributes its trial had (NSGA-II's generation)."""
        flat, dists = self._flat_of(o)
        state = TrialState.FAIL if values is None else TrialState.COMPLETE
        if system_attrs is None and o.proposer == self.name and o.meta.get("trial") in self.stale_attrs:
            system_attrs = self.stale_attrs.pop(o.meta["trial"])
        self.study.add_trial(optuna.trial.create_trial(params=flat, distributions=dists, state=state,
                                                       values=values, system_attrs=system_attrs))
        self.trial_seqs.append(o.seq)

    # -- checkpoints -------------------------------------------------------------
    def to_checkpoint(self) -> Checkpoint:
        """Version 2: ``asks``; ``optuna``, its version; ``trials``, each trial's row (its
        ``seq``, -1 while running) as :data:`Runs`; ``trial_attrs``, the trials' integer system
        attributes; ``study_attrs``, the study's lists of trial numbers; ``random_states`` and
        the ``rng.<path>`` arrays, the sampler's random states; and each sampler's own
        (:meth:`save_sampler`). The study's trials themselves are rebuilt from the archive."""
        trials = self.study.get_trials(deepcopy=False)
        arrays: dict[str, np.ndarray] = {}
        fields: dict[str, Any] = {
            "asks": self.asks, "optuna": optuna.__version__, "trials": runs(self.trial_seqs),
            "trial_attrs": trial_attrs(trials), "study_attrs": study_attrs(self.study),
            "random_states": save_random_states(self.study.sampler, arrays)}
        self.save_sampler(fields, arrays)
        return Checkpoint(fields=fields, arrays=arrays)

    def save_sampler(self, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Add what this sampler keeps beyond its random states (GP: its kernel; CMA-ES: its tells)."""

    def restore_sampler(self, saved: Checkpoint, renumbered: dict[int, int]) -> None:
        """Put back what :meth:`save_sampler` added (``renumbered``: saved trial number → rebuilt)."""

    def rebuilt_attrs(self, saved: Checkpoint, held: list[Observation | None]) -> dict[int, dict[str, Any]]:
        """System attributes a rebuilt trial gets beyond the saved integers, by saved trial
        number (``held``: each saved trial's row, None where it has none)."""
        return {}

    def legacy_attrs(self, rows: list[Observation]) -> list[dict[str, Any] | None]:
        """System attributes for the trials rebuilt from an old checkpoint, one per row."""
        return [None] * len(rows)

    def from_checkpoint(self, saved: Checkpoint | None, history: History) -> None:
        """Rebuild the study: from a version-2 checkpoint exactly (the trials in their order,
        with their attributes, and the sampler's state); from a version-1 one (the ask count
        only) as :meth:`from_legacy` does, with the saved count; with none yet, from the rows."""
        if saved is None:
            self._rebuild_study(history)
        elif saved.version == 1:
            self.asks = int(saved.fields["asks"])
            self._resume_roughly(history, "the checkpoint (version 1, from an older Entropy Atlas) holds no "
                                          "sampler state")
        else:
            self.asks = int(saved.fields["asks"])
            self._rebuild_exactly(saved, history)

    def from_legacy(self, history: History) -> None:
        """The pickle held only the ask count: rebuild as from a version-1 checkpoint, counting from the rows."""
        self.asks = rows_so_far(history)
        self._resume_roughly(history, "")
        checkpoint.warn_legacy(self.name, "the study from every finished evaluation, its random draws reseeded")

    def _rebuild_study(self, history: History, legacy: bool = False) -> None:
        """A fresh study holding every finished evaluation, in the order recorded (with
        :meth:`legacy_attrs` when ``legacy``)."""
        self._new_study()
        rows = history.finished()
        attrs = self.legacy_attrs(rows) if legacy else [None] * len(rows)
        for o, system in zip(rows, attrs, strict=True):
            self._add(o, self._values(o), system)

    def _resume_roughly(self, history: History, why: str) -> None:
        """Resume without the sampler's state: the study from the rows, and every random
        state reseeded from the campaign's seed and the ask count, so that the draws made
        before the stop are not made again."""
        self._rebuild_study(history, legacy=True)
        seed = int(np.random.SeedSequence([self.sampler_seed, self.asks]).generate_state(1)[0])
        for state in random_states(self.study.sampler).values():
            state.seed(seed)
        if why:
            log.warning("proposer %s: %s; its study was rebuilt from the archive and its random draws reseeded, "
                        "so it does not continue as an uninterrupted run would", self.name, why)

    def _rebuild_exactly(self, saved: Checkpoint, history: History) -> None:
        """The study as it was at the checkpoint: the saved trials in their order, each with
        its integer attributes and :meth:`rebuilt_attrs`: a trial in flight then, running
        again with the params of its row in flight (:meth:`_in_flight_rows`), else left out
        (the numbers after it close up); a finished row that no saved trial holds after them;
        then the study's lists and the random states."""
        seqs, attrs, lists = parsed_fields(saved, self.name)
        self._new_study()
        finished = history.finished()
        by_seq = {o.seq: o for o in finished}
        held = [by_seq.get(seq) if seq >= 0 else None for seq in seqs]
        asked = self._in_flight_rows(history, seqs)
        extra = self.rebuilt_attrs(saved, held)
        renumbered: dict[int, int] = {}
        for number, o in enumerate(held):
            system = {key: values[number] for key, values in attrs.items() if values[number] is not None}
            if o is None and number in asked and number == len(self.trial_seqs):
                renumbered[number] = number
                self._add_running(number, asked[number], {**system, **extra.get(number, {})})
                continue
            if o is None:
                self.stale_attrs[number] = system
                continue
            renumbered[number] = len(self.trial_seqs)
            self._add(o, self._values(o), {**system, **extra.get(number, {})})
        placed = {o.seq for o in held if o is not None}
        for o in finished:
            if o.seq not in placed:
                self._add(o, self._values(o))
        for key, numbers in lists.items():  # trial ids are trial numbers in a study of its own
            self.study._storage.set_study_system_attr(self.study._study_id, key,
                                                      [renumbered[n] for n in numbers if n in renumbered])
        missing = load_random_states(self.study.sampler, saved, self.name)
        self.restore_sampler(saved, renumbered)
        written = saved.fields.get("optuna")
        if written != optuna.__version__ or missing:
            log.warning("proposer %s: the checkpoint was written under Optuna %s and Optuna %s is installed%s; "
                        "resumed, but it may not propose what an uninterrupted run would", self.name, written,
                        optuna.__version__, f" (no place for the random state of {', '.join(missing)})"
                        if missing else "")


    def _in_flight_rows(self, history: History, seqs: list[int]) -> dict[int, Observation]:
        """The rows in flight (:meth:`History.in_flight`) of the saved trials that were
        running (seq -1), by trial number: the latest of this proposer's rows naming it in its
        proposal (an older one names a number of a study before a resume that left it out).
        None where the history cannot say (one written before :meth:`History.in_flight`)."""
        read = getattr(history, "in_flight", None)
        rows: dict[int, Observation] = {}
        for o in read() if read is not None else []:  # by seq: a later row of the same number wins
            number = o.meta.get("trial") if o.proposer == self.name else None
            if is_int(number) and 0 <= number < len(seqs) and seqs[number] < 0:
                rows[number] = o
        return rows

    def _add_running(self, number: int, o: Observation, system_attrs: dict[str, Any]) -> None:
        """``o``, in flight at the checkpoint, as the running trial ``number`` it was (the
        params drawn, its attributes), told in place when its result comes (:meth:`tell`):
        the samplers read running trials (GP's, TPE's with ``constant_liar``) and the trials'
        order and numbers (TPE's weights, CMA-ES's seeds)."""
        flat, dists = self._flat_of(o)
        self.study.add_trial(optuna.trial.create_trial(params=flat, distributions=dists, state=TrialState.RUNNING,
                                                       system_attrs=system_attrs))
        self.running[number] = o.params
        self.trial_seqs.append(-1)


def round_into(value: float, p: IntParam) -> int:
    """The integer nearest ``value`` in [``p.low``, ``p.high``]."""
    return min(max(round(value), p.low), p.high)


# -- checkpoint helpers ----------------------------------------------------------
def runs(values: list[int] | list[int | None]) -> Runs:
    """``values`` as ``[first, step, count]`` runs (:data:`Runs`), greedily from the left."""
    out: Runs = []
    i = 0
    while i < len(values):
        first = values[i]
        j = i + 1
        if first is None:
            while j < len(values) and values[j] is None:
                j += 1
            out.append([None, 0, j - i])
        else:
            nxt = values[j] if j < len(values) else None
            step = nxt - first if nxt is not None else 0
            while j < len(values) and values[j] is not None and values[j] - values[j - 1] == step:
                j += 1
            out.append([first, step, j - i])
        i = j
    return out


def expand(saved: Any) -> list[Any]:
    """The list that :func:`runs` wrote (``TypeError``/``ValueError`` for anything else)."""
    values: list[Any] = []
    for first, step, count in saved:
        if not (is_int(step) and is_int(count) and count >= 0 and (first is None or is_int(first))):
            raise ValueError(f"{[first, step, count]!r} is not a run")
        values.extend([None] * count if first is None else range(first, first + step * count, step) if step
                      else [first] * count)
    return values


def trial_attrs(trials: list[FrozenTrial]) -> dict[str, Runs]:
    """The trials' integer system attributes (NSGA-II's and CMA-ES's generations), by key:
    the value of each trial in turn, None where it has none. Others are not kept: a string
    may be a pickle (CMA-ES's optimizer), which must never come back from the database."""
    keys = sorted({key for t in trials for key, value in t.system_attrs.items() if is_int(value)})
    return {key: runs([value if is_int(value := t.system_attrs.get(key)) else None for t in trials])
            for key in keys}


_NUMBERED = re.compile(r"(.*?)(\d+)")


def study_attrs(study: optuna.Study) -> dict[str, list[int]]:
    """The study's system attributes that are lists of trial ids (= numbers: the study is
    alone in its storage): NSGA-II's parents by generation, ``NSGAIISampler:parent:G``. Of
    keys ending in a number, the two highest of each stem are kept: NSGA-II reads no others."""
    lists = {key: value for key, value in study._storage.get_study_system_attrs(study._study_id).items()
             if isinstance(value, list) and all(is_int(v) for v in value)}
    stems: dict[str, list[tuple[int, str]]] = {}
    kept: dict[str, list[int]] = {}
    for key, value in lists.items():
        match = _NUMBERED.fullmatch(key)
        if match is None:
            kept[key] = value
        else:
            stems.setdefault(match[1], []).append((int(match[2]), key))
    for numbered in stems.values():
        kept.update((key, lists[key]) for _, key in sorted(numbered)[-2:])
    return kept


def _random_state_of(value: Any) -> np.random.RandomState | None:
    """The RandomState ``value`` is, or wraps (Optuna's ``LazyRandomState``: its ``rng``)."""
    if isinstance(value, np.random.RandomState):
        return value
    if type(value).__name__ == "LazyRandomState":
        state = value.rng
        return state if isinstance(state, np.random.RandomState) else None
    return None


def random_states(sampler: optuna.samplers.BaseSampler) -> dict[str, np.random.RandomState]:
    """Every RandomState ``sampler`` holds, by attribute path: its own first, then those of
    the Optuna objects it holds (its random sampler, NSGA-II's strategies), to two levels;
    one held in several places is named by its first (shortest) path."""
    found: dict[str, np.random.RandomState] = {}
    seen: set[int] = set()
    level: list[tuple[str, Any]] = [("", sampler)]
    for _ in range(3):
        below: list[tuple[str, Any]] = []
        for prefix, obj in level:
            for name, value in sorted(getattr(obj, "__dict__", {}).items()):
                state = _random_state_of(value)
                if state is not None:
                    if id(state) not in seen:
                        seen.add(id(state))
                        found[prefix + name] = state
                elif type(value).__module__.startswith("optuna.") and hasattr(value, "__dict__"):
                    below.append((f"{prefix}{name}.", value))
        level = below
    return found


def save_random_states(sampler: optuna.samplers.BaseSampler, arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """Each random state of ``sampler``: its MT19937 key into ``arrays`` (``rng.<path>``), the rest returned."""
    out: dict[str, Any] = {}
    for path, state in random_states(sampler).items():
        saved = state.get_state(legacy=False)
        arrays[f"rng.{path}"] = np.asarray(saved["state"]["key"], dtype=np.uint32)
        out[path] = {"pos": int(saved["state"]["pos"]), "has_gauss": int(saved["has_gauss"]),
                     "gauss": float(saved["gauss"])}
    return out


def load_random_states(sampler: optuna.samplers.BaseSampler, saved: Checkpoint, proposer: str) -> list[str]:
    """Put the saved random states back into ``sampler``, in place (NSGA-II's strategies
    share its own); the paths it has no state at are returned."""
    states = random_states(sampler)
    missing = []
    for path, fields in saved.fields["random_states"].items():
        if path not in states:
            missing.append(path)
            continue
        try:
            states[path].set_state({"bit_generator": "MT19937", "state": {"key": saved.arrays[f"rng.{path}"],
                                    "pos": fields["pos"]}, "has_gauss": fields["has_gauss"],
                                    "gauss": fields["gauss"]})
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"the checkpoint of proposer {proposer!r} has an unreadable random state "
                                  f"{path!r} ({exc})") from None
    return missing


def parsed_fields(saved: Checkpoint, proposer: str) -> tuple[list[int], dict[str, list[Any]], dict[str, list[int]]]:
    """The saved trials' rows (seq, -1: none), their attributes by key, and the study's lists."""
    fields = saved.fields
    try:
        seqs = expand(fields["trials"])
        attrs = {str(key): expand(value) for key, value in fields["trial_attrs"].items()}
        lists = {str(key): [int(n) for n in value] for key, value in fields["study_attrs"].items()}
        if not all(is_int(seq) for seq in seqs) or any(len(values) != len(seqs) for values in attrs.values()):
            raise ValueError("the trials and their attributes do not match")
        if not isinstance(fields["random_states"], dict):
            raise TypeError("random_states is not a mapping")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"the checkpoint of proposer {proposer!r} has unreadable fields ({exc}); resume "
                              f"with the Entropy Atlas that wrote it") from None
    return seqs, attrs, lists


def batch_generations(ok: list[bool], batch: int, population: int) -> list[int]:
    """NSGA-II's generation of each trial when they are asked ``batch`` at a time and each
    batch is told before the next: a batch starts the next generation once ``population``
    trials of the current one have completed (``ok``)."""
    generations: list[int] = []
    current = completed = 0
    for start in range(0, len(ok), max(1, batch)):
        if completed >= population:
            current, completed = current + 1, 0
        chunk = ok[start:start + max(1, batch)]
        generations += [current] * len(chunk)
        completed += sum(chunk)
    return generations


class TpeProposer(OptunaProposer):
    name = "optuna-tpe"
    option_names = ("n_startup_trials", "multivariate")
    ignored_options = formerly_shared(ONCE_SHARED, option_names)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=self.sampler_seed, n_startup_trials=self.startup_trials(),
                                          multivariate=self.flag_option("multivariate", True))


class CmaEsProposer(OptunaProposer):
    name = "optuna-cmaes"
    option_names = ("n_startup_trials",)
    ignored_options = formerly_shared(ONCE_SHARED, option_names)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.CmaEsSampler(seed=self.sampler_seed, n_startup_trials=self.startup_trials(),
                                            warn_independent_sampling=False)

    # CmaEsSampler keeps its CMA-ES as a pickle in the system attributes of the trial that
    # last told it a generation (the "bearer"), and reads the latest complete bearer's. The
    # checkpoint keeps, instead of that pickle, the tells behind it: the trials of each
    # generation told, replayed into a new optimizer on resume (CMA-ES's tell draws nothing).
    def _new_study(self) -> None:
        super()._new_study()
        #: bearer's number → (the bearer it started from, -1: a new optimizer; the trials it
        #: told; the CMA-ES search space's names)
        self.cma_links: dict[int, tuple[int, list[int], list[str]]] = {}
        self.cma_root: tuple[int, list[list[int]], list[str]] = (-1, [], [])  # the rebuilt bearer, its tells

    def _bearer(self, completed: list[FrozenTrial]) -> int:
        """The latest complete trial holding a CMA-ES (the one the sampler reads), -1: none."""
        sampler: Any = self.study.sampler  # Optuna's private CmaEsSampler attributes, here and below
        key = sampler._attr_key_optimizer
        return next((t.number for t in reversed(completed) if any(k.startswith(key) for k in t.system_attrs)), -1)

    def asked(self, trial: optuna.Trial) -> None:
        """When ``trial`` told its CMA-ES a generation, record which trials it told."""
        sampler: Any = self.study.sampler
        attrs = self.study._storage.get_trial_system_attrs(trial._trial_id)
        if not any(key.startswith(sampler._attr_key_optimizer) for key in attrs):
            return
        generation_key = sampler._attr_key_generation
        completed = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        told = [t.number for t in completed if t.system_attrs.get(generation_key, -1) == attrs[generation_key] - 1]
        space = list(sampler.infer_relative_search_space(self.study, self.study._storage.get_trial(trial._trial_id)))
        self.cma_links[trial.number] = (self._bearer(completed), told, space)

    def _tells(self, bearer: int) -> tuple[list[list[int]], list[str]]:
        """The generations told, oldest first, behind ``bearer``'s CMA-ES, and its space."""
        steps: list[list[int]] = []
        space: list[str] | None = None
        while bearer >= 0 and bearer != self.cma_root[0]:
            bearer, told, names = self.cma_links[bearer]
            steps.append(told)
            space = names if space is None else space
        if bearer >= 0:
            return self.cma_root[1] + steps[::-1], space if space is not None else self.cma_root[2]
        return steps[::-1], space or []

    def save_sampler(self, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """``cma``: the latest complete bearer, its space, and its tells (:data:`Runs` each)."""
        bearer = self._bearer(self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if bearer >= 0:
            tells, space = self._tells(bearer)
            fields["cma"] = {"bearer": bearer, "space": space, "tells": [runs(told) for told in tells]}

    def rebuilt_attrs(self, saved: Checkpoint, held: list[Observation | None]) -> dict[int, dict[str, Any]]:
        """The bearer's CMA-ES, replayed: a new optimizer (as the sampler makes one) told
        each saved generation, pickled here as the sampler stores it. Where that fails
        (another Optuna), none: the sampler starts a new CMA-ES, with a warning."""
        cma = saved.fields.get("cma")
        if not cma:
            return {}
        sampler: Any = self.study.sampler
        try:
            from optuna._transform import _SearchSpaceTransform

            bearer, tells = int(cma["bearer"]), [expand(told) for told in cma["tells"]]
            told_rows = [[held[n] for n in told] for told in tells]
            first = next(o for rows in told_rows for o in rows if o is not None)
            dists = self._flat_of(first)[1]
            trans = _SearchSpaceTransform({name: dists[name] for name in cma["space"]}, transform_step=True,
                                          transform_0_1=True)
            optimizer = sampler._init_optimizer(trans, StudyDirection.MAXIMIZE)
            for rows in told_rows:
                optimizer.tell([(trans.transform(self._flat_of(o)[0]), -float(o.fitness))
                                for o in rows[:optimizer.population_size]])
                # as the sampler stores and restores it between generations: cmaes keeps only
                # the upper triangle of C in that state, so the round trip makes C exactly symmetric
                optimizer = copy.deepcopy(optimizer)
            attrs = sampler._split_optimizer_str(pickle.dumps(optimizer).hex())
        except (AttributeError, KeyError, IndexError, StopIteration, TypeError, ValueError, AssertionError) as exc:
            log.warning("proposer %s: its CMA-ES could not be rebuilt from the checkpoint (%s: %s); it starts a "
                        "new one", self.name, type(exc).__name__, exc)
            return {}
        self.cma_root = (bearer, tells, list(cma["space"]))
        return {bearer: attrs}

    def restore_sampler(self, saved: Checkpoint, renumbered: dict[int, int]) -> None:
        """The rebuilt bearer and its tells, in the rebuilt study's numbers."""
        bearer, tells, space = self.cma_root
        if bearer >= 0:
            self.cma_root = (renumbered[bearer], [[renumbered[n] for n in told if n in renumbered] for told in tells],
                             space)


KERNEL_PARAMS = ("inverse_squared_lengthscales", "kernel_scale", "noise_var")
"""What GPSampler's next fit starts from, of each fitted kernel it keeps (``_gprs_cache_list``)."""


class KernelParams:
    """A fitted kernel's parameters, where GPSampler reads only those (torch tensors)."""

    def __init__(self, **params: Any) -> None:
        for name in KERNEL_PARAMS:
            setattr(self, name, params[name])


class GpProposer(OptunaProposer):
    name = "optuna-gp"
    asks_are_slow = True
    max_int_values = GP_MAX_INT_VALUES
    option_names = ("n_startup_trials",)
    ignored_options = formerly_shared(ONCE_SHARED, option_names)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GPSampler(seed=self.sampler_seed, n_startup_trials=self.startup_trials(),
                                         warn_independent_sampling=False)  # conditional parameters: expected

    def save_sampler(self, fields: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """``gp_kernels``: how many fitted kernels the next fit starts from (one per
        objective), their parameters in ``gp.<i>.<name>`` arrays."""
        kernels = getattr(self.study.sampler, "_gprs_cache_list", None) or []
        for i, gpr in enumerate(kernels):
            for name in KERNEL_PARAMS:
                arrays[f"gp.{i}.{name}"] = getattr(gpr, name).detach().cpu().numpy().astype(np.float64)
        fields["gp_kernels"] = len(kernels)

    def restore_sampler(self, saved: Checkpoint, renumbered: dict[int, int]) -> None:
        """The kernels' parameters, where the sampler starts its fits from them."""
        count = int(saved.fields.get("gp_kernels", 0))
        if count and hasattr(self.study.sampler, "_gprs_cache_list"):
            import torch

            sampler: Any = self.study.sampler
            sampler._gprs_cache_list = [
                KernelParams(**{name: torch.from_numpy(np.array(saved.arrays[f"gp.{i}.{name}"], dtype=np.float64))
                                for name in KERNEL_PARAMS}) for i in range(count)]


class Nsga2Proposer(OptunaProposer):
    name = "optuna-nsga2"
    multi = True
    option_names = ("population_size", "measure_directions")
    ignored_options = formerly_shared(ONCE_SHARED, option_names)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=self.sampler_seed, population_size=self.int_option(
            "population_size", 50, minimum=2))

    def legacy_attrs(self, rows: list[Observation]) -> list[dict[str, Any] | None]:
        """Each row's generation as asked ``batch_size`` at a time (:func:`batch_generations`),
        so that the next generation's parents are chosen from them."""
        sampler: Any = self.study.sampler
        key = sampler._get_generation_key()
        generations = batch_generations([o.ok for o in rows], self.ctx.batch_size, sampler.population_size)
        return [{key: g} for g in generations]


__all__ = ["CmaEsProposer", "GpProposer", "Nsga2Proposer", "OptunaProposer", "TpeProposer"]
