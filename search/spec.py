"""The campaign file: pydantic models of DESIGN.md's YAML, and its loader.

A bad file is refused before anything runs, with each field's path and the reason
(``search.budget: must be > 0``); :class:`SpecError` carries those lines.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from entropy_atlas.errors import AtlasError

NAME_PATTERN = r"^[a-z0-9._-]+$"

ALGORITHMS = (
    "map-elites",
    "cma-me",
    "cma-mae",
    "random",
    "bo",
    "mo-bo",
    "qd-bo",
    "optuna-tpe",
    "optuna-cmaes",
    "optuna-nsga2",
    "optuna-gp",
    "llm",
    "llm-mutate",
    "portfolio",
)


class SpecError(AtlasError, ValueError):
    """A campaign file that cannot be run; ``problems`` holds ``path: reason`` lines."""

    def __init__(self, problems: list[str], source: str = "campaign") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source} is not valid:\n" + "\n".join(f"  {p}" for p in problems))

    def lines(self) -> list[str]:
        """One line per problem, each naming the file: ``bad.yaml: search.budget: must be > 0``."""
        return [f"{self.source}: {' '.join(p.split())}" for p in self.problems]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Condition = dict[str, Any]


class _ParamBase(_Strict):
    when: Condition | None = Field(
        default=None,
        description="Active only when every named parameter equals the value (or one of the list).",
    )


class FloatParam(_ParamBase):
    """A real number in [low, high], on a log scale when ``log`` (then low > 0).

    ``size`` > 1 makes a vector of that many independent coordinates (a list value).
    """

    type: Literal["float"]
    low: float
    high: float
    log: bool = False
    size: int = Field(default=1, ge=1, le=10_000)

    @model_validator(mode="after")
    def _bounds(self) -> FloatParam:
        _check_bounds(self.low, self.high, self.log)
        return self


class IntParam(_ParamBase):
    """An integer in [low, high] inclusive, on a log scale when ``log`` (then low > 0)."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        _check_bounds(self.low, self.high, self.log, allow_equal=True)
        return self


class CategoricalParam(_ParamBase):
    """One of ``choices`` (strings, numbers or booleans)."""

    type: Literal["categorical"]
    choices: list[str | int | float | bool] = Field(min_length=1)

    @field_validator("choices")
    @classmethod
    def _unique(cls, choices: list[Any]) -> list[Any]:
        if len({json.dumps(c) for c in choices}) != len(choices):
            raise ValueError("choices must be distinct")
        return choices


Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def _check_bounds(low: float, high: float, log: bool, allow_equal: bool = False) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite")
    if high < low or (high == low and not allow_equal):
        raise ValueError(f"high ({high}) must be > low ({low})")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0 (got {low})")


class EvaluatorSpec(_Strict):
    kind: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    target: str | None = Field(default=None, description="module:function, for kind python")

    @model_validator(mode="after")
    def _target(self) -> EvaluatorSpec:
        if self.kind == "python":
            if not self.target or not re.fullmatch(r"[\w.]+:[\w.]+", self.target):
                raise ValueError("kind python needs target: 'package.module:function'")
        elif self.target is not None:
            raise ValueError(f"target is only for kind python (kind is {self.kind!r})")
        return self


class ObjectiveSpec(_Strict):
    name: str = Field(default="objective", min_length=1)
    direction: Literal["maximize", "minimize"] = "maximize"


class MeasureSpec(_Strict):
    name: str = Field(min_length=1)
    low: float
    high: float
    bins: int = Field(default=10, ge=1, le=100_000)

    @model_validator(mode="after")
    def _bounds(self) -> MeasureSpec:
        _check_bounds(self.low, self.high, log=False)
        return self


class ArchiveSpec(_Strict):
    type: Literal["grid", "cvt"] = "grid"
    cells: int | None = Field(default=None, ge=2, le=1_000_000, description="CVT cells")
    samples: int = Field(default=25_000, ge=100, description="CVT k-means samples")
    qd_offset: float = Field(default=0.0, description="subtracted from each elite before summing")

    @model_validator(mode="after")
    def _cells(self) -> ArchiveSpec:
        if self.type == "cvt" and self.cells is None:
            raise ValueError("a cvt archive needs cells")
        if self.type == "grid" and self.cells is not None:
            raise ValueError("cells is for cvt archives; a grid's cells come from the measures' bins")
        return self


class SearchSpec(_Strict):
    algorithm: str = "map-elites"
    options: dict[str, Any] = Field(default_factory=dict)
    budget: int = Field(gt=0)
    batch_size: int = Field(default=8, gt=0)
    max_in_flight: int = Field(default=16, gt=0)
    seed: int = Field(default=0, ge=0)
    initial_points: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("algorithm")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {value!r}; one of {', '.join(ALGORITHMS)}")
        return value


class ResourcesSpec(_Strict):
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
    timeout_s: float = Field(default=900, gt=0)
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


class CampaignSpec(_Strict):
    """A whole campaign: what to evaluate, over which space, mapped by which measures."""

    name: str = Field(pattern=NAME_PATTERN, max_length=200)
    evaluator: EvaluatorSpec
    space: dict[str, Param] = Field(min_length=1)
    objective: ObjectiveSpec = Field(default_factory=ObjectiveSpec)
    measures: list[MeasureSpec] = Field(min_length=1)
    archive: ArchiveSpec = Field(default_factory=ArchiveSpec)
    search: SearchSpec
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)

    @model_validator(mode="after")
    def _cross_checks(self) -> CampaignSpec:
        names = [m.name for m in self.measures]
        if len(set(names)) != len(names):
            raise ValueError("measures: names must be distinct")
        seen: dict[str, Any] = {}
        for pname, param in self.space.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", pname):
                raise ValueError(f"space.{pname}: a parameter name is an identifier")
            for cname, cvalue in (param.when or {}).items():
                if cname not in seen:
                    raise ValueError(
                        f"space.{pname}.when: {cname!r} must be a parameter defined before it"
                    )
                _check_condition_value(pname, cname, cvalue, seen[cname])
            seen[pname] = param
        if self.search.max_in_flight < 1:
            raise ValueError("search.max_in_flight: must be >= 1")
        return self

    def spec_hash(self) -> str:
        """A stable hash of everything but the budget (which a resume may raise)."""
        data = self.model_dump(mode="json")
        data["search"].pop("budget")
        blob = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_overrides(self, name: str | None = None, budget: int | None = None) -> CampaignSpec:
        data = self.model_dump(mode="json")
        if name is not None:
            data["name"] = name
        if budget is not None:
            data["search"]["budget"] = budget
        return parse_spec(data, source="campaign (with overrides)")


def _check_condition_value(pname: str, cname: str, value: Any, parent: Any) -> None:
    values = value if isinstance(value, list) else [value]
    if isinstance(parent, CategoricalParam):
        for v in values:
            if v not in parent.choices:
                raise ValueError(
                    f"space.{pname}.when.{cname}: {v!r} is not one of {parent.choices}"
                )


_FRIENDLY = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_pattern_mismatch": "must match {pattern}",
    "too_short": "must not be empty",
}


def _format_errors(error: ValidationError) -> list[str]:
    lines = []
    for err in error.errors():
        loc = [str(p) for p in err["loc"]]
        # Drop pydantic's union-tag segments ("float", "int", ...) from the path.
        loc = [p for p in loc if p not in {"float", "int", "categorical"} or p == loc[0]]
        template = _FRIENDLY.get(err["type"])
        ctx = err.get("ctx") or {}
        if template:
            try:
                message = template.format(**ctx)
            except (KeyError, IndexError):
                message = err["msg"]
        else:
            message = err["msg"].removeprefix("Value error, ")
        lines.append(f"{'.'.join(loc) or '(file)'}: {message}")
    return lines


def parse_spec(data: Any, source: str = "campaign") -> CampaignSpec:
    """Validate a mapping into a :class:`CampaignSpec`, or raise :class:`SpecError`."""
    if not isinstance(data, dict):
        raise SpecError([f"(file): expected a mapping at the top level, got {type(data).__name__}"], source)
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_errors(exc), source) from None
    # Imported here: the space module builds on the spec's parameter models.
    from search.space import SearchSpace

    problems = SearchSpace(spec.space).check_points(spec.search.initial_points, "search.initial_points")
    if problems:
        raise SpecError(problems, source)
    return spec


def load_spec(path: str | Path) -> CampaignSpec:
    """Read and validate a YAML (or JSON) campaign file."""
    path = Path(path)
    if not path.is_file():
        raise SpecError([f"(file): no such file: {path}"], str(path))
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise SpecError([f"(file): not valid YAML: {exc}"], str(path)) from None
    return parse_spec(data, source=str(path))
