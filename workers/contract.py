"""The evaluator contract shared by every evaluator and executor.

Function form::

    def evaluate(params: dict, ctx: EvalContext) -> dict:
        return {"objective": 0.93,
                "measures": {"mean_entropy": 1.7, "distinct_2": 0.41},
                "metrics": {"tokens_per_s": 5120.0}}

Class form (a model loaded once per worker, batches, GPU state)::

    class MyEvaluator(Evaluator):
        def setup(self, config: dict, ctx: EvalContext) -> None: ...
        def evaluate_batch(self, params: list[dict], ctx: EvalContext) -> list[dict]: ...

In ``evaluate_batch`` the seed of item ``i`` is ``ctx.seeds[i]`` (``ctx.seed`` is the
first one); it returns one result per params, in order, as a list or any iterable (a
generator, an ndarray). In ``setup`` ``ctx.seed`` is the worker's :func:`setup_seed`,
from ``search.seed`` and the worker's place in its pool. ``setup(config, ctx)``,
``evaluate(params, ctx)`` and ``evaluate_batch(params, ctx)`` that cannot take ``ctx``, or a
``teardown`` that cannot be called with no argument, are refused before the run
(:func:`workers.registry.check`). A raised exception, a non-finite objective or measure,
or a missing measure marks the evaluation ``failed`` with the error kept; the campaign
goes on. A result may fail itself with a reason: no finite objective and ``"error":
"why"`` (a batch whose items fail one by one), which is kept as the evaluation's error.

Checked before a campaign runs (:func:`workers.registry.check`), a class may declare::

    class MyEvaluator(Evaluator):
        config_model = MyConfig            # a pydantic model of ``config`` (extra="forbid")

        @classmethod
        def check_space(cls, config: dict, space: dict[str, dict]) -> list[str]:
            return ["space.sampler.choices: 'foo' is not a known sampler"]  # path: reason lines

        @classmethod
        def check_measures(cls, config: dict, measures: list[str]) -> list[str]:
            return measure_problems("my", measures, ("mean_entropy", "distinct_2"))  # what its results hold

        @classmethod
        def space_warnings(cls, config: dict, space: dict[str, dict]) -> list[str]:
            return ["space.layers: not read by this evaluator"]  # taken, but probably not as meant

        @classmethod
        def units(cls, config: dict) -> Units:
            return Units(measures={"mean_entropy": "nats"})  # the labels' units where the spec gives none

``config_model``'s problems come back as ``evaluator.config.<field>: reason``;
``check_space`` gets the config (already accepted by the model) and the campaign's space
as plain dicts; ``check_measures`` gets the config and the campaign's measure names, in
the spec's order (:func:`measure_problems` refuses a name the evaluator's results never
hold, which would fail every evaluation as a missing measure). ``space_warnings`` gets
the config and the space, only when there is no problem; its lines
refuse nothing: ``atlas run`` and ``atlas resume`` print each as a ``warning:`` line.
``units`` gets the config and gives the :class:`Units` of what the results hold: a
campaign's labels (``mean_entropy (nats)``) where the spec gives an objective or a
measure no ``unit`` (:func:`workers.registry.units`; a ``kind: python`` target's are
not asked).
:class:`workers.evaluators.configs.EvaluatorConfig` is a base with the built-in
evaluators' rules (unknown keys refused, strict and finite numbers), and
:func:`space_value_problems` checks each searched range and numeric choice against a
parameter's own rule. :func:`meant_name` and :func:`is_unread` are the built-in evaluators'
one rule for a space name that is not one of their parameters: a likely misspelling of
one is refused (``; did you mean top_p?``), any other name is taken, searched and stored,
with a warning that the evaluator does not read it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from entropy_atlas.names import closest_name, folded


def device_for(num_gpus: float) -> str:
    """The device an evaluation is given, by every executor alike: ``cuda:0`` where the
    campaign asks for GPUs (``resources.num_gpus`` > 0) and torch sees one, else ``cpu``."""
    if num_gpus > 0:
        try:
            import torch
        except ImportError:
            return "cpu"
        if torch.cuda.is_available():
            return "cuda:0"
    return "cpu"


def setup_seed(campaign_seed: int, worker: int = 0) -> int:
    """The ``ctx.seed`` an evaluator's ``setup`` gets on worker ``worker`` of a campaign whose
    ``search.seed`` is ``campaign_seed``: ``SeedSequence(campaign_seed).spawn(worker + 1)[worker]``'s
    first word, as a non-negative 31-bit int (``& 0x7FFFFFFF``, as the evaluations' seeds).

    A pure function of the two: the same campaign seed gives the same setup (a model's
    initial weights) on every rerun, another seed another one; the inline executor's one
    worker is worker 0, a Ray pool's workers are numbered by their place in it (0, 1, …; a
    worker that replaces a dead one takes its place's number), so workers differ, reproducibly.
    A spawned child, not ``SeedSequence([campaign_seed, n])``, so it is none of the
    evaluations' seeds."""
    state = np.random.SeedSequence(campaign_seed, spawn_key=(worker,)).generate_state(1)[0]
    return int(state & 0x7FFFFFFF)


@dataclasses.dataclass
class EvalContext:
    """What an evaluation may know about where and how it runs.

    ``seed``: in ``evaluate`` (and ``evaluate_batch``, whose item ``i`` has ``seeds[i]``)
    the evaluation's own seed, a pure function of ``search.seed`` and the evaluation's
    sequence number (so a rerun, or a retry, gets the same one); in ``setup``, the worker's
    :func:`setup_seed` (``search.seed`` and the worker's place in its pool: the inline
    executor's is 0), with ``seeds`` ``[seed]``, so that what ``setup`` draws (a model's
    initial weights) follows ``search.seed``. ``device``: ``cuda:0`` where the campaign asks
    for GPUs and torch sees one, else ``cpu`` (:func:`device_for`). ``workdir``: a scratch
    directory of this worker's. ``attempt``: 1, then 2, … where the evaluation is retried
    (a batch's: the most of its items'). ``campaign``: the campaign's name."""

    seed: int = 0
    device: str = "cpu"
    workdir_root: str = dataclasses.field(
        default_factory=lambda: os.path.join(tempfile.gettempdir(), "entropy-atlas")
    )
    seeds: list[int] = dataclasses.field(default_factory=list)
    attempt: int = 1
    campaign: str = ""

    @property
    def workdir(self) -> Path:
        """A scratch directory for this worker, created on first use."""
        path = Path(self.workdir_root) / (self.campaign or "default") / f"pid-{os.getpid()}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def for_item(self, index: int) -> EvalContext:
        """The context of item ``index`` of a batch (its own seed)."""
        seed = self.seeds[index] if self.seeds else self.seed
        return dataclasses.replace(self, seed=seed, seeds=[seed])


class Evaluator:
    """Base of the class form. Subclasses implement ``evaluate`` or ``evaluate_batch``.

    ``max_batch_size`` is how many configurations one ``evaluate_batch`` call may take;
    executors never send more. ``config_model`` (None: any config) is the pydantic model
    :func:`workers.registry.check` validates the campaign's config with.
    """

    max_batch_size: int = 1
    config_model: Any = None

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        """Load what every evaluation of this worker shares (a model, a data set)."""
        self.config = dict(config)

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} implements neither evaluate nor evaluate_batch")

    def evaluate_batch(
        self, params: list[dict[str, Any]], ctx: EvalContext
    ) -> list[dict[str, Any]]:
        return [self.evaluate(p, ctx.for_item(i)) for i, p in enumerate(params)]

    def teardown(self) -> None:
        """Release what ``setup`` holds (GPU memory, files)."""


@dataclasses.dataclass(frozen=True)
class Units:
    """The units of what an evaluator's results hold, for a campaign's labels
    (``mean_entropy (nats)``): the ``objective``'s and the ``measures``' by name. One
    with none (None, or a measure not named) is labelled by its name alone: a fraction,
    a ratio or a score, where a unit would say nothing true."""

    objective: str | None = None
    measures: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def labels(self, objective: str, measures: Sequence[str]) -> dict[str, str]:
        """The units by a campaign's names: its ``objective``'s name (the results' objective)
        and each of its ``measures`` that has one."""
        named = {objective: self.objective} if self.objective else {}
        return {**named, **{m: self.measures[m] for m in measures if m in self.measures}}


def meant_name(name: str, known: Collection[str], aliases: Mapping[str, str] | None = None) -> str | None:
    """The parameter of ``known`` that ``name``, not one itself, was probably meant to be,
    or None: ``aliases``' entry for ``name`` lowercased with ``-`` as ``_`` (a sampler's
    name for its parameter: ``epsilon``, ``epsilon_cutoff``), else the closest known name
    (:func:`entropy_atlas.names.closest_name`)
    (``top_pp``, ``temprature``, ``Top-P``)."""
    if name in known:
        return None
    if aliases and (key := folded(name)) in aliases:
        return aliases[key]
    return closest_name(name, known)


#: How alike (difflib's ratio) a measure's name must be to one an evaluator returns to be offered
#: as the one meant (only a hint: a name the evaluator does not return is refused either way).
MEASURE_HINT_CUTOFF = 0.6


def measure_problems(evaluator: str, measures: Sequence[str], returned: Collection[str],
                     returns: str | None = None, unavailable: Mapping[str, str] | None = None) -> list[str]:
    """One ``measures.I.name: …`` line for each of a campaign's ``measures`` (names, in the
    spec's order) that the ``evaluator``'s results never hold: every evaluation would fail
    with ``measure 'm2' is missing``. ``returned``: the names its results hold under this
    config; ``returns``: how the line says so (default: the names); ``unavailable``: names it
    returns only under another config, each with why (``attention_entropy``: ``model: vit``
    only). A name close to a returned one (difflib's ratio >= :data:`MEASURE_HINT_CUTOFF`,
    ignoring case and ``-``) ends ``; did you mean NAME?``."""
    said = returns or f"it returns {', '.join(returned)}"
    problems = []
    for i, name in enumerate(measures):
        if name in returned:
            continue
        if unavailable and name in unavailable:
            problems.append(f"measures.{i}.name: {name!r} is not measured by the {evaluator} evaluator here: "
                            f"{unavailable[name]}")
            continue
        meant = closest_name(name, returned, MEASURE_HINT_CUTOFF)
        hint = f"; did you mean {meant}?" if meant else ""
        problems.append(f"measures.{i}.name: {name!r} is not a measure the {evaluator} evaluator returns "
                        f"({said}){hint}")
    return problems


def is_unread(name: str, known: Collection[str], aliases: Mapping[str, str] | None = None) -> bool:
    """Whether ``name`` is neither a parameter of ``known`` nor a likely misspelling of one
    (:func:`meant_name`): a campaign's own parameter (``layers``), which an evaluator
    takes, searches and stores, and leaves unread."""
    return name not in known and meant_name(name, known, aliases) is None


def misspelling_problems(space: Mapping[str, Any], known: Collection[str], what: str,
                         aliases: Mapping[str, str] | None = None) -> list[str]:
    """One line for each name of ``space`` that is a likely misspelling of one of ``known``
    (:func:`meant_name`), refused by an evaluator's ``check_space``: ``what`` is the kind of
    name it is not ("a decoding parameter"); the line lists ``known`` and ends with the one
    meant. The twin of :func:`unread_warnings`, which takes every other name."""
    shown = ", ".join(sorted(known))
    return [f"space.{name}: is not {what} (known: {shown}); did you mean {meant}?"
            for name in space if (meant := meant_name(name, known, aliases)) is not None]


def unread_warnings(space: Mapping[str, Any], known: Collection[str], evaluator: str, what: str, effect: str,
                    aliases: Mapping[str, str] | None = None) -> list[str]:
    """One ``warning:`` line for each name of ``space`` that :func:`is_unread` (not one of
    ``known``, nor a likely misspelling of one, which ``check_space`` refuses): it is
    searched and stored, and the evaluator leaves it unread (``what``: "a decoding
    parameter"; ``effect``: what it has no effect on)."""
    return [f"space.{name}: not {what}; the {evaluator} evaluator does not read it (it is searched and stored, "
            f"with no effect on {effect})" for name in space if is_unread(name, known, aliases)]


def space_value_problems(evaluator: str, space: dict[str, dict[str, Any]],
                         problem_of: Callable[[str, float], str | None]) -> list[str]:
    """One line for each parameter of ``space`` whose range ends or numeric choices break
    its own rule: ``problem_of(name, value)`` says how (None: the value keeps it, or the
    parameter has no rule). A rule is an interval, so a range's two ends tell; a range
    reaching past it fails every evaluation drawn there, so it is refused with the file."""
    problems = []
    for name, param in space.items():
        categorical = param.get("type") == "categorical"
        values = param.get("choices", []) if categorical else [param.get("low"), param.get("high")]
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            if (problem := problem_of(name, value)) is None:
                continue
            problems.append(f"space.{name}.choices: {value!r} is refused by the {evaluator} evaluator ({problem})"
                            if categorical else
                            f"space.{name}: the range [{param.get('low')}, {param.get('high')}] reaches values the "
                            f"{evaluator} evaluator refuses ({problem})")
            break
    return problems
