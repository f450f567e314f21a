"""The plain records every reader and writer of the archive passes around."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archive.layout import CellLayout

EXPLORATION_BINS = 10  # options of a numeric unit-cube coordinate in the exploration entropy


def error_message(error: str | None) -> str:
    """The message an evaluation's or a model call's error is counted and shown by: its
    first line, everything before the first newline (``''`` for none), as
    :meth:`~archive.store.Store.failure_summary` groups failures in SQL."""
    return (error or "").split("\n", 1)[0]


def lease_is_live(holder: str | None, expires: float | None, now: float | None = None) -> bool:
    """Whether a scheduler holds a campaign's lease now: someone holds it and it has not
    expired (``expires >= now``; :meth:`archive.store.Store.acquire_lease` takes a lease
    whose ``expires < now``). ``expires`` and ``now`` are on one clock: this process's, with
    ``expires`` read by :func:`archive.leases.lease_expires_here` (on PostgreSQL the lease's
    time left on the server's clock, so that this machine's clock being off does not matter)."""
    now = time.time() if now is None else now
    return holder is not None and expires is not None and expires >= now


def scheduler_is_live(holder: str | None, expires: float | None, now: float | None = None) -> bool:
    """Whether the campaign's scheduler is alive: its lease is live (:func:`lease_is_live`)
    and its holder is not known dead: a process of this host's PID namespace that no longer
    exists (``kill -9``: known at once, not a lease's TTL later;
    :func:`entropy_atlas.holders.holder_is_dead`). A holder in another PID namespace (a
    container sharing the host's name) lives until its lease expires."""
    from entropy_atlas.holders import holder_is_dead

    return lease_is_live(holder, expires, now) and not holder_is_dead(holder or "")


INTERRUPTED = "interrupted"  # a ``running`` row whose scheduler died without a word (:func:`live_status`)


def live_status(status: str, holder: str | None, expires: float | None, now: float | None = None) -> str:
    """A campaign's status as every reader shows it (``atlas status``, its ``--json``, an
    export, the dashboard's ``state``), from its row's ``status`` and lease. The rule: a row
    that says ``running`` is ``running`` while its scheduler lives (:func:`scheduler_is_live`),
    else :data:`INTERRUPTED`: the scheduler died without a word (``kill -9``, a crash, a
    machine gone: its process is gone, or its lease lapsed), so nothing set the row's status.
    Every other status is the row's own, as the scheduler wrote it: ``stopped`` for an orderly
    stop (Ctrl-C, SIGTERM, a lost cluster), ``failed`` (fail-fast), ``finished``, ``created``.
    An interrupted campaign, like a stopped one, is resumed by ``atlas resume``."""
    if status == "running" and not scheduler_is_live(holder, expires, now):
        return INTERRUPTED
    return status


def unfinished_split(counts: Mapping[str, int], live: bool) -> dict[str, int]:
    """The evaluations written and not finished (``counts``: by row status), as every reader
    shows them (``atlas status`` and its ``--json``, :meth:`archive.handle.CampaignHandle.unfinished`):
    while a run holds the campaign (``live``: its :func:`live_status` is ``running``),
    ``in_flight`` (dispatched or queued on its workers: the rows pending and running) of which
    ``running`` are running; with no run holding it (stopped, killed, interrupted), none is in
    flight or running: all are ``pending``, waiting for ``atlas resume`` (rows a killed run
    left ``running`` included)."""
    unfinished = counts.get("pending", 0) + counts.get("running", 0)
    if live:
        return {"running": counts.get("running", 0), "in_flight": unfinished, "pending": 0}
    return {"running": 0, "in_flight": 0, "pending": unfinished}


@dataclasses.dataclass(frozen=True)
class CampaignSettings:
    """What every reader of a campaign needs, written once with its row (``campaigns.settings``)
    so that nobody re-parses the stored spec for it.

    ``coordinate_options`` has, for each unit-cube coordinate, its number of options: a
    categorical parameter's choices, :data:`EXPLORATION_BINS` for a number (a float
    vector counts per coordinate). ``coordinate_params`` names, for each coordinate, the
    parameter it belongs to (a float vector's name once per coordinate): a coordinate is
    active for an evaluation when its parameter is in the evaluation's params, and only
    active coordinates count in the exploration entropy (:mod:`archive.stats`); empty for
    settings written before it (every coordinate then counts). ``measure_directions`` maps a measure to ``maximize`` or
    ``minimize`` where the search said (``mo-bo``'s fronts). ``units`` maps the objective's
    and the measures' names to their ``unit`` (labels only): the one the spec gave, else the
    one the evaluator declares (:meth:`from_spec`).
    """

    objective: str
    maximize: bool
    qd_offset: float
    budget: int
    algorithm: str
    measures: tuple[str, ...]
    measure_directions: dict[str, str]
    params: tuple[str, ...]
    coordinate_options: tuple[int, ...]
    coordinate_params: tuple[str, ...] = ()
    units: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def sign(self) -> float:
        """+1 when maximising, −1 when minimising: fitness = sign · objective."""
        return 1.0 if self.maximize else -1.0

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "measures": list(self.measures), "params": list(self.params),
                "coordinate_options": list(self.coordinate_options),
                "coordinate_params": list(self.coordinate_params)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CampaignSettings:
        return cls(objective=str(data["objective"]), maximize=bool(data["maximize"]),
                   qd_offset=float(data["qd_offset"]), budget=int(data["budget"]),
                   algorithm=str(data["algorithm"]), measures=tuple(data["measures"]),
                   measure_directions=dict(data.get("measure_directions") or {}),
                   params=tuple(data.get("params") or ()),
                   coordinate_options=tuple(int(n) for n in data.get("coordinate_options") or ()),
                   coordinate_params=tuple(str(p) for p in data.get("coordinate_params") or ()),
                   units={str(k): str(v) for k, v in (data.get("units") or {}).items()})

    @classmethod
    def from_spec(cls, spec: dict[str, Any], default_units: Mapping[str, str] | None = None) -> CampaignSettings:
        """The settings of a validated spec's JSON form (``CampaignSpec.model_dump(mode="json")``),
        every default filled in; also how migration 0003 fills the rows written before it.
        ``default_units``: the units the evaluator declares, by the spec's names
        (:func:`search.campaigns.evaluator_units`), each taken where the spec gives no ``unit``."""
        search = spec.get("search") or {}
        space = spec.get("space") or {}
        options: list[int] = []
        owners: list[str] = []
        for name, param in space.items():
            n = len(param["choices"]) if param.get("type") == "categorical" else EXPLORATION_BINS
            size = int(param.get("size", 1))
            options += [n] * size
            owners += [str(name)] * size
        directions = _measure_directions(search.get("options") or {})
        objective = spec.get("objective") or {}
        named = [objective, *(spec.get("measures") or ())]
        given = {str(m.get("name", "objective")): str(m["unit"]) for m in named if m.get("unit")}
        units = {**(default_units or {}), **given}
        return cls(objective=str(objective.get("name", "objective")),
                   maximize=objective.get("direction", "maximize") == "maximize",
                   qd_offset=float((spec.get("archive") or {}).get("qd_offset", 0.0) or 0.0),
                   budget=int(search.get("budget", 0)), algorithm=str(search.get("algorithm", "map-elites")),
                   measures=tuple(m["name"] for m in spec.get("measures") or ()),
                   measure_directions={str(k): str(v) for k, v in directions.items()},
                   params=tuple(space), coordinate_options=tuple(options),
                   coordinate_params=tuple(owners), units=units)


def _measure_directions(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``measure_directions`` of the search options, or of the first portfolio member
    that names them (a portfolio's ``mo-bo`` minimising a measure: the front is drawn so)."""
    if options.get("measure_directions"):
        return options["measure_directions"]
    members = options.get("members")
    for member in (members.values() if isinstance(members, Mapping) else ()):
        if isinstance(member, Mapping) and member.get("measure_directions"):
            return member["measure_directions"]
    return {}


@dataclasses.dataclass
class CampaignRecord:
    """A campaign row."""

    id: int
    name: str
    spec: dict[str, Any]
    spec_hash: str
    status: str
    layout: dict[str, Any]
    lease_holder: str | None
    lease_expires: float | None  # on this process's clock: archive.leases.lease_expires_here
    created_at: float
    updated_at: float
    settings: CampaignSettings

    def live_status(self, now: float | None = None) -> str:
        """The status as a reader should see it (:func:`live_status`): a ``running`` campaign
        whose scheduler's lease has expired, or whose scheduler was a process of this host's
        PID namespace that no longer exists (``kill -9``: at once), is ``interrupted``."""
        return live_status(self.status, self.lease_holder, self.lease_expires, now)

    def lease_is_live(self, now: float | None = None) -> bool:
        """Whether a scheduler holds this campaign's lease now (:func:`lease_is_live`)."""
        return lease_is_live(self.lease_holder, self.lease_expires, now)


@dataclasses.dataclass
class NewEvaluation:
    """A row to write before dispatch."""

    seq: int
    params: dict[str, Any]
    x: list[float]
    proposer: str
    proposal: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Result:
    """The outcome of one evaluation, as the scheduler records it."""

    evaluation_id: int
    status: str  # "done" | "failed"
    objective: float | None = None
    measures: dict[str, float] | None = None
    metrics: dict[str, Any] | None = None
    cell: int | None = None
    error: str | None = None
    worker: str | None = None


@dataclasses.dataclass
class Stats:
    """A campaign's progress and map quality."""

    counts: dict[str, int]
    created: int
    finished: int
    elites: int
    cells: int
    coverage: float
    qd_score: float
    best_objective: float | None
    best_evaluation_id: int | None


@dataclasses.dataclass
class MapData:
    """What a campaign's elite map is drawn from (:meth:`archive.handle.CampaignHandle.map_data`):
    its elites best first (cell, objective, fitness and measures), the layout, the settings and
    the title's figures. Plain data, so a reader in another process can hand it over."""

    name: str
    layout: CellLayout
    settings: CampaignSettings
    elites: list[dict[str, Any]]
    stats: Stats
