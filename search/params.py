"""The search space's parameter models: float, int and categorical, with their rules.

Both the campaign spec (:mod:`search.spec`, which validates ``space:``) and the unit-cube
space (:mod:`search.space`, which encodes and decodes) build on these models; neither
imports the other for them.

Rules:

- a float or int parameter has finite ``low`` and ``high`` with ``high > low`` (an int
  may have ``high == low``), and a log scale (``log: true``) needs ``low > 0``;
- a float's ``size`` > 1 makes a vector of that many independent coordinates;
- a categorical parameter has at least one choice, all distinct (as values: ``0`` and
  ``false``, ``1`` and ``1.0`` are one value);
- ``when`` makes a parameter conditional: it is active only when every named parameter
  equals the value (or one of the list). A condition on a categorical parent must name
  its choices (:func:`condition_problem`).
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CategoricalParam", "Condition", "FloatParam", "IntParam", "Param", "StrictModel",
           "check_bounds", "condition_problem"]

Condition = dict[str, Any]


class StrictModel(BaseModel):
    """Unknown fields refused; numbers strict (no booleans, no strings), and finite."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def check_bounds(low: float, high: float, log: bool, allow_equal: bool = False) -> None:
    """Raise ``ValueError`` unless ``low`` and ``high`` are finite, ``high > low`` (or
    equal when ``allow_equal``), their difference a finite float, and ``low > 0`` on a log
    scale."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("low and high must be finite")
    if high < low or (high == low and not allow_equal):
        raise ValueError(f"high ({high}) must be > low ({low})")
    if not math.isfinite(float(high) - float(low)):  # every point is read as low + u (high - low)
        raise ValueError(f"high - low must be a finite number: {high} - {low} passes the largest float")
    if log and low <= 0:
        raise ValueError(f"log scale needs low > 0 (got {low})")


class _ParamBase(StrictModel):
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
        check_bounds(self.low, self.high, self.log)
        return self


class IntParam(_ParamBase):
    """An integer in [low, high] inclusive, on a log scale when ``log`` (then low > 0)."""

    type: Literal["int"]
    low: int
    high: int
    log: bool = False

    @model_validator(mode="after")
    def _bounds(self) -> IntParam:
        check_bounds(self.low, self.high, self.log, allow_equal=True)
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
        for i, a in enumerate(choices):  # 0 and false, 1 and 1.0: distinct in the file, one value to Python
            for b in choices[i + 1:]:
                if a == b:
                    raise ValueError(f"choices must be distinct: {a!r} and {b!r} are equal values (keep one, "
                                     f"or write them as strings)")
        return choices


#: A parameter as the spec reads it: the ``type`` field picks the model.
Param = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]


def condition_problem(value: Any, parent: FloatParam | IntParam | CategoricalParam) -> str | None:
    """Why ``when: {parent: value}`` can never hold, or None when it can.

    ``value`` is one value or a non-empty list of them; on a categorical parent each must
    be one of its choices (a boolean only a boolean choice), on an int parent an integer
    in its range. A float parent (or a vector) takes a value exactly with probability
    zero: no condition on it ever holds.
    """
    values = value if isinstance(value, list) else [value]
    if not values:
        return "an empty list: the parameter would never be active"
    if isinstance(parent, CategoricalParam):
        for v in values:
            if not any(same_value(v, c) for c in parent.choices):
                return f"{v!r} is not one of {parent.choices}"
    elif isinstance(parent, IntParam):
        for v in values:
            if not _is_integer(v) or not parent.low <= v <= parent.high:
                return f"{v!r} is not an integer in [{parent.low}, {parent.high}]"
    else:
        return "a float parameter is continuous and never equals one value: condition on an int or a categorical"
    return None


def _is_integer(value: Any) -> bool:
    """An int or an integral float, never a boolean."""
    return not isinstance(value, bool) and (isinstance(value, int) or (isinstance(value, float) and value.is_integer()))


def same_value(a: Any, b: Any) -> bool:
    """``a == b`` where a boolean equals only a boolean (Python's ``True == 1`` would let
    ``when: {y: true}`` match the choice ``1``)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b
