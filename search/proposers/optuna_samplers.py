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

On resume the study is rebuilt from every finished evaluation (``add_trial``), and a
result whose trial this study never asked is added the same way, so nothing is lost.
The checkpoint keeps only the ask count (field ``asks``); a legacy pickle, which held no
more than that, is not read: the study is rebuilt the same way and the count restarts
from the number of rows.
"""

from __future__ import annotations

import abc
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from search.params import CategoricalParam, FloatParam, IntParam
from search.proposers import checkpoint
from search.proposers.base import (
    History,
    Observation,
    Proposal,
    Proposer,
    ProposerContext,
    formerly_shared,
    rows_so_far,
)
from search.proposers.checkpoint import Checkpoint

optuna.logging.set_verbosity(optuna.logging.WARNING)
# the options one class took for all four samplers: each now takes its own, and its siblings' with a warning
ONCE_SHARED = ("n_startup_trials", "multivariate", "population_size", "measure_directions")


GP_MAX_INT_VALUES = 2**16
"""The most values an ``int`` parameter may have to reach ``optuna-gp`` as an integer (its
sampler enumerates them all in each ask); a wider one reaches it as a float, rounded."""


class OptunaProposer(Proposer):
    """One of Optuna's samplers (:meth:`make_sampler`, which reads the options it takes; the
    first study is made when the proposer is built, so a refused option fails there)."""

    name = "optuna-tpe"
    multi = False  # the fitness and the measures together (NSGA-II), else the fitness alone
    max_int_values: int | None = None  # a wider int reaches the sampler as a float, rounded (None: none is)

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
        self.running: dict[int, optuna.Trial] = {}

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

    def _flat(self, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
        flat: dict[str, Any] = {}
        dists: dict[str, BaseDistribution] = {}
        for slot in self.ctx.space.slots:
            if slot.name not in params:
                continue
            p, v = slot.param, params[slot.name]
            if isinstance(p, CategoricalParam):
                flat[slot.name], dists[slot.name] = v, CategoricalDistribution(p.choices)
            elif isinstance(p, IntParam) and self.int_as_float(p):
                flat[slot.name], dists[slot.name] = float(v), FloatDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, IntParam):
                flat[slot.name], dists[slot.name] = int(v), IntDistribution(p.low, p.high, log=p.log)
            elif isinstance(p, FloatParam) and p.size > 1:
                for i, vi in enumerate(v):
                    flat[f"{slot.name}[{i}]"] = float(vi)
                    dists[f"{slot.name}[{i}]"] = FloatDistribution(p.low, p.high, log=p.log)
            else:
                flat[slot.name], dists[slot.name] = float(v), FloatDistribution(p.low, p.high, log=p.log)
        return flat, dists

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
            self.running[trial.number] = trial
            out.append(Proposal(self.ctx.space.encode(params), params=params, meta={"trial": trial.number}))
        return out

    def tell(self, observations: list[Observation]) -> None:
        for o in observations:
            values = self._values(o)
            trial = self.running.pop(o.meta.get("trial", -1), None) if o.proposer == self.name else None
            if trial is not None:
                if values is None:
                    self.study.tell(trial, state=TrialState.FAIL)
                else:
                    self.study.tell(trial, values if self.multi else values[0])
            else:
                self._add(o.params, values)

    def _add(self, params: dict[str, Any], values: list[float] | None) -> None:
        flat, dists = self._flat(params)
        state = TrialState.FAIL if values is None else TrialState.COMPLETE
        self.study.add_trial(optuna.trial.create_trial(params=flat, distributions=dists, state=state,
                                                       values=values))

    # -- checkpoints -------------------------------------------------------------
    def to_checkpoint(self) -> Checkpoint:
        """The ask count; the study itself is rebuilt from the archive."""
        return Checkpoint(fields={"asks": self.asks})

    def from_checkpoint(self, saved: Checkpoint | None, history: History) -> None:
        self._rebuild_study(history)
        if saved is not None:
            self.asks = int(saved.fields["asks"])

    def from_legacy(self, history: History) -> None:
        """The pickle held only the ask count: rebuild the study, count from the rows."""
        self._rebuild_study(history)
        self.asks = rows_so_far(history)
        checkpoint.warn_legacy(self.name, "the study from every finished evaluation")

    def _rebuild_study(self, history: History) -> None:
        """A fresh study holding every finished evaluation, in the order recorded."""
        self._new_study()
        for o in history.finished():
            self._add(o.params, self._values(o))


def round_into(value: float, p: IntParam) -> int:
    """The integer nearest ``value`` in [``p.low``, ``p.high``]."""
    return min(max(round(value), p.low), p.high)


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


class GpProposer(OptunaProposer):
    name = "optuna-gp"
    asks_are_slow = True
    max_int_values = GP_MAX_INT_VALUES
    option_names = ("n_startup_trials",)
    ignored_options = formerly_shared(ONCE_SHARED, option_names)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.GPSampler(seed=self.sampler_seed, n_startup_trials=self.startup_trials(),
                                         warn_independent_sampling=False)  # conditional parameters: expected


class Nsga2Proposer(OptunaProposer):
    name = "optuna-nsga2"
    multi = True
    option_names = ("population_size", "measure_directions")
    ignored_options = formerly_shared(ONCE_SHARED, option_names)

    def make_sampler(self) -> optuna.samplers.BaseSampler:
        return optuna.samplers.NSGAIISampler(seed=self.sampler_seed, population_size=self.int_option(
            "population_size", 50, minimum=2))


__all__ = ["CmaEsProposer", "GpProposer", "Nsga2Proposer", "OptunaProposer", "TpeProposer"]
