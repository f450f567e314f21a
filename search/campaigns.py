"""Create a campaign from a spec, or find the one a spec continues."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from archive.errors import CampaignNameTaken, CampaignNotFound
from archive.layout import CellLayout, MeasureAxis
from archive.records import CampaignRecord
from archive.store import Store
from entropy_atlas.errors import AtlasError
from search.proposers import proposer_class
from search.proposers.base import ProposerContext
from search.run import setup_run
from search.spec import RUN_LIMITS, CampaignSpec, SpecError, key_orders_of, parse_spec

__all__ = ["BudgetSpent", "CampaignConflict", "CampaignNotFound", "CampaignPlan", "commit_campaign",
           "evaluator_units", "layout_for", "plan_campaign", "proposer_options_filled", "stored_spec"]


class CampaignConflict(AtlasError, ValueError):
    """A campaign of that name exists with a different spec."""


class BudgetSpent(AtlasError, ValueError):
    """A campaign that failed fast has spent its budget: a run at that budget has nothing
    left to evaluate (it would only have marked the campaign ``finished``)."""


@dataclass
class CampaignPlan:
    """What a run will write, worked out before anything is: the spec, the campaign it
    continues (None: a new one), and the cell layout (the stored one when continuing).
    ``spec`` is the one planned, but where it continues a campaign whose stored spec says
    the same run in other words (a default written out or left out), the stored one with
    the planned run limits: what ``atlas resume`` runs."""

    spec: CampaignSpec
    existing: CampaignRecord | None
    layout: CellLayout


def layout_for(spec: CampaignSpec) -> CellLayout:
    axes = [MeasureAxis(m.name, m.low, m.high, m.bins) for m in spec.measures]
    return CellLayout.build(spec.archive.type, axes, cells=spec.archive.cells,
                            samples=spec.archive.samples, seed=spec.search.seed)


_MISSING = object()  # a key one side of a comparison does not have


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The paths where ``new`` differs from ``old``, as the file names its fields
    (``measures.0.bins``): into mappings, and into lists of one length item by item. Values
    differ as :meth:`CampaignSpec.spec_hash` tells them apart: by their JSON (``1`` is not
    ``1.0`` nor ``true``; a key given as null is not a key left out)."""
    out = []
    for key in sorted(set(old) | set(new)):
        out += _changed(f"{prefix}{key}", old.get(key, _MISSING), new.get(key, _MISSING))
    return out


def _changed(path: str, a: Any, b: Any) -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return _differences(a, b, path + ".")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and not _same(a, b):
        return [p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in _changed(f"{path}.{i}", x, y)]
    return [] if _same(a, b) else [path]


def _same(a: Any, b: Any) -> bool:
    """Whether two values of a spec's JSON are the same to its hash (mappings in any order)."""
    if a is _MISSING or b is _MISSING:
        return a is b
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def _related(path: str, other: str) -> bool:
    """Whether one of two paths is the other or lies under it."""
    return path == other or path.startswith(other + ".") or other.startswith(path + ".")


def _changes(old: CampaignSpec, new: CampaignSpec, was: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """What ``new`` changes of ``old`` (``was`` and ``now``: the two with their defaults
    filled, :meth:`CampaignSpec.filled`), by path as the files write them, but for the run's
    limits: each path written differently whose filled values differ too, and not one that
    only writes out (or leaves out) a default; where none is (an option whose value is its
    default, but whose being named changes another's default: map-elites' ``emitters``
    picks ``variation``), every path written differently. Then each mapping whose order
    means something (:func:`~search.spec.key_orders_of`) and was reordered."""
    limits = {f"search.{key}" for key in RUN_LIMITS}
    meant = [d for d in _differences(was, now) if d not in limits]
    written = [d for d in _differences(old.model_dump(mode="json"), new.model_dump(mode="json")) if d not in limits]
    changed = [d for d in written if any(_related(d, m) for m in meant)]
    before, after = key_orders_of(was), key_orders_of(now)
    changed += [f"{path} (the order: {', '.join(before[path])} → {', '.join(after[path])})" for path in after
                if path in before and before[path] != after[path] and set(before[path]) == set(after[path])]
    return changed or written or meant


class _OptionReads(dict[str, Any]):
    """A proposer's options that keep, for each option the proposer reads
    (``options.get(key, default)``, as :meth:`~search.proposers.base.Proposer.option` does)
    and they leave out, the default it takes there, as JSON (one that is not JSON: not kept)."""

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        self.defaults: dict[str, Any] = {}
        self.opaque: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        if key not in self and key not in self.defaults and key not in self.opaque:
            try:
                self.defaults[key] = json.loads(json.dumps(default, default=_listed))
            except (TypeError, ValueError):
                self.opaque.add(key)
        return super().get(key, default)


def _listed(value: Any) -> Any:
    """An array's or a NumPy number's JSON form (``tolist``); anything else is not JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def proposer_options_filled(spec: CampaignSpec, layout: CellLayout) -> dict[str, Any]:
    """``spec``'s ``search.options`` with each option its proposer reads and they leave out
    written out at the default it takes (which may follow the other options, the batch size
    or the space: map-elites' ``variation``, ``random_init``, ``x0``); a portfolio's members
    each filled so. No proposer declares its defaults but by reading them: the proposer is
    built on ``layout`` (the campaign's) to learn them, nothing more. As written where it
    cannot be built (its options refused, a plug-in that is not installed)."""
    return _options_filled(spec.search.algorithm, setup_run(spec, layout).proposer_context())


def _options_filled(algorithm: str, ctx: ProposerContext) -> dict[str, Any]:
    written: dict[str, Any] = json.loads(json.dumps(ctx.options))
    reads = _OptionReads(ctx.options)
    try:
        proposer_class(algorithm)(dataclasses.replace(ctx, options=reads))
    except KeyboardInterrupt:
        raise
    except BaseException:  # a refused option, a plug-in's own failure, its sys.exit: the run names them
        return written
    filled = {**written, **{key: value for key, value in reads.defaults.items() if key not in written}}
    members = filled.get("members")
    if algorithm == "portfolio" and isinstance(members, dict):
        filled["members"] = {name: _options_filled(str(name), dataclasses.replace(ctx, options=dict(options or {})))
                             for name, options in members.items()}
    return filled


def resume_words(name: str, budget: int | None = None, cli_words: bool = False) -> str:
    """How a refusal tells the caller to resume campaign ``name`` (at ``budget``): as a call
    of the Python API (``api.resume('quad', budget=13, …)``, the ``…`` its storage and
    executor), or, with ``cli_words``, as the command (``atlas resume quad --budget 13``),
    which ``atlas`` completes with its storage and executor."""
    if cli_words:
        return f"atlas resume {name}" + ("" if budget is None else f" --budget {budget}")
    return f"api.resume({name!r}" + ("" if budget is None else f", budget={budget}") + ", …)"


def rename_words(cli_words: bool = False) -> str:
    """How a message tells the caller to run a campaign's spec again as a new campaign: as a
    call of the Python API (``api.run(spec, name='NEW', …)``), or, with ``cli_words``, as
    the command (``atlas run SPEC --name NEW``)."""
    return "atlas run SPEC --name NEW" if cli_words else "api.run(spec, name='NEW', …)"


def delete_words(name: str, cli_words: bool = False, force: bool = False) -> str:
    """How a message tells the caller to delete campaign ``name`` (``force``: even while a
    scheduler holds its lease): as Python that does it
    (``archive.open(…, readonly=False).campaign('quad').delete()``, the ``…`` its storage:
    :meth:`archive.handle.CampaignHandle.delete` needs a handle that writes), or, with
    ``cli_words``, as the command (``atlas delete quad --yes``, or ``--force``), which
    ``atlas`` completes with its storage."""
    if cli_words:
        return f"atlas delete {name} " + ("--force" if force else "--yes")
    return f"archive.open(…, readonly=False).campaign({name!r}).delete(" + ("force=True" if force else "") + ")"


def plan_campaign(store: Store, spec: CampaignSpec, layout: CellLayout | None = None,
                  source: str = "campaign", budget_source: str | None = None,
                  cli_words: bool = False) -> CampaignPlan:
    """Check that ``spec`` may run in ``store`` without writing anything.

    A new name is a new campaign, on ``layout`` (the spec's own, :func:`layout_for`,
    where the caller built it already). An existing one continues, on its stored layout,
    when the specs agree in everything but the run's limits (the budget and ``fail_fast``:
    :data:`~search.spec.RUN_LIMITS`); lowering the budget below what was already created is
    refused. They are compared after filling defaults: the file's own fields', the
    evaluator's config's (its config model's) and the proposer's options' (those it reads,
    :func:`proposer_options_filled`), so that a default written out, or a field added to
    the format with a default, does not make an old campaign different; such a campaign
    goes on with its stored spec (the planned limits). Any other difference is a
    :class:`CampaignConflict` naming each changed path (:func:`_changes`). The stored spec
    is compared, not the hash stored with it. A refused budget names ``budget_source``
    (where the budget came from: ``c1.yaml with --budget 200``; default ``source``, the file).
    A campaign that failed fast with its budget spent (:func:`check_not_spent`) is
    :class:`BudgetSpent`: a run would evaluate nothing. Each refusal says the way on in the
    caller's words: Python's (``use another name=…``, ``api.resume('quad', …)``, ``budget=``),
    or, with ``cli_words`` (``atlas``), the command line's (``--name``, ``atlas resume quad``,
    ``--budget``).
    """
    existing = store.campaign(spec.name)
    if existing is None:
        return CampaignPlan(spec, None, layout or layout_for(spec))
    old = parse_spec(existing.spec, source=f"stored spec of {spec.name}")
    stored_layout = CellLayout.from_json(existing.layout)
    if old.spec_hash() != spec.spec_hash():  # written otherwise: the same run once the defaults are filled?
        was = old.filled(proposer_options_filled(old, stored_layout))
        now = spec.filled(proposer_options_filled(spec, stored_layout))
        if old.spec_hash(was) != spec.spec_hash(now):
            raise CampaignConflict(
                f"campaign {spec.name!r} already exists with a different spec (changed: "
                f"{', '.join(_changes(old, spec, was, now))}); use another {'--name' if cli_words else 'name=…'}, "
                f"or resume it with `{resume_words(spec.name, cli_words=cli_words)}`"
            )
        spec = old.model_copy(update={"search": old.search.model_copy(
            update={key: getattr(spec.search, key) for key in RUN_LIMITS})})
    if old.search.budget != spec.search.budget:
        check_budget(store, existing.id, spec, budget_source or source, stored=old.search.budget,
                     cli_words=cli_words)
    check_not_spent(store, existing, spec, cli_words)
    return CampaignPlan(spec, existing, stored_layout)


def check_not_spent(store: Store, existing: CampaignRecord, spec: CampaignSpec, cli_words: bool = False) -> None:
    """Raise :class:`BudgetSpent` where campaign ``existing`` stopped ``failed`` (fail-fast)
    with every evaluation of ``spec``'s budget created and finished: the run would evaluate
    nothing and only mark it ``finished``. The line says how many failed and the budget that
    tries again (the failed ones' number more), as a call of :func:`search.api.resume` or,
    with ``cli_words``, as ``atlas resume`` (:func:`resume_words`). Rows left unfinished still run."""
    if existing.status != "failed":
        return
    stats = store.stats(existing.id, 0)
    budget = spec.search.budget
    if stats.created < budget or stats.finished < stats.created:
        return
    failed = stats.counts["failed"]
    raise BudgetSpent(
        f"campaign {spec.name!r} failed with its budget of {budget} spent ({failed} of its {stats.created} "
        f"evaluations failed): nothing is left to run; to try again, raise the budget: "
        f"`{resume_words(spec.name, stats.created + max(failed, 1), cli_words)}` runs {max(failed, 1)} more")


def commit_campaign(store: Store, plan: CampaignPlan, limits: bool = True, cli_words: bool = False) -> CampaignRecord:
    """Write the planned campaign: its row when new, its new limits (budget, ``fail_fast``)
    when changed (unless ``limits`` is False: a run writes them once it holds the lease,
    :func:`write_limits`, so that a run refused as busy changes nothing). A new name that
    another run wrote first is a :class:`CampaignConflict`, its way on in Python's words
    (``api.resume('quad', …)``: :func:`resume_words`), or with ``cli_words`` in ``atlas``'s
    (``atlas status quad``, ``atlas resume quad``); the limits' refusal likewise."""
    spec = plan.spec
    if plan.existing is None:
        try:
            return store.create_campaign(spec.name, spec.model_dump(mode="json"), spec.spec_hash(),
                                         plan.layout.to_json(), evaluator_units(spec))
        except CampaignNameTaken:
            status = f"`atlas status {spec.name}`, and " if cli_words else ""
            raise CampaignConflict(f"campaign {spec.name!r} was created by another run while this one started; "
                                   f"that run has it: {status}`{resume_words(spec.name, cli_words=cli_words)}` "
                                   f"once it stops") from None
    if limits:
        write_limits(store, plan.existing, spec, cli_words)
    return store.require_campaign(spec.name)


def check_budget(store: Store, campaign_id: int, spec: CampaignSpec, source: str = "campaign",
                 stored: int | None = None, cli_words: bool = False) -> None:
    """Raise :class:`SpecError` when ``spec``'s budget is below the evaluations the
    campaign already has, naming ``source`` (where the budget came from) and how to go on,
    in the caller's words: a resume at the ``stored`` budget (one a larger budget raised
    past the file's), or a larger budget: ``api.resume('quad', …)`` and ``budget=``, or,
    with ``cli_words``, ``atlas resume quad`` and ``--budget``."""
    created = store.count_created(campaign_id)
    if spec.search.budget < created:
        kept = "" if stored is None else f" (its budget is {stored})"
        raise SpecError([f"search.budget: {spec.search.budget} is below the {created} evaluations "
                         f"campaign {spec.name!r} already has; continue it with "
                         f"`{resume_words(spec.name, cli_words=cli_words)}`{kept}, or run more with "
                         f"{'a --budget' if cli_words else 'budget='} above {created}"], source)


def write_limits(store: Store, record: CampaignRecord, spec: CampaignSpec, cli_words: bool = False) -> None:
    """Store ``spec``'s run limits (:data:`~search.spec.RUN_LIMITS`) where they changed, in
    the stored spec; the rest of it stays as it was written (``spec`` may say the same run
    in other words: :func:`plan_campaign`). A new budget is checked again here, under the
    run's lease: the evaluations counted when the run was planned may have grown since, by
    the run that held the campaign then. Its refusal is in Python's words, or with
    ``cli_words`` in ``atlas``'s (the scheduler passes its caller's: :func:`check_budget`)."""
    stored = record.spec
    limits = {key: getattr(spec.search, key) for key in RUN_LIMITS}
    if any(stored["search"].get(key, _MISSING) != value for key, value in limits.items()):
        if stored["search"].get("budget") != spec.search.budget:
            check_budget(store, record.id, spec, stored=stored["search"]["budget"], cli_words=cli_words)
        written = {**stored, "search": {**stored["search"], **limits}}
        store.update_campaign(record.id, spec=written, default_units=evaluator_units(spec))


def evaluator_units(spec: CampaignSpec) -> dict[str, str]:
    """The units ``spec``'s evaluator declares for its config (:func:`workers.registry.units`;
    none for ``kind: python``), by the spec's objective's and measures' names: the labels of
    those the spec gives no ``unit`` (:meth:`archive.records.CampaignSettings.from_spec`).
    Written with the campaign's settings, which every reader takes; a resume writes the same."""
    from workers import registry

    declared = registry.units(spec.evaluator.kind, dict(spec.evaluator.config))
    return declared.labels(spec.objective.name, [m.name for m in spec.measures])


def open_campaign(store: Store, spec: CampaignSpec) -> CampaignRecord:
    """Plan and commit in one step (for tools and tests that build nothing in between)."""
    return commit_campaign(store, plan_campaign(store, spec))


def stored_spec(store: Store, name: str) -> tuple[CampaignRecord, CampaignSpec]:
    campaign = store.require_campaign(name)
    return campaign, parse_spec(campaign.spec, source=f"stored spec of {name}")
