"""The campaign file: pydantic models of DESIGN.md's YAML, and its loader.

A bad file is refused before anything runs, with each field's path and the reason
(``search.budget: must be > 0``); :class:`SpecError` carries those lines. Every problem
of the file's own comes at once: the cross-field checks run on the parts that pass where
another part fails (:func:`_partial_cross_problems`); an unknown field or algorithm close
to a known one ends ``; did you mean 'choices'?`` (a misspelt required field is one line);
a YAML syntax error is one line at its place (``bad.yaml:2:12: not valid YAML: …``,
:func:`yaml_problem`).

Rules beyond the field types:

- the file is UTF-8 text of at most :data:`MAX_FILE_BYTES`; YAML is read with
  ``yaml.safe_load``'s rules, except that a mapping may not repeat a key, at most
  :data:`MAX_ALIASES` aliases may appear and the document, aliases expanded, has at most
  :data:`MAX_NODES` nodes (a "billion laughs" file is refused before it is expanded);
- NaN and ±inf, integers beyond 64 bits and strings with a NUL or a lone surrogate are
  refused anywhere in the data, free-form sections included
  (``archive.qd_offset: must be a finite number``): no storage keeps them as they are;
- numbers are YAML 1.2's: ``1e-5`` and ``1.0e5`` are floats (YAML 1.1, PyYAML's default,
  reads them as strings); so are booleans: only ``true`` and ``false`` (YAML 1.1 also read
  ``on``, ``off``, ``yes``, ``no``, ``y`` and ``n`` as booleans, so that choices ``[on, off]``
  had become ``[True, False]``);
- numbers are strict: a boolean is not a number (``budget: true`` is refused), an
  integer field refuses ``2.5`` and ``"2"``; a float field takes integers;
- the elite map is bounded: a grid has at most :data:`MAX_GRID_CELLS` cells (the product
  of the measures' bins), a CVT at most :data:`MAX_CVT_CELLS` cells and
  :data:`MAX_CVT_SAMPLES` k-means samples, and at least as many samples as cells;
- ``resources.timeout_s`` lies in [:data:`MIN_TIMEOUT_S`, :data:`MAX_TIMEOUT_S`];
- ``search.algorithm`` names a proposer of :func:`search.proposers.available` (built in,
  or a plug-in of the ``entropy_atlas.proposers`` entry-point group);
- ``search.initial_points`` are points of the space (:meth:`SearchSpace.check_points`).

The parameter models of ``space:`` and their rules are :mod:`search.params`.

:func:`spec_warnings` lists what is legal but probably not meant (more initial points
than the budget); :func:`evaluator_problems` asks the evaluator registry whether the
evaluator section can run (its config model, its target, its parameters), and
:func:`evaluator_review` also what the evaluator warns of (a parameter it does not read).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import re
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from archive.layout import RIBS_EPSILON
from entropy_atlas.errors import AtlasError
from entropy_atlas.names import closest_name, did_you_mean
from entropy_atlas.storable import INT64, text_problem
from entropy_atlas.validation import FRIENDLY, TYPE_NOUNS, kind_of, message
from search.params import Param, StrictModel, check_bounds, condition_problem
from search.proposers import algorithm_problem, available, proposer_class
from search.space import SearchSpace

NAME_PATTERN = r"^[a-z0-9_][a-z0-9._-]*$"

#: The largest campaign file read, in bytes.
MAX_FILE_BYTES = 10 * 1024 * 1024
#: The most YAML aliases (``*name``, merge keys included) one file may use.
MAX_ALIASES = 100
#: The most YAML nodes one document may have once its aliases are expanded.
MAX_NODES = 200_000
#: The most cells of a grid archive (the product of the measures' bins).
MAX_GRID_CELLS = 1_000_000
#: The most cells, and k-means samples, of a CVT archive.
MAX_CVT_CELLS = 100_000
MAX_CVT_SAMPLES = 1_000_000
#: a batch is asked, and a CMA-ES generation allocated, at once: beyond this no run needs, and 10⁹ exhausts memory
MAX_BATCH = 1_000_000
DEFAULT_CVT_SAMPLES = 25_000
#: A grid measure's narrowest range (high − low) that pyribs' epsilon (10⁻⁶, added in the measure's own units
#: before dividing by the range) moves less than 1 % of a cell.
NARROWEST_GRID_RANGE = 100 * RIBS_EPSILON
#: The bounds of ``resources.timeout_s`` (10 ms to 30 days: what ``setitimer`` handles).
MIN_TIMEOUT_S = 0.01
MAX_TIMEOUT_S = 30 * 24 * 3600.0


#: The fields of ``search`` a campaign's later run may change (the file edited, or
#: ``--budget``): how far it goes, when it gives up and whether its turns are made
#: reproducible (``reproducible``), not what it searches.
RUN_LIMITS = ("budget", "fail_fast", "reproducible")


class SpecError(AtlasError, ValueError):
    """A campaign file that cannot be run; ``problems`` holds ``path: reason`` lines."""

    def __init__(self, problems: list[str], source: str = "campaign") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source} is not valid:\n" + "\n".join(f"  {p}" for p in problems))

    def lines(self) -> list[str]:
        """One line per problem, each naming the file: ``bad.yaml: search.budget: must be > 0``; a
        problem at a place in the text (``2:12: not valid YAML: …``) as compilers name one,
        ``bad.yaml:2:12: not valid YAML: …``; a problem of the file itself that ends with its
        path (``(file): no such file: gone.yaml``, ``(file): a directory, not a campaign file:
        dir``) names it once: ``gone.yaml: no such file`` (:meth:`said_once`)."""
        return [f"{self.source}{':' if _AT_LINE.match(p) else ': '}{' '.join(self.said_once(p).split())}"
                for p in self.problems]

    def said_once(self, problem: str) -> str:
        """``problem`` without its ``(file): `` and the file's path at its end, where it has both."""
        tail = f": {self.source}"
        if problem.startswith(_FILE) and problem.endswith(tail) and len(problem) > len(_FILE) + len(tail):
            return problem[len(_FILE):-len(tail)]
        return problem


#: How a problem of the campaign file itself (not of a field) begins.
_FILE = "(file): "

#: A problem that starts with where in the text it is, ``LINE:COLUMN: ``.
_AT_LINE = re.compile(r"\d+:\d+: ")


def _field_error(field: str, reason: str) -> PydanticCustomError:
    """A validator's error that names a field below the model it is raised in."""
    return PydanticCustomError("field_problem", "{field}: {reason}", {"field": field, "reason": reason})


def _field_errors(found: list[tuple[str, str]]) -> PydanticCustomError:
    """A validator's errors, ``(field, reason)`` each, raised at once (a validator raises one
    error; this one is read back as a line per problem by :func:`_format_errors`)."""
    if len(found) == 1:
        return _field_error(*found[0])
    return PydanticCustomError("field_problems", "{count} problems", {"count": len(found), "problems": found})


class EvaluatorSpec(StrictModel):
    kind: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    target: str | None = Field(default=None, description="module:function, for kind python")

    @model_validator(mode="after")
    def _target(self) -> EvaluatorSpec:
        """Kind ``python`` names its code in ``target``, ``package.module:function``
        (:func:`workers.registry.target_problem` says how one is mistyped: ``'myeval.evaluate'
        has no ':'; write 'myeval:evaluate'``); no other kind takes a target."""
        if self.kind == "python":
            if not self.target:
                raise _field_error("target", "kind python needs a target 'package.module:function' (a module on "
                                             "PYTHONPATH, ':', then the function or class it defines)")
            from workers.registry import target_problem

            if (problem := target_problem(self.target)) is not None:
                raise _field_error("target", problem)
        elif self.target is not None:
            raise _field_error("target", f"is only for kind python (kind is {self.kind!r})")
        return self


#: ``unit`` of an objective or a measure: a label for the figures (``nats``, ``fraction``), nothing more.
UNIT_FIELD = Field(default=None, min_length=1, max_length=40)


class ObjectiveSpec(StrictModel):
    name: str = Field(default="objective", min_length=1)
    direction: Literal["maximize", "minimize"] = "maximize"
    unit: str | None = UNIT_FIELD


class MeasureSpec(StrictModel):
    name: str = Field(min_length=1)
    low: float
    high: float
    bins: int = Field(default=10, ge=1, le=100_000)
    unit: str | None = UNIT_FIELD

    @model_validator(mode="after")
    def _bounds(self) -> MeasureSpec:
        """The range's ends as a parameter's, and ``bins · (high − low)`` a finite float: a
        grid's cell is ``⌊bins · (m − low) / (high − low)⌋``, multiplied first as pyribs
        does (:meth:`archive.layout.CellLayout.index_of`)."""
        check_bounds(self.low, self.high, log=False)
        if not math.isfinite(self.bins * (self.high - self.low)):
            raise ValueError(f"bins × (high - low) must be a finite number: {self.bins} × ({self.high} - {self.low}) "
                             "passes the largest float (a cell is found as bins·(m - low) / (high - low))")
        return self


class ArchiveSpec(StrictModel):
    """The elite map. A CVT's ``samples`` defaults to ``max(25000, cells)`` and may not be below ``cells``."""

    type: Literal["grid", "cvt"] = "grid"
    cells: int | None = Field(default=None, ge=2, le=MAX_CVT_CELLS, description="CVT cells")
    samples: int = Field(default=DEFAULT_CVT_SAMPLES, ge=100, le=MAX_CVT_SAMPLES, description="CVT k-means samples")
    qd_offset: float = Field(default=0.0, description="subtracted from each elite before summing")

    @model_validator(mode="before")
    @classmethod
    def _default_samples(cls, data: Any) -> Any:
        if isinstance(data, dict) and "samples" not in data and type(data.get("cells")) is int:
            data = {**data, "samples": max(DEFAULT_CVT_SAMPLES, data["cells"])}
        return data

    @model_validator(mode="after")
    def _cells(self) -> ArchiveSpec:
        if self.type == "cvt" and self.cells is None:
            raise ValueError("a cvt archive needs cells")
        if self.type == "grid" and self.cells is not None:
            raise ValueError("cells is for cvt archives; a grid's cells come from the measures' bins")
        if self.cells is not None and self.samples < self.cells:
            raise _field_error("samples", f"must be >= cells ({self.cells}); k-means needs a sample per cell")
        return self


class SearchSpec(StrictModel):
    algorithm: str = "map-elites"
    options: dict[str, Any] = Field(default_factory=dict)
    budget: int = Field(gt=0)
    batch_size: int = Field(default=8, gt=0, le=MAX_BATCH)
    max_in_flight: int = Field(default=16, gt=0)
    seed: int = Field(default=0, ge=0)
    fail_fast: int = Field(default=10, ge=0, description=(
        "stop the run when its first this-many evaluations all fail (0: never stop early)"))
    reproducible: bool = Field(default=False, description=(
        "results are told to the proposer one asked batch a turn, in the order asked, whatever the evaluations' "
        "times (the inline executor runs one batch a turn; Ray's results wait for their batch's), so the same "
        "file gives the same run (docs/campaigns.md, Reproducibility)"))
    initial_points: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("algorithm")
    @classmethod
    def _known(cls, value: str) -> str:
        """An available algorithm (:func:`search.proposers.available`); an unknown name close to
        one (``mapelites``) ends ``; did you mean 'map-elites'?`` (:func:`did_you_mean`)."""
        problem = algorithm_problem(value)
        if problem:
            raise ValueError(problem + did_you_mean(value, available()))
        return value

    @model_validator(mode="after")
    def _whole_generations(self) -> SearchSpec:
        """CMA-ES (``cma-me``, ``cma-mae``, alone or in a portfolio) asks a generation of
        ``batch_size`` and learns only from whole ones: ``max_in_flight`` below it cuts
        every generation short, and the search would never adapt its step or shape."""
        members = self.options.get("members") if self.algorithm == "portfolio" else None
        named = {self.algorithm, *(members if isinstance(members, dict) else ())}
        es = sorted(a for a in named if a in ("cma-me", "cma-mae"))
        if es and self.max_in_flight < self.batch_size:
            raise _field_error("max_in_flight", f"{es[0]} asks generations of batch_size ({self.batch_size}) and "
                                                f"learns from whole ones only; {self.max_in_flight} in flight cuts "
                                                f"each short: set max_in_flight >= batch_size")
        return self

    @model_validator(mode="after")
    def _bounded_in_flight(self) -> SearchSpec:
        """A turn asks for every batch there is room for before it writes any: more than
        :data:`MAX_BATCH` in flight at once (``max_in_flight``, where the budget allows as
        many) had the first turn asking for ever (10⁹: 1.2 GB and not one row in 30 s). A
        larger ``max_in_flight`` on a budget within the bound is taken (it is the budget)."""
        if min(self.max_in_flight, self.budget) > MAX_BATCH:
            raise _field_error("max_in_flight", f"must be <= {MAX_BATCH} (got {self.max_in_flight}): every "
                                                "evaluation in flight is asked for and held at once")
        return self


class ResourcesSpec(StrictModel):
    """What each evaluation reserves and how long and how often it may run.

    ``custom`` names Ray custom resources every evaluation worker also reserves (a node
    started with ``--resources='{"a100": 1}'`` takes work that asks for ``a100``).
    ``memory_mb`` reserves Ray's ``memory`` resource for each worker and caps how much its
    process may allocate beyond what it holds after ``setup`` (the data segment's rlimit):
    an evaluation that needs more fails with ``MemoryError`` instead of taking the node down.
    Both apply to the Ray executor.
    """

    num_cpus: float = Field(default=1, ge=0)
    num_gpus: float = Field(default=0, ge=0)
    timeout_s: float = Field(default=900, ge=MIN_TIMEOUT_S, le=MAX_TIMEOUT_S)
    max_retries: int = Field(default=2, ge=0)
    custom: dict[str, float] = Field(default_factory=dict)
    memory_mb: float | None = Field(default=None, gt=0)

    @field_validator("custom")
    @classmethod
    def _positive_amounts(cls, value: dict[str, float]) -> dict[str, float]:
        reserved = {"CPU", "GPU", "memory", "object_store_memory"}
        for name, amount in value.items():
            if not name or name in reserved:
                raise ValueError(f"{name!r} is not a custom resource name (use num_cpus, num_gpus, memory_mb)")
            if amount <= 0:
                raise ValueError(f"{name}: the amount must be > 0")
        return value


class CampaignSpec(StrictModel):
    """A whole campaign: what to evaluate, over which space, mapped by which measures."""

    name: str = Field(max_length=200)
    evaluator: EvaluatorSpec
    space: dict[str, Param] = Field(min_length=1)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    measures: list[MeasureSpec] = Field(min_length=1)
    archive: ArchiveSpec = Field(default_factory=ArchiveSpec)
    search: SearchSpec
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)

    @field_validator("name")
    @classmethod
    def _name_rule(cls, value: str) -> str:
        """Lower-case letters, digits, ``.``, ``_`` and ``-``, not starting with ``.`` or ``-``:
        a name is also a file name (the map's) and a command-line argument, where ``..`` is
        a parent folder and ``-x`` an option."""
        if not re.fullmatch(NAME_PATTERN, value):
            raise ValueError(f"must match {NAME_PATTERN}: lower-case letters, digits, '.', '_' and '-', starting "
                             f"with a letter, digit or '_' (got {value!r})")
        return value

    @model_validator(mode="after")
    def _cross_checks(self) -> CampaignSpec:
        """Measures of distinct names, a grid within :data:`MAX_GRID_CELLS`, parameters named
        as identifiers whose conditions name parameters before them and can hold: every
        problem at once (they had come one at a time, each fixed before the next showed;
        :func:`_cross_problems`). Where another field fails, pydantic does not run this;
        :func:`parse_spec` runs the same checks on the parts that pass (:func:`_partial_cross_problems`)."""
        found = _cross_problems(self.space, self.measures, [m.name for m in self.measures],
                                self.archive.type == "grid")
        if found:
            raise _field_errors(found)
        return self

    def key_orders(self) -> dict[str, list[str]]:
        """The mappings whose order means something, by path, as their lists of keys: the
        space's parameters (the unit cube's axes, in order) and a portfolio's members (each
        member's seed and arm follow its place): :func:`key_orders_of` this spec's JSON."""
        return key_orders_of(self.model_dump(mode="json"))

    def spec_hash(self, filled: dict[str, Any] | None = None) -> str:
        """A stable hash of everything but the run's limits (:data:`RUN_LIMITS`: the budget,
        ``fail_fast``, ``reproducible``), which a later run of the campaign may change; mappings compare
        as sets of keys, but for the orders that mean something (:func:`key_orders_of`).

        Of the spec as it is written, or, given ``filled``, of this spec's JSON with the
        defaults a run takes written out (:meth:`filled`): there two specs that mean the
        same run (one writes ``measure_names: [m0, m1]``, the default, the other leaves it
        out) hash alike. A campaign's stored hash is of the spec as written.
        """
        data = json.loads(json.dumps(filled)) if filled is not None else self.model_dump(mode="json")
        for key in RUN_LIMITS:
            data["search"].pop(key, None)
        data["key_orders"] = key_orders_of(data)
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def filled(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        """This spec's JSON (``model_dump(mode="json")``, in which the file's own fields have
        their defaults already) with the defaults of its free-form sections written out:
        ``evaluator.config`` as the evaluator's config model fills it
        (:func:`evaluator_config_filled`), and ``search.options`` replaced by ``options``
        where given: the proposer's options with the defaults it reads, which only a built
        proposer tells (:func:`search.campaigns.proposer_options_filled`; it needs the
        campaign's cell layout). What cannot be filled stays as written."""
        data = self.model_dump(mode="json")
        data["evaluator"]["config"] = evaluator_config_filled(self)
        if options is not None:
            data["search"]["options"] = json.loads(json.dumps(options))
        return data

    def with_overrides(self, name: str | None = None, budget: int | None = None,
                       source: str = "campaign") -> CampaignSpec:
        """This spec with another ``name`` or ``budget``; a refused one names ``source`` (the
        file) and the override: ``bad.yaml with --budget -5: search.budget: must be > 0``."""
        data = self.model_dump(mode="json")
        given = []
        if name is not None:
            data["name"] = name
            given.append(f"--name {name}")
        if budget is not None:
            data["search"]["budget"] = budget
            given.append(f"--budget {budget}")
        return parse_spec(data, source=f"{source} with {' '.join(given)}" if given else source)


#: One parameter of ``space:`` validated alone (:func:`_partial_cross_problems`).
_PARAM: TypeAdapter[Any] = TypeAdapter(Param)


def _cross_problems(space: dict[str, Any], measures: list[MeasureSpec] | None, names: list[str],
                    grid: bool) -> list[tuple[str, str]]:
    """``(field, reason)`` of each problem between fields (:meth:`CampaignSpec._cross_checks`).

    ``space`` maps each parameter's name to its model, or to None where the parameter fails
    its own rules (its name is still checked; its conditions, and conditions on it, are not);
    ``measures`` is None where one fails its own rules (the grid's size is not checked then);
    ``names`` are the measures' names as given; ``grid``: the archive is a grid."""
    found: list[tuple[str, str]] = []
    if len(set(names)) != len(names):
        found.append(("measures", "names must be distinct"))
    if grid and measures is not None and (cells := _grid_cells_problem(measures)) is not None:
        found.append(("measures", cells))
    seen: dict[str, Any] = {}
    for pname, param in space.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", pname):
            found.append((f"space.{pname}", "a parameter name is an ASCII identifier (letters a-z and A-Z, "
                                            "digits and _, not starting with a digit)"))
        for cname, cvalue in ((param.when or {}) if param is not None else {}).items():
            if cname not in seen:
                found.append((f"space.{pname}.when", f"{cname!r} must be a parameter defined before it"))
            elif seen[cname] is not None and (problem := condition_problem(cvalue, seen[cname])) is not None:
                found.append((f"space.{pname}.when.{cname}", problem))
        seen[pname] = param
    return found


def _partial_cross_problems(data: dict[str, Any]) -> list[str]:
    """:func:`_cross_problems` of the parts of ``data`` that pass their own rules, as ``path:
    reason`` lines, for a file another field of which fails: pydantic runs a model's
    validator only once every field passed, and the measures' names or a condition's value
    had come a run after a parameter's bounds were fixed. Each parameter and each measure is
    validated alone (:data:`_PARAM`, :class:`MeasureSpec`)."""
    raw_space, raw_measures, raw_archive = data.get("space"), data.get("measures"), data.get("archive", {})
    space: dict[str, Any] = {}
    for name, raw in (raw_space.items() if isinstance(raw_space, dict) else ()):
        try:
            space[str(name)] = _PARAM.validate_python(raw)
        except ValidationError:
            space[str(name)] = None
    measures: list[MeasureSpec] | None = None
    names: list[str] = []
    if isinstance(raw_measures, list):
        names = [m["name"] for m in raw_measures if isinstance(m, dict) and isinstance(m.get("name"), str)]
        with contextlib.suppress(ValidationError):
            measures = [MeasureSpec.model_validate(m) for m in raw_measures]
    grid = isinstance(raw_archive, dict) and raw_archive.get("type", "grid") == "grid"
    return [f"{path}: {reason}" for path, reason in _cross_problems(space, measures, names, grid)]


def _in_section_order(problems: list[str], extra: list[str]) -> list[str]:
    """``problems`` with each line of ``extra`` put before the first line of a later section of
    the file (sections in :class:`CampaignSpec`'s order; ``(file)`` lines first, unknown ones last)."""
    order = {name: i for i, name in enumerate(CampaignSpec.model_fields)}

    def section(line: str) -> int:
        top = re.split(r"[.:]", line, maxsplit=1)[0]
        return -1 if line.startswith("(file)") else order.get(top, len(order))

    merged = list(problems)
    for line in extra:
        at = next((i for i, p in enumerate(merged) if section(p) > section(line)), len(merged))
        merged.insert(at, line)
    return merged


def _grid_cells_problem(measures: list[MeasureSpec]) -> str | None:
    """A grid's cells, the product of the measures' bins, are at most MAX_GRID_CELLS."""
    cells = math.prod(m.bins for m in measures)
    if cells <= MAX_GRID_CELLS:
        return None
    bins = " x ".join(str(m.bins) for m in measures)
    return (f"a grid of {bins} = {cells} cells is too large (the product of the bins must be <= {MAX_GRID_CELLS}; "
            "use fewer bins or a cvt archive)")


# The spec's own wording where it differs from the shared one.
_FRIENDLY = {**FRIENDLY, "too_short": "must not be empty"}
_PARAM_TAGS = {"float", "int", "categorical"}
_CHOICE_TAGS = {"str", "int", "float", "bool"}


def _error_path(loc: tuple[Any, ...]) -> list[str]:
    """The user's path of a pydantic location: union tags (``space.x.float``) left out."""
    parts = [str(p) for p in loc]
    if len(parts) > 2 and parts[0] == "space" and parts[2] in _PARAM_TAGS:
        del parts[2]
    if len(parts) > 2 and parts[-3] == "choices" and parts[-1] in _CHOICE_TAGS:
        del parts[-1]
    return parts


def _message(err: Any) -> str:
    return message(err, _FRIENDLY)


def _format_errors(error: ValidationError, data: Any = None) -> list[str]:
    """One ``path: reason`` line per problem; a union's type errors at one path become one line.

    An unknown field close to a field of its model that the mapping leaves out
    (:func:`_misspelt_fields`) ends ``; did you mean 'choices'?``; where that field is
    required, its ``is required`` line and the unknown field's are one line, in the required
    field's place (``space.opt.choises: is not a known field; did you mean 'choices'?``)."""
    errors = error.errors()
    meant = _misspelt_fields(errors, data)
    missing = {tuple(e["loc"]) for e in errors if e["type"] == "missing"}
    merged = {(*loc[:-1], name): loc for loc, name in meant.items() if (*loc[:-1], name) in missing}
    found: dict[str, list[Any]] = {}
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden" and loc in meant:
            if loc in merged.values():
                continue  # said on the line of the field it stands for
            err = {"type": "reworded", "ctx": {"reason": f"is not a known field; did you mean {meant[loc]!r}?"}}
        elif err["type"] == "missing" and loc in merged:
            loc = merged[loc]
            err = {"type": "reworded", "ctx": {"reason": f"is not a known field; did you mean {meant[loc]!r}?"}}
        parts = _error_path(loc)
        if err["type"] == "field_problems":  # several of one validator (_field_errors): a line each
            for field, reason in err["ctx"]["problems"]:
                path = ".".join([*parts, *str(field).split(".")])
                found.setdefault(path, []).append({"type": "field_problem", "ctx": {"reason": reason}})
            continue
        if err["type"] == "field_problem":
            parts += str(err["ctx"]["field"]).split(".")
        found.setdefault(".".join(parts) or "(file)", []).append(err)
    lines = []
    for path, errs in found.items():
        if len(errs) > 1 and all(e["type"] in TYPE_NOUNS for e in errs):
            nouns = list(dict.fromkeys(TYPE_NOUNS[e["type"]] for e in errs))
            got = kind_of(errs[0].get("input"))
            lines.append(f"{path}: must be {', '.join(nouns[:-1])} or {nouns[-1]} (got {got})")
            continue
        for err in errs:
            message = err["ctx"]["reason"] if err["type"] in ("field_problem", "reworded") else _message(err)
            lines.append(f"{path}: {message}")
    return list(dict.fromkeys(lines))


def _misspelt_fields(errors: list[Any], data: Any) -> dict[tuple[Any, ...], str]:
    """The field each unknown field of ``errors`` was probably meant to be, by location: a
    field of the same model (:func:`_model_at`) that the mapping leaves out, close to the
    unknown one by :func:`did_you_mean`'s rule (``choises``: ``choices``, ``measure``:
    ``measures``, ``batch-size``: ``batch_size``)."""
    meant: dict[tuple[Any, ...], str] = {}
    for err in errors:
        loc = tuple(err["loc"])
        if err["type"] != "extra_forbidden" or not loc:
            continue
        model, given = _model_at(loc[:-1], data)
        if model is None:
            continue
        known = [f for f in model.model_fields if not (isinstance(given, dict) and f in given)]
        if (name := closest_name(str(loc[-1]), known)) is not None:
            meant[loc] = name
    return meant


def _model_at(loc: tuple[Any, ...], data: Any) -> tuple[type[BaseModel] | None, Any]:
    """The model of the mapping at pydantic's location ``loc`` below :class:`CampaignSpec`
    (a parameter's by its tag: ``space.opt.categorical``), and that mapping as ``data`` gives
    it; ``(None, None)`` where the location is no model's (a free-form section: ``evaluator.config``)."""
    kind: Any = CampaignSpec
    given = data
    for part in loc:
        kind = _bare(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if part not in kind.model_fields:
                return None, None
            kind, given = kind.model_fields[part].annotation, given.get(part) if isinstance(given, dict) else None
        elif get_origin(kind) is list and isinstance(part, int):
            kind = get_args(kind)[0]
            given = given[part] if isinstance(given, list) and 0 <= part < len(given) else None
        elif get_origin(kind) is dict:
            kind, given = get_args(kind)[1], given.get(part) if isinstance(given, dict) else None
        elif get_origin(kind) in (Union, UnionType):
            tagged = [m for m in map(_bare, get_args(kind)) if isinstance(m, type) and issubclass(m, BaseModel)
                      and "type" in m.model_fields and part in get_args(m.model_fields["type"].annotation)]
            if not tagged:
                return None, None
            kind = tagged[0]  # the tag is pydantic's step, not the file's: the mapping stays
        else:
            return None, None
    kind = _bare(kind)
    return (kind, given) if isinstance(kind, type) and issubclass(kind, BaseModel) else (None, None)


def _bare(kind: Any) -> Any:
    """A field's type without ``Annotated`` and without ``| None``."""
    while True:
        if get_origin(kind) is Annotated:
            kind = get_args(kind)[0]
        elif get_origin(kind) in (Union, UnionType) and len(members := [a for a in get_args(kind)
                                                                        if a is not type(None)]) == 1:
            kind = members[0]
        else:
            return kind


def value_problem(value: Any, what: str = "") -> str | None:
    """Why a scalar of the file cannot be stored as it is, or None: NaN and ±inf
    (``must be a finite number``), an integer outside 64 bits, a string with a NUL or a
    lone surrogate (which PostgreSQL's text and any UTF-8 encoder refuse)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{what}must be a finite number" + (f" (got {value})" if what else "")
    if isinstance(value, int) and not isinstance(value, bool) and not INT64[0] <= value <= INT64[1]:
        return f"{what}must be an integer between -2**63 and 2**63 - 1 (got one of {value.bit_length()} bits)"
    if isinstance(value, str) and (problem := text_problem(value)) is not None:
        return f"{what}must not contain {problem}"
    return None


def value_problems(data: Any) -> list[str]:
    """``path: …`` for every value anywhere in ``data`` that cannot be stored as it is
    (:func:`value_problem`: NaN or ±inf, an integer beyond 64 bits, a NUL or a lone
    surrogate in a string).

    Every section is walked, free-form ones included (``evaluator.config``,
    ``search.options``, ``search.initial_points``, categorical ``choices``), mapping keys
    too; a container reached twice (shared by aliases) is walked once.
    """
    problems: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, dict | list | tuple):
            if id(value) in seen:
                continue
            seen.add(id(value))
            items = value.items() if isinstance(value, dict) else enumerate(value)
            children = []
            for key, child in items:
                if (problem := value_problem(key, "a key ")) is not None:
                    problems.append(f"{path or '(file)'}: {problem}")
                    key = repr(key)
                children.append((f"{path}.{key}" if path else str(key), child))
            stack.extend(reversed(children))
        elif (problem := value_problem(value)) is not None:
            problems.append(f"{path or '(file)'}: {problem}")
    return problems


#: A refused condition's line, ``space.P.when.C: …``: group 1 is the parameter it conditions on.
_WHEN_LINE = re.compile(r"space\.[A-Za-z_]\w*\.when\.([A-Za-z_]\w*): ")


def _choices_first(data: dict[str, Any], problems: list[str]) -> list[str]:
    """``problems`` with the evaluator's own problems with the choices of each categorical
    parameter a refused ``when`` conditions on put before the first such ``when`` line
    (``space.sampler.choices: 'mirostat-v2' is not a known sampler …; did you mean
    'mirostat_v2'?``, then ``space.mirostat_tau.when.sampler: 'mirostat_v2' is not one of
    […]``): where the typo is in the choices, the condition is not the one to fix. The
    evaluator is asked (:func:`workers.registry.check`) only where such a line exists and its
    section can be read; it adds nothing otherwise."""
    parents = list(dict.fromkeys(m.group(1) for p in problems if (m := _WHEN_LINE.match(p))))
    evaluator, space = data.get("evaluator"), data.get("space")
    if not parents or not isinstance(evaluator, dict) or not isinstance(space, dict):
        return problems
    kind, config, target = evaluator.get("kind"), evaluator.get("config") or {}, evaluator.get("target")
    asked = {name: space[name] for name in parents if isinstance(space.get(name), dict)
             and space[name].get("type") == "categorical" and isinstance(space[name].get("choices"), list)}
    if not asked or not isinstance(kind, str) or not isinstance(config, dict) or not isinstance(target, str | None):
        return problems
    from workers import registry

    wanted = tuple(f"space.{name}.choices: " for name in asked)
    lines = [line for line in registry.check(kind, dict(config), target, asked)
             if line.startswith(wanted) and line not in problems]
    first = next(i for i, p in enumerate(problems) if _WHEN_LINE.match(p))
    return [*problems[:first], *lines, *problems[first:]]


def parse_spec(data: Any, source: str = "campaign") -> CampaignSpec:
    """Validate a mapping into a :class:`CampaignSpec`, or raise :class:`SpecError`.

    A value anywhere that cannot be stored as it is (NaN, ±inf, an integer beyond 64
    bits, a NUL or lone surrogate in a string: :func:`value_problems`) is a problem too,
    reported together with the fields' own.
    """
    if not isinstance(data, dict):
        raise SpecError([f"(file): expected a mapping at the top level, got {type(data).__name__}"], source)
    problems = value_problems(data)
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        # A value refused there is named once, not again by each type of a union it fails.
        bad = tuple(p.split(": ", 1)[0] + ": " for p in problems)
        problems += [p for p in _format_errors(exc, data) if not p.startswith(bad)]
        try:
            crossed = [p for p in _partial_cross_problems(data) if p not in problems and not p.startswith(bad)]
        except RecursionError:
            crossed = []
        raise SpecError(_choices_first(data, _in_section_order(problems, crossed)), source) from None
    except RecursionError:
        raise SpecError(["(file): nested too deeply"], source) from None
    if problems:
        raise SpecError(problems, source)
    problems = SearchSpace(spec.space).check_points(spec.search.initial_points, "search.initial_points")
    if problems:
        raise SpecError(problems, source)
    return spec


class _Refused(yaml.YAMLError):
    """A file the loader stops reading: a repeated key, too many aliases or nodes, a cycle."""


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expanded_size(root: yaml.Node) -> None:
    """Refuse a document of more than MAX_NODES nodes once every alias is written out,
    or one whose aliases refer to a node that contains them; composed nodes are counted
    once each (memoised), so an alias bomb is refused without being expanded."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_NODES:
                raise _Refused(f"with its aliases expanded the document has more than {MAX_NODES} nodes "
                               f"(line {node.start_mark.line + 1})")
        elif key in open_nodes:
            raise _Refused(f"line {node.start_mark.line + 1}: an alias refers to a node that contains it")
        elif key not in sizes:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


class SpecLoader(yaml.SafeLoader):
    """``yaml.safe_load``'s rules, and: no repeated mapping key, at most MAX_ALIASES
    aliases, at most MAX_NODES nodes composed or expanded (see :func:`_check_expanded_size`)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._nodes = 0
        self._checked: set[int] = set()

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(f"line {line}: more than {MAX_ALIASES} aliases (*name); write the values out")
        else:
            self._nodes += 1
            if self._nodes > MAX_NODES:
                raise _Refused(f"more than {MAX_NODES} nodes (line {self.peek_event().start_mark.line + 1})")
        return super().compose_node(parent, index)

    def compose_document(self) -> yaml.Node:
        node = super().compose_document()
        _check_expanded_size(node)
        return node

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Checked before merge keys (<<) are flattened in: an override by a merge is no repeat.
        if id(node) not in self._checked:
            self._checked.add(id(node))
            self._check_repeated_keys(node)
        super().flatten_mapping(node)

    def _check_repeated_keys(self, node: yaml.MappingNode) -> None:
        first: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in first:
                    raise _Refused(f"line {line}: duplicate key {key!r} (first given on line {first[key]})")
                first[key] = line
            except TypeError:  # an unhashable key: the constructor refuses it
                continue


#: YAML 1.2's floats that YAML 1.1 (PyYAML) reads as strings: an exponent without a dot in
#: the mantissa or without a sign (1e-5, 1e3, 1.0e5, .5e3); the other forms resolve as before.
YAML12_EXPONENT_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:float", YAML12_EXPONENT_FLOAT, list("-+0123456789."))
#: YAML 1.2's booleans (the core schema): ``on``, ``yes``, ``n`` and the like stay strings
YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
SpecLoader.yaml_implicit_resolvers = {
    first: [(tag, rule) for tag, rule in rules if tag != "tag:yaml.org,2002:bool"]
    for first, rules in SpecLoader.yaml_implicit_resolvers.items()}
SpecLoader.add_implicit_resolver("tag:yaml.org,2002:bool", YAML12_BOOL, list("tTfF"))


def _read_text(path: Path) -> str:
    """The file's text: at most MAX_FILE_BYTES, UTF-8 (a byte-order mark is allowed)."""
    source = str(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError([f"(file): cannot read the file: {exc.strerror or exc}"], source) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SpecError([f"(file): larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; a campaign file is at most "
                         f"{MAX_FILE_BYTES} bytes"], source)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SpecError([f"(file): not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                         "save the file as UTF-8"], source) from None


def load_yaml(text: str, source: str = "campaign") -> Any:
    """Parse YAML text with :class:`SpecLoader`, or raise :class:`SpecError`."""
    loader: SpecLoader | None = None
    try:
        loader = SpecLoader(text)  # the reader refuses unprintable characters already here
        return loader.get_single_data()
    except _Refused as exc:
        raise SpecError([f"(file): {exc}"], source) from None
    except yaml.YAMLError as exc:
        raise SpecError([yaml_problem(exc, text)], source) from None
    except RecursionError:
        raise SpecError(["(file): nested too deeply"], source) from None
    finally:
        if loader is not None:
            loader.dispose()


#: PyYAML's contexts that open what the problem found unclosed, and what each opened.
_UNCLOSED = {"while parsing a flow mapping": "flow mapping", "while parsing a flow sequence": "flow sequence",
             "while scanning a quoted scalar": "quoted string"}


def yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """PyYAML's error as one problem line at its place in ``text``, ``LINE:COLUMN: not valid
    YAML: problem (context)`` (:meth:`SpecError.lines` puts the file's name before it, as a
    compiler does), without PyYAML's ``in "<unicode string>"`` and its excerpt.

    A flow mapping, flow sequence or quoted string left open is placed where it opens
    (where the closing ``}``, ``]`` or quote belongs), and says where its end was looked for:
    ``2:12: not valid YAML: expected ',' or '}', but got ':' (the flow mapping opened at
    line 2, column 12 is not closed by line 3, column 6)``; another problem is placed where
    it was found, with the structure it was found in (``in the block mapping that starts at
    line 1, column 1``); a tab is said to be one. An unreadable character is placed where it is."""
    if isinstance(exc, yaml.reader.ReaderError):
        before = text[: exc.position]
        place = f"{before.count(chr(10)) + 1}:{exc.position - before.rfind(chr(10))}"
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        return f"{place}: not valid YAML: character #x{code:04x} is not allowed ({exc.reason})"
    if not isinstance(exc, yaml.MarkedYAMLError):
        return "(file): not valid YAML: " + " ".join(str(exc).replace('in "<unicode string>", ', "").split())

    def at(mark: Any) -> str:
        return f"line {mark.line + 1}, column {mark.column + 1}"

    problem, context = exc.problem or exc.context or "", exc.context if exc.problem else None
    opened, found = exc.context_mark, exc.problem_mark
    place = found or opened
    if context in _UNCLOSED and opened is not None and found is not None:
        place = opened
        problem += f" (the {_UNCLOSED[context]} opened at {at(opened)} is not closed by {at(found)})"
    elif problem.startswith("found character '\\t'"):
        problem = "a tab cannot start a token here; YAML indents with spaces only: replace the tab with spaces"
    elif context == "expected a single document in the stream":
        problem = "a second document ('---') starts here; a campaign file is one document"
    elif problem == "second occurrence" and context and opened is not None:
        problem = f"{context.removesuffix('; first occurrence')} (first at {at(opened)})"
    elif context and opened is not None:
        inside = re.fullmatch(r"while (?:parsing|scanning|constructing) an? (.+)", context)
        problem += (f" (in the {inside.group(1)} that starts at {at(opened)})" if inside else
                    f" ({context} at {at(opened)})")
    if exc.note:
        problem += f"; {exc.note}"
    where = f"{place.line + 1}:{place.column + 1}" if place is not None else "(file)"
    return f"{where}: not valid YAML: {' '.join(problem.split())}"


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a YAML (or JSON) campaign file (see the module's rules)."""
    path = Path(path)
    if path.is_dir():
        raise SpecError([f"(file): a directory, not a campaign file: {path}"], str(path))
    if not path.is_file():  # a pipe or a device exists, and may never end: named as what it is
        if not path.exists():
            raise SpecError([f"{_FILE}no such file: {path}"], str(path))
        raise SpecError([f"(file): not a regular file (a pipe or a device), not a campaign file: {path}"], str(path))
    data = load_yaml(_read_text(path), source=str(path))
    if data is None:  # nothing but blanks and comments: YAML's null, which had read "got NoneType"
        raise SpecError(["(file): the file is empty (nothing but blanks, comments or null); a campaign is a "
                         "mapping of name, evaluator, space, measures and search"], str(path))
    return parse_spec(data, source=str(path))


def spec_warnings(spec: CampaignSpec) -> list[str]:
    """What a valid spec asks that is probably not meant, as ``path: reason`` lines.

    - more initial points than the budget (only the first ``budget`` are evaluated);
    - an initial point given twice (evaluated twice);
    - a batch larger than ``max_in_flight`` or than the budget (it is cut to them);
    - more cells than the budget (coverage cannot pass budget / cells);
    - a measure of one bin on a grid (an axis that separates nothing);
    - a grid measure's range narrower than :data:`NARROWEST_GRID_RANGE`, where pyribs'
      epsilon moves 1 % of the points or more up a cell (every point at 10⁻⁶);
    - an option the algorithm takes but ignores (a sibling algorithm's:
      :meth:`~search.proposers.base.Proposer.option_warnings`);
    - ``cma-mae`` minimising without ``threshold_min``: its default, ``archive.qd_offset``
      (0), admits only a negative loss, so the threshold archive may never fill.
    """
    s = spec.search
    warnings: list[str] = []
    if len(s.initial_points) > s.budget:
        warnings.append(f"search.initial_points: {len(s.initial_points)} points but the budget is {s.budget}; "
                        f"only the first {s.budget} are evaluated")
    first: dict[str, int] = {}
    for i, point in enumerate(s.initial_points[: s.budget]):
        key = json.dumps(point, sort_keys=True, default=str)
        if key in first:
            warnings.append(f"search.initial_points.{i}: the same as search.initial_points.{first[key]}; "
                            "it is evaluated twice")
        first.setdefault(key, i)
    if s.batch_size > s.max_in_flight:
        warnings.append(f"search.batch_size: {s.batch_size} but max_in_flight is {s.max_in_flight}; "
                        f"at most {s.max_in_flight} are asked at a time")
    elif s.batch_size > s.budget:
        warnings.append(f"search.batch_size: {s.batch_size} is more than the budget ({s.budget})")
    cells = spec.archive.cells if spec.archive.type == "cvt" else math.prod(m.bins for m in spec.measures)
    if cells and cells > s.budget:
        warnings.append(f"archive: {cells} cells but the budget is {s.budget} evaluations; "
                        f"at most {s.budget / cells:.0%} of the map can be filled")
    if spec.archive.type == "grid":
        warnings += [f"measures.{i}.bins: 1 bin; {m.name} separates nothing on the map"
                     for i, m in enumerate(spec.measures) if m.bins == 1]
        warnings += [f"measures.{i}: a range of {m.high - m.low:.3g} is too narrow for the grid: its cells are found "
                     f"as pyribs finds them, ⌊(bins·(m − low) + {RIBS_EPSILON:g}) / (high − low)⌋, which moves "
                     f"{_moved(RIBS_EPSILON / (m.high - m.low))} up a cell; scale {m.name} (or its range) to a "
                     f"width of {NARROWEST_GRID_RANGE:g} or more"
                     for i, m in enumerate(spec.measures) if m.bins > 1 and m.high - m.low < NARROWEST_GRID_RANGE]
    if s.algorithm == "cma-mae" and spec.objective.direction == "minimize" and "threshold_min" not in s.options:
        floor = 0.0 - spec.archive.qd_offset  # 0.0 - 0.0 is 0.0, where -0.0 reads "-0"
        warnings.append(f"search.options.threshold_min: not set, so cma-mae admits only a fitness above "
                        f"archive.qd_offset ({spec.archive.qd_offset:g}): a minimised {spec.objective.name} "
                        f"below {floor:g}; set threshold_min to minus the largest {spec.objective.name} "
                        f"worth keeping")
    with contextlib.suppress(AtlasError):  # a plug-in that cannot be loaded: the run names it
        warnings += proposer_class(s.algorithm).option_warnings(s.options)
    return warnings


def _moved(shift: float) -> str:
    """Which points an epsilon of ``shift`` cells moves up a cell: that share, or all of them."""
    return "every point (or more than one cell)" if shift >= 1 else f"{shift:.0%} of the points"


def evaluator_problems(spec: CampaignSpec) -> list[str]:
    """The evaluator registry's problems with the spec's evaluator section
    (:func:`workers.registry.check`: its kind, config model, target, parameters and the
    measures' names)."""
    return evaluator_review(spec)[0]


def evaluator_review(spec: CampaignSpec) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of the spec's evaluator section, in one pass
    (:func:`workers.registry.review`): the warnings are what the evaluator takes but
    probably not as meant (a space parameter it does not read), none where there is a problem.
    The measures' names go with the space: an evaluator whose results never hold one refuses it."""
    from workers import registry

    space = spec.model_dump(mode="json")["space"]
    return registry.review(spec.evaluator.kind, dict(spec.evaluator.config), spec.evaluator.target, space,
                           [m.name for m in spec.measures])


def key_orders_of(data: dict[str, Any]) -> dict[str, list[str]]:
    """The mappings of a spec's JSON (``data``) whose order means something, by path, as their
    lists of keys: the space's parameters (the unit cube's axes, in order) and a portfolio's
    members (each member's seed and arm follow its place)."""
    orders = {"space": [str(name) for name in data["space"]]}
    search = data["search"]
    members = search["options"].get("members") if search["algorithm"] == "portfolio" else None
    if isinstance(members, dict):
        orders["search.options.members"] = [str(name) for name in members]
    return orders


def evaluator_config_filled(spec: CampaignSpec) -> dict[str, Any]:
    """``spec``'s ``evaluator.config`` with the defaults its evaluator takes written out: the
    config validated by the evaluator's ``config_model`` and dumped as JSON (a registered
    kind's class's model; ``kind: python``: :class:`~workers.evaluators.configs.PythonConfig`
    for a function target, a class target's own model). As written where there is no model
    (a function registered as a kind, a class that declares none), or where the evaluator
    cannot be loaded (``atlas submit``'s packages may be the cluster's only) or its model
    refuses the config: the run's own checks name those."""
    import inspect

    from workers import registry
    from workers.exit_guard import exit_refused

    evaluator, config = spec.evaluator, spec.evaluator.model_dump(mode="json")["config"]
    try:
        with exit_refused():
            if evaluator.kind == "python":
                model = getattr(registry.evaluator_class("python", config, evaluator.target), "config_model", None)
            else:
                found = registry.resolve(evaluator.kind)
                model = getattr(found, "config_model", None) if inspect.isclass(found) else None
            if model is None:
                return config
            filled = model.model_validate(config).model_dump(mode="json")
    except KeyboardInterrupt:
        raise
    except BaseException:  # user code (an import, a model) that fails, sys.exit included: the run's to name
        return config
    return filled if isinstance(filled, dict) else config
