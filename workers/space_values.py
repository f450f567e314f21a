"""Space values an evaluator's own rule refuses that are not numbers, or not the kind of number.

:func:`workers.contract.space_value_problems` reads a range's two ends and a categorical's
numeric choices. Two gaps were left, and a campaign with either was written and then
failed every evaluation that drew such a value:

- a categorical choice that is not a number (a string, a boolean, null): ``aepo:
  {choices: ["no", "yes"]}`` failed as ``aepo has an invalid value 'no' (expected bool)``;
- a float range for a parameter that takes an integer or a boolean: its ends may be whole
  numbers, but the values between them are not (``steps: {type: float, low: 1, high: 9}``
  draws 4.7).

Both are refused with the file here, in the same ``space.NAME…: reason`` lines;
:func:`rule_problems` adds them to :func:`~workers.contract.space_value_problems`' own.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

from workers.contract import space_value_problems

Kind = Literal["int", "bool"]


def rule_problems(evaluator: str, space: dict[str, dict[str, Any]], problem_of: Callable[[str, Any], str | None],
                  kinds: Mapping[str, Kind], skip: Collection[str] = ()) -> list[str]:
    """Every range end and choice of ``space`` that its parameter's rule refuses
    (``problem_of(name, value)``: the reason, or None), in one list: the numbers
    (:func:`~workers.contract.space_value_problems`, one line per parameter), the choices that
    are not numbers (:func:`choice_problems`, one line per choice; ``skip``: parameters whose
    choices are checked elsewhere), and a float range for a parameter ``kinds`` names
    (:func:`float_range_problems`: that line alone, not also its ends')."""
    mistyped = {name for name, param in space.items() if name in kinds and param.get("type") == "float"}
    return (space_value_problems(evaluator, {k: v for k, v in space.items() if k not in mistyped}, problem_of)
            + choice_problems(evaluator, space, problem_of, skip)
            + float_range_problems(evaluator, space, kinds))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def choice_problems(evaluator: str, space: Mapping[str, Mapping[str, Any]],
                    problem_of: Callable[[str, Any], str | None], skip: Collection[str] = ()) -> list[str]:
    """One line for each categorical choice that is not a number (numbers are
    :func:`~workers.contract.space_value_problems`') and that its parameter's rule refuses:
    ``problem_of(name, value)`` says how (None: the value keeps it, or the parameter has no
    rule). Parameters in ``skip`` are checked elsewhere (a choice among known names)."""
    problems = []
    for name, param in space.items():
        if name in skip or param.get("type") != "categorical":
            continue
        for choice in param.get("choices") or []:
            if _number(choice):
                continue
            if (problem := problem_of(name, choice)) is not None:
                problems.append(f"space.{name}.choices: {choice!r} is refused by the {evaluator} evaluator ({problem})")
    return problems


def float_range_problems(evaluator: str, space: Mapping[str, Mapping[str, Any]],
                         kinds: Mapping[str, Kind]) -> list[str]:
    """One line for each ``type: float`` parameter whose name ``kinds`` says takes an
    integer or a boolean: the values a float range draws between its ends are neither."""
    problems = []
    for name, param in space.items():
        kind = kinds.get(name)
        if kind is None or param.get("type") != "float":
            continue
        if kind == "int":
            problems.append(f"space.{name}: {name} takes an integer, and a float range draws values between whole "
                            f"numbers, which the {evaluator} evaluator refuses (use type: int)")
        else:
            problems.append(f"space.{name}: {name} takes a boolean, and a float range draws values other than 0 and "
                            f"1, which the {evaluator} evaluator refuses (use type: categorical, choices: "
                            "[false, true])")
    return problems
