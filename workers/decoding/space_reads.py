"""Where a decoding campaign's space searches a parameter that its samplers never read.

A configuration reads only its sampler's own parameters
(:data:`~workers.decoding.samplers.PARAMETER_READERS`): ``top_h`` under ``sampler: top_p``
is drawn, stored with each evaluation, and does nothing. For each such parameter of the
space, the samplers it is searched under are

- its ``when``'s ``sampler`` values, where it has one;
- else the choices of the space's ``sampler`` (with the default sampler too, where that
  parameter is itself conditional and so may be inactive);
- else the default sampler: ``evaluator.config.defaults.sampler``, ``none`` where unset.

The rule:

- none of them reads it: it has no effect in **any** evaluation of the campaign, which is
  refused (:func:`never_read_problems`): ``space.top_h: read only by sampler top_h, but
  searched only under sampler top_p (its when) …``;
- its ``when`` names samplers that read it and samplers that do not: a warning
  (:func:`partly_read_warnings`), the evaluations under the others draw it for nothing;
- an unconditioned parameter read by some of the ``sampler`` choices is taken silently
  (``order`` beside ``none`` and ``top_p``: it shapes the ``top_p`` rows).

A sampler-specific parameter given a fixed value in ``evaluator.config.defaults`` (and not
searched by the space, whose value would stand in its place) is used by every evaluation,
under the samplers the campaign runs: the choices of the space's ``sampler`` (with the
default sampler too, where that parameter is conditional), else the default sampler. Where
none of them reads it, it too is refused (:func:`never_read_problems`):
``evaluator.config.defaults.top_h: read only by sampler top_h, but the space has no sampler
parameter and every evaluation uses sampler top_p …``. Where some of them read it, it is
taken silently, as an unconditioned parameter of the space is (``defaults: {top_p: 0.95}``
beside the choices ``top_p`` and ``top_k`` shapes the ``top_p`` rows).

``ead`` reads a truncation's parameter where its step sampler (``ead_sampler``: the space's
choices, or the default) is that truncation. Where the check cannot know (a ``sampler`` that
is not categorical, a sampler that is not a known name, which the choice check refuses), the
parameter is taken as read: only sure cases are refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from workers.decoding.samplers import PARAMETER_READERS, SAMPLERS, TRUNCATIONS

Space = Mapping[str, Mapping[str, Any]]


def never_read_problems(space: Space, defaults: Mapping[str, Any]) -> list[str]:
    """One ``space.NAME: …`` line for each sampler-specific parameter that no sampler it is
    searched under reads (it has no effect in any evaluation), saying how to fix it; then one
    ``evaluator.config.defaults.NAME: …`` line for each sampler-specific default that no
    sampler the campaign runs reads."""
    problems = []
    for name, param in space.items():
        searched = _searched(name, param, space, defaults)
        if searched is None:
            continue
        values, where = searched
        if any(_reads(v, name, space, defaults) for v in values):
            continue
        readers = _readers(name, "ead" in values)
        first = PARAMETER_READERS[name][0]
        if where == "when":
            problems.append(f"space.{name}: {readers}, but searched only under {_samplers(values)} (its when): it "
                            f"has no effect in any evaluation; condition it on a sampler that reads it "
                            f"(when: {{sampler: {first}}}) or remove it")
        elif where == "choices":
            problems.append(f"space.{name}: {readers}, but searched under {_samplers(values)} (space.sampler's "
                            f"choices): it has no effect in any evaluation; add {first} to space.sampler.choices "
                            "or remove it")
        else:
            source = _sampler_source(defaults)
            problems.append(f"space.{name}: {readers}, but the space has no sampler parameter and every evaluation "
                            f"uses {_samplers(values)} ({source}): it is never read; set evaluator.config.defaults: "
                            f"{{sampler: {first}}} or add a sampler parameter to the space")
    return problems + _never_read_defaults(space, defaults)


def _sampler_source(defaults: Mapping[str, Any]) -> str:
    """Where every evaluation's sampler comes from, when the space has no ``sampler``."""
    if "sampler" in defaults:
        return "evaluator.config.defaults.sampler"
    return "the default: evaluator.config.defaults sets no sampler"


def _never_read_defaults(space: Space, defaults: Mapping[str, Any]) -> list[str]:
    """One ``evaluator.config.defaults.NAME: …`` line for each sampler-specific default that
    no sampler the campaign runs reads (a name the space searches is left to its own line)."""
    problems = []
    for name in defaults:
        if name in space or (searched := _searched(name, {}, space, defaults)) is None:
            continue
        values, where = searched
        if any(_reads(v, name, space, defaults) for v in values):
            continue
        key, readers = f"evaluator.config.defaults.{name}", _readers(name, "ead" in values)
        first = PARAMETER_READERS[name][0]
        if where == "choices":
            problems.append(f"{key}: {readers}, but the evaluations use only {_samplers(values)} (space.sampler's "
                            f"choices): it has no effect in any evaluation; add {first} to space.sampler.choices or "
                            "remove it from evaluator.config.defaults")
        else:
            source = _sampler_source(defaults)
            problems.append(f"{key}: {readers}, but the space has no sampler parameter and every evaluation uses "
                            f"{_samplers(values)} ({source}): it is never read; remove it, or set "
                            f"evaluator.config.defaults: {{sampler: {first}}}")
    return problems


def partly_read_warnings(space: Space, defaults: Mapping[str, Any]) -> list[str]:
    """One ``space.NAME: …`` line for each sampler-specific parameter whose ``when`` names
    samplers that read it and samplers that do not (it is drawn for nothing under those)."""
    warnings = []
    for name, param in space.items():
        searched = _searched(name, param, space, defaults)
        if searched is None or searched[1] != "when":
            continue
        values = searched[0]
        unread = [v for v in values if not _reads(v, name, space, defaults)]
        if unread and len(unread) < len(values):
            warnings.append(f"space.{name}: {_readers(name, 'ead' in unread)}, but also searched under "
                            f"{_samplers(unread)} (its when), where it has no effect")
    return warnings


def _searched(name: str, param: Mapping[str, Any], space: Space,
              defaults: Mapping[str, Any]) -> tuple[list[Any], str] | None:
    """The samplers ``name`` is searched under and where they come from (``when``,
    ``choices`` or ``default``); None where it is not sampler-specific or that is unknown."""
    if name not in PARAMETER_READERS:
        return None
    when = param.get("when") or {}
    if "sampler" in when:
        value = when["sampler"]
        return (list(value) if isinstance(value, list) else [value]), "when"
    default = defaults.get("sampler", "none")
    sampler = space.get("sampler")
    if sampler is None:
        return [default], "default"
    if sampler.get("type") != "categorical":
        return None
    return [*sampler.get("choices", []), *([default] if sampler.get("when") else [])], "choices"


def _reads(sampler: Any, name: str, space: Space, defaults: Mapping[str, Any]) -> bool:
    """Whether a configuration with ``sampler`` (a name, or a list of truncations) may read
    ``name``; True where that cannot be known."""
    if isinstance(sampler, list | tuple):
        return not sampler or any(_reads(s, name, space, defaults) for s in sampler)
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        return True
    readers = PARAMETER_READERS[name]
    if sampler in readers:
        return True
    return sampler == "ead" and any(step in readers for step in _ead_steps(space, defaults))


def _ead_steps(space: Space, defaults: Mapping[str, Any]) -> list[Any]:
    """The samplers an ``ead`` configuration may step with: the space's ``ead_sampler``
    choices (with the default where that parameter is conditional), else the default."""
    default = defaults.get("ead_sampler", "none")
    param = space.get("ead_sampler")
    if param is None:
        return [default]
    if param.get("type") != "categorical":
        return list(TRUNCATIONS)
    return [*param.get("choices", []), *([default] if param.get("when") else [])]


def _readers(name: str, with_ead: bool) -> str:
    """``read only by sampler top_h`` (``samplers …`` for several; the EAD clause where it matters)."""
    readers = PARAMETER_READERS[name]
    ead = (" (or ead, where its ead_sampler is one of them)" if len(readers) > 1 else
           f" (or ead, where its ead_sampler is {readers[0]})")
    return f"read only by {_samplers(readers)}" + (ead if with_ead and set(readers) & set(TRUNCATIONS) else "")


def _samplers(values: Sequence[Any]) -> str:
    """``sampler top_p`` or ``samplers top_k, mirostat`` (a list of truncations as ``[top_k, top_p]``)."""
    shown = [f"[{', '.join(map(str, v))}]" if isinstance(v, list | tuple) else str(v) for v in values]
    return f"sampler{'s' if len(shown) > 1 else ''} {', '.join(shown)}"
