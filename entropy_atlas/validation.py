"""Pydantic's errors as the one-line reasons every room prints (``must be >= 2``).

:func:`message` turns one error of a :class:`pydantic.ValidationError` into the reason
of a ``path: reason`` line: a friendly template by error type (:data:`FRIENDLY`), or
``must be an integer (got a boolean)`` for a type error (:data:`TYPE_NOUNS`), else
pydantic's own text without its ``Value error,`` prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FRIENDLY = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "string_pattern_mismatch": "must match {pattern}",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must not be empty",
    "finite_number": "must be a finite number",
    "literal_error": "must be {expected}",
    "union_tag_not_found": "must name its {discriminator}",
    "union_tag_invalid": "{discriminator} must be one of {expected_tags}, not {tag!r}",
}
#: Type errors, and the noun of what was expected (joined when a union refuses a value).
TYPE_NOUNS = {
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "string_type": "a string",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "list_type": "a list",
    "tuple_type": "a list",
}


def a_type(value: Any) -> str:
    """``value``'s type name with its article, as a message reads it: ``an int``, ``a str``
    (``an`` before a vowel's letter)."""
    name = type(value).__name__
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def kind_of(value: Any) -> str:
    """How a refused value reads in a message: ``a boolean``, ``a string``, ``null``, ``2.5``."""
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    names = {str: "a string", list: "a list", tuple: "a tuple", dict: "a mapping"}
    return names.get(type(value), a_type(value))


def message(err: Mapping[str, Any], friendly: Mapping[str, str] = FRIENDLY) -> str:
    """The reason of one pydantic error (see the module's rule)."""
    if err["type"] in TYPE_NOUNS:
        return f"must be {TYPE_NOUNS[err['type']]} (got {kind_of(err.get('input'))})"
    template = friendly.get(err["type"])
    if template:
        try:
            text = template.format(**(err.get("ctx") or {}))
        except (KeyError, IndexError):
            return str(err["msg"])
        return f"{text} (got {err.get('input')!r})" if err["type"] == "literal_error" else text
    return str(err["msg"]).removeprefix("Value error, ")
