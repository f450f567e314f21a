"""The search space and the one unit-cube encoding that every proposer uses.

Each parameter owns ``size`` coordinates of the cube [0, 1]^d:

- float, linear:  u = (v - low) / (high - low)
- float, log:     u = (ln v - ln low) / (ln high - ln low)
- int, linear:    n = high - low + 1 values; v = low + min(floor(u n), n - 1), u(v) = (v - low + 1/2) / n
- int, log:       v = round(exp(a + u (b - a))) with a = ln(low - 1/2), b = ln(high + 1/2)
- categorical:    n choices; index = min(floor(u n), n - 1), u(index) = (index + 1/2) / n

A conditional parameter (``when``) keeps its coordinates; when its condition does not
hold it is left out of the decoded params, and it encodes as u = 1/2.

The parameter models themselves are :mod:`search.params`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from entropy_atlas.names import closest_name
from search.params import CategoricalParam, FloatParam, IntParam, Param


@dataclasses.dataclass(frozen=True)
class Slot:
    """Where a parameter sits in the cube."""

    name: str
    param: Param
    start: int
    size: int


class SearchSpace:
    """Encode params to the unit cube and decode them back, conditions included."""

    def __init__(self, params: Mapping[str, Param]) -> None:
        self.params = dict(params)
        slots, start = [], 0
        for name, param in self.params.items():
            size = param.size if isinstance(param, FloatParam) else 1
            slots.append(Slot(name, param, start, size))
            start += size
        self.slots: list[Slot] = slots
        self.dim: int = start

    @property
    def names(self) -> list[str]:
        return list(self.params)

    def is_active(self, name: str, values: Mapping[str, Any]) -> bool:
        """A parameter is active when every condition's parent is active and matches."""
        when = self.params[name].when
        if not when:
            return True
        for parent, wanted in when.items():
            if parent not in values:
                return False
            allowed = wanted if isinstance(wanted, list) else [wanted]
            if values[parent] not in allowed:
                return False
        return True

    # -- decoding -------------------------------------------------------------
    def decode(self, x: np.ndarray) -> dict[str, Any]:
        """The params of one cube point (inactive parameters left out)."""
        x = np.asarray(x, dtype=float)
        if x.shape != (self.dim,):
            raise ValueError(f"expected a point of dimension {self.dim}, got shape {x.shape}")
        return self.decode_many(x[None, :])[0]

    def decode_many(self, xs: np.ndarray) -> list[dict[str, Any]]:
        """The params of each row of ``xs`` (cube points, clipped into [0, 1]), as
        :meth:`decode` of each: one array operation per float parameter for all rows."""
        xs = np.clip(np.asarray(xs, dtype=float), 0.0, 1.0)
        if xs.ndim != 2 or xs.shape[1] != self.dim:
            raise ValueError(f"expected points of dimension {self.dim}, got shape {xs.shape}")
        columns = [(slot.name, _decode_column(slot.param, xs[:, slot.start : slot.start + slot.size]))
                   for slot in self.slots]
        if not any(slot.param.when for slot in self.slots):
            return [dict(zip(self.params, row, strict=True)) for row in zip(*(c for _, c in columns), strict=True)]
        out = []
        for i in range(len(xs)):
            values: dict[str, Any] = {}
            for name, column in columns:
                if self.is_active(name, values):
                    values[name] = column[i]
            out.append(values)
        return out

    # -- encoding -------------------------------------------------------------
    def encode(self, params: Mapping[str, Any]) -> np.ndarray:
        """The cube point of valid params (see :meth:`coerce`)."""
        x = np.full(self.dim, 0.5)
        for slot in self.slots:
            if slot.name in params:
                x[slot.start : slot.start + slot.size] = _encode_one(slot.param, params[slot.name])
        return x

    # -- validation -----------------------------------------------------------
    def coerce(self, point: Mapping[str, Any], repair: bool = False) -> tuple[dict[str, Any], list[str]]:
        """Check a params mapping against the space.

        Returns ``(params, problems)``. With ``repair``, values out of bounds are clipped,
        numbers cast to the parameter's type, inactive parameters dropped and missing
        active ones filled with the centre of their range; ``problems`` then lists only
        what could not be repaired. Without ``repair`` every deviation is a problem.
        """
        return self._checked(point, repair, lambda _, param, value: _check_value(param, value, repair), fill=repair)

    def _checked(self, point: Any, repair: bool, value_of: Callable[[str, Param, Any], tuple[Any, str | None]],
                 fill: bool) -> tuple[dict[str, Any], list[str]]:
        """The slot walk of :meth:`coerce` and :meth:`repair_proposed`: each active slot's
        value by ``value_of(name, param, value)``; with ``repair``, unknown and inactive
        keys dropped, else problems; a missing active one filled with its range's centre
        where ``fill``, else a problem."""
        problems: list[str] = []
        if not isinstance(point, Mapping):
            return {}, [f"expected a mapping of parameter values, got {type(point).__name__}"]
        for key in point:
            if key not in self.params:
                problems.append(f"{key}: unknown parameter (known: {', '.join(self.params)}){self._meant(key)}")
        if problems and not repair:
            return {}, problems
        problems = []
        values: dict[str, Any] = {}
        for slot in self.slots:
            active = self.is_active(slot.name, values)
            present = slot.name in point
            if not active:
                if present and not repair:
                    problems.append(f"{slot.name}: not active here (condition {slot.param.when})")
                continue
            if not present:
                if fill:
                    values[slot.name] = _decode_one(slot.param, np.full(slot.size, 0.5))
                else:
                    problems.append(f"{slot.name}: missing")
                continue
            value, problem = value_of(slot.name, slot.param, point[slot.name])
            if problem:
                problems.append(f"{slot.name}: {problem}")
            else:
                values[slot.name] = value
        return values, problems

    def repair_proposed(self, point: Any, clipped: list[str] | None = None) -> tuple[dict[str, Any], list[str]]:
        """Check params a proposer gave (``Proposal.params``) against the space: ``(params,
        problems)``, the params repaired where ``problems`` is empty. ``clipped``, where
        given, gets a line for each value repaired that lay outside its bounds (``x[0]: 99 >
        high 5``; :func:`outside_note`): the proposer's scheduler warns of them.

        Repaired, since the proposer's meaning is plain: a key that names no parameter, or
        one whose condition does not hold, is dropped; a number outside its bounds is
        clipped to them; a non-integer for an ``int`` is rounded; a NumPy scalar or array is
        read as the Python number or list. Everything else is a problem, never guessed at:
        not a mapping, an active parameter missing, a value that is not a number (a string,
        a boolean, None) or not finite, a categorical value that is not exactly one of the
        choices, a vector of the wrong length."""
        def value_of(name: str, param: Param, value: Any) -> tuple[Any, str | None]:
            value = _plain(value)
            repaired = _repair_value(param, value)
            if clipped is not None and repaired[1] is None and (note := outside_note(name, param, value)):
                clipped.append(note)
            return repaired

        return self._checked(point, True, value_of, fill=False)

    def complete(self, point: Any) -> tuple[dict[str, Any], list[str]]:
        """An initial point (``search.initial_points``) as the params it stands for:
        ``(params, problems)``. Its values are checked as :meth:`coerce` checks them (no
        repair: a value out of bounds, an unknown key or an inactive parameter given is a
        problem); an active parameter it leaves out takes the centre of its range (the
        unit cube's 1/2): a baseline names only what it fixes (DESIGN.md's
        ``{temperature: 1.0, sampler: top_p, top_p: 0.9}`` beside a ``layers`` parameter)."""
        return self._checked(point, False, lambda _, param, value: _check_value(param, value, False), fill=True)

    def _meant(self, key: Any) -> str:
        """``; did you mean NAME?`` where a parameter of the space is close to ``key``
        (:func:`entropy_atlas.names.closest_name`, as a misspelt space name is told): either may
        be the misspelt one, an initial point's ``entropy_coef`` beside the space's ``entropy_coeff``."""
        meant = closest_name(str(key), self.params)
        return f"; did you mean {meant}?" if meant is not None else ""

    def check_points(self, points: list[Any], path: str) -> list[str]:
        """Problems of a list of initial points (:meth:`complete`), each prefixed by
        ``path.i`` (as the file's other fields are named)."""
        problems = []
        for i, point in enumerate(points):
            _, errs = self.complete(point)
            problems += [f"{path}.{i}.{e}" for e in errs]
        return problems

    def describe(self) -> list[dict[str, Any]]:
        """A plain description of every parameter (for prompts, docs and the dashboard)."""
        return [{"name": s.name, **s.param.model_dump(exclude_none=True)} for s in self.slots]


def _decode_column(param: Param, u: np.ndarray) -> list[Any]:
    """The values of one parameter for each row of ``u`` (rows × the parameter's slots)."""
    if isinstance(param, FloatParam):
        if param.log:
            lo, hi = math.log(param.low), math.log(param.high)
            vals = np.exp(lo + u * (hi - lo))
            vals = np.where(u <= 0, param.low, np.where(u >= 1, param.high, vals))  # exp(ln 0.1) is 0.1 + 2e-17
        else:
            vals = param.low + u * (param.high - param.low)
        vals = np.clip(vals, param.low, param.high)
        return vals.tolist() if param.size > 1 else vals[:, 0].tolist()
    return [_decode_one(param, row) for row in u]


def _decode_one(param: Param, u: np.ndarray) -> Any:
    if isinstance(param, FloatParam):
        return _decode_column(param, np.asarray(u, dtype=float)[None, :])[0]
    if isinstance(param, IntParam):
        ui = float(u[0])
        if param.log:
            a, b = math.log(param.low - 0.5), math.log(param.high + 0.5)
            v = round(math.exp(a + ui * (b - a)))
        else:
            n = param.high - param.low + 1
            v = param.low + min(math.floor(ui * n), n - 1)
        return int(min(max(v, param.low), param.high))
    n = len(param.choices)
    return param.choices[min(math.floor(float(u[0]) * n), n - 1)]


def _encode_one(param: Param, value: Any) -> np.ndarray:
    if isinstance(param, FloatParam):
        vals = np.atleast_1d(np.asarray(value, dtype=float))
        if param.log:
            lo, hi = math.log(param.low), math.log(param.high)
            return np.clip((np.log(vals) - lo) / (hi - lo), 0, 1)
        return np.clip((vals - param.low) / (param.high - param.low), 0, 1)
    if isinstance(param, IntParam):
        if param.log:
            a, b = math.log(param.low - 0.5), math.log(param.high + 0.5)
            return np.array([(math.log(value) - a) / (b - a)])
        n = param.high - param.low + 1
        return np.array([(value - param.low + 0.5) / n])
    return np.array([(param.choices.index(value) + 0.5) / len(param.choices)])


def _check_value(param: Param, value: Any, repair: bool) -> tuple[Any, str | None]:
    if isinstance(param, CategoricalParam):
        if value in param.choices and type(value) is type(param.choices[param.choices.index(value)]):
            return value, None
        if repair:
            for choice in param.choices:
                if str(choice).lower() == str(value).lower():
                    return choice, None
        return None, f"{value!r} is not one of {param.choices}"
    if isinstance(param, FloatParam) and param.size > 1:
        if not isinstance(value, list | tuple) or len(value) != param.size:
            return None, f"expected a list of {param.size} numbers"
        checked = [_check_number(param, v, repair) for v in value]
        bad = [p for _, p in checked if p]
        return ([v for v, _ in checked], None) if not bad else (None, bad[0])
    return _check_number(param, value, repair)


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python one, a NumPy array as a list; anything else as it is."""
    return value.tolist() if isinstance(value, np.generic | np.ndarray) else value


def _repair_value(param: Param, value: Any) -> tuple[Any, str | None]:
    """A proposer's value for ``param``, repaired as :meth:`SearchSpace.repair_proposed` allows."""
    if isinstance(param, CategoricalParam):
        return _check_value(param, value, repair=False)
    if isinstance(param, FloatParam) and param.size > 1:
        if not isinstance(value, list | tuple) or len(value) != param.size:
            return None, f"expected a list of {param.size} numbers"
        checked = [_repair_number(param, v) for v in value]
        bad = [p for _, p in checked if p]
        return ([v for v, _ in checked], None) if not bad else (None, bad[0])
    return _repair_number(param, value)


def outside_note(name: str, param: Param, value: Any) -> str | None:
    """``name: 99 > high 5`` (``x[1]: …`` for coordinate 1 of a vector) where the number
    ``value`` (a vector's first such coordinate) lies outside ``param``'s bounds, an ``int``'s
    once rounded; None where it lies within them, or is no number (a categorical's value)."""
    if isinstance(param, CategoricalParam):
        return None
    values = value if isinstance(value, list | tuple) else [value]
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        at = f"{name}[{i}]" if isinstance(value, list | tuple) else name
        kept = round(v) if isinstance(param, IntParam) and math.isfinite(v) else v
        if kept > param.high:
            return f"{at}: {_number(v)} > high {_number(param.high)}"
        if kept < param.low:
            return f"{at}: {_number(v)} < low {_number(param.low)}"
    return None


def _number(value: float) -> str:
    """A number as a note shows it: ``99``, ``0.25``, ``1e+300`` (12 significant digits)."""
    return f"{value:.12g}"


def _repair_number(param: FloatParam | IntParam, value: Any) -> tuple[Any, str | None]:
    """A number clipped into ``param``'s bounds (rounded for an ``int``); a string is not a number."""
    if isinstance(value, str):
        return None, f"{short_repr(value)} is not a number"
    return _check_number(param, value, repair=True)


def _check_number(param: FloatParam | IntParam, value: Any, repair: bool) -> tuple[Any, str | None]:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None, f"{value!r} is not a number"
    if isinstance(value, str):
        if not repair:
            return None, f"{value!r} is not a number"
        try:
            value = float(value)
        except ValueError:
            return None, f"{value!r} is not a number"
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an integer past a float's range
        finite = False
    if not finite:
        return None, f"{short_repr(value)} is not finite"
    if isinstance(param, IntParam) and not float(value).is_integer():
        if not repair:
            return None, f"{value!r} is not an integer"
        value = round(value)
    if value < param.low or value > param.high:
        if not repair:
            return None, f"{value!r} is outside [{param.low}, {param.high}]"
        value = min(max(value, param.low), param.high)
    return (int(value) if isinstance(param, IntParam) else float(value)), None


def short_repr(value: Any, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters (a 400-digit integer from a model's reply;
    a plug-in's object whose ``repr`` raises is named by its type)."""
    if isinstance(value, int) and value.bit_length() >= 1000:  # repr would pass Python's digit limit
        return f"<an integer of {value.bit_length()} bits>"
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}…"
