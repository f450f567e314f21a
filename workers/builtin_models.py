"""The names of the built-in models, checked with the campaign file (torch-free).

A ``model: builtin:NAME`` whose NAME is not one of :data:`BUILTIN_NAMES` had been found only
at evaluator setup, after the start-up, as ``evaluator setup failed: ValueError: unknown
built-in model …``. The list is fixed, so :func:`builtin_model_problem` refuses it when the
campaign is checked, naming the ones there are and the one probably meant.

:data:`BUILTIN_NAMES` repeats ``workers.decoding.arith.BUILTIN_MODELS`` so that this module
imports neither torch nor the model code; the tests hold the two equal.
"""

from __future__ import annotations

from entropy_atlas.names import closest_name

PREFIX = "builtin:"
#: ``workers.decoding.arith.BUILTIN_MODELS``' names, in its order.
BUILTIN_NAMES: tuple[str, ...] = ("arith-tiny", "arith-nano", "arith-tiny-rl")


def builtin_model_problem(spec: str) -> str | None:
    """Why ``spec`` is a ``builtin:`` model that does not exist, or None (a built-in one, or
    not a ``builtin:`` spec at all: a local directory is looked for where the model loads).
    The reason lists the built-in models and, where one is close (difflib, as a misspelt
    parameter's), the one probably meant:
    ``unknown built-in model 'arith-tny-rl' (built-in: …; did you mean builtin:arith-tiny-rl?)``."""
    if not spec.startswith(PREFIX):
        return None
    name = spec[len(PREFIX):]
    if name in BUILTIN_NAMES:
        return None
    known = ", ".join(PREFIX + n for n in BUILTIN_NAMES)
    meant = closest_name(name, BUILTIN_NAMES)
    hint = f"; did you mean {PREFIX}{meant}?" if meant else ""
    return f"unknown built-in model {name!r} (built-in: {known}{hint})"
