"""The evaluator registry: entry-point group ``entropy_atlas.evaluators``.

An entry point names a class (the class form, with ``setup``) or a function (the
function form). ``kind: python`` imports ``target: package.module:attribute`` from the
user's PYTHONPATH with :mod:`importlib`; nothing is evaluated as code.
"""

from __future__ import annotations

import importlib
import inspect
from importlib.metadata import entry_points
from typing import Any

from entropy_atlas.errors import AtlasError
from workers.contract import EvalContext, Evaluator

GROUP = "entropy_atlas.evaluators"


class EvaluatorNotFound(AtlasError, LookupError):
    """No evaluator is registered under that kind, or the target cannot be imported."""


def available() -> list[str]:
    """The registered evaluator kinds."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def import_target(target: str) -> Any:
    """Import ``package.module:attribute`` (attribute may be dotted)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise EvaluatorNotFound(f"target {target!r} is not 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise EvaluatorNotFound(f"cannot import {module_name!r} for target {target!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EvaluatorNotFound(f"{module_name!r} has no attribute {attr!r} (target {target!r})")
        obj = getattr(obj, part)
    return obj


def resolve(kind: str) -> Any:
    """The class or function registered as ``kind``."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == kind]
    if not matches:
        known = ", ".join(available()) or "none"
        raise EvaluatorNotFound(f"no evaluator named {kind!r} (registered: {known})")
    try:
        return matches[0].load()
    except ImportError as exc:
        raise EvaluatorNotFound(f"evaluator {kind!r} cannot be loaded: {exc}") from None


class FunctionEvaluator(Evaluator):
    """The function form, ``fn(params, ctx) -> result``, as a class-form evaluator."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        return self.fn(params, ctx)


class BatchedFunctionEvaluator(Evaluator):
    """A batched function, ``fn(list_of_params, ctx) -> list_of_results``."""

    max_batch_size = 64

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> list[dict[str, Any]]:
        return list(self.fn(params, ctx))


def _instantiate(obj: Any, batched: bool) -> Evaluator:
    if inspect.isclass(obj):
        instance = obj()
        if not hasattr(instance, "evaluate_batch") and not hasattr(instance, "evaluate"):
            raise EvaluatorNotFound(f"{obj.__name__} has neither evaluate nor evaluate_batch")
        return instance
    if callable(obj):
        return BatchedFunctionEvaluator(obj) if batched else FunctionEvaluator(obj)
    raise EvaluatorNotFound(f"{obj!r} is neither a class nor a function")


def build(kind: str, config: dict[str, Any] | None = None, target: str | None = None) -> Evaluator:
    """A new, not yet set-up evaluator for a campaign's ``evaluator`` section."""
    config = config or {}
    if kind == "python":
        if not target:
            raise EvaluatorNotFound("kind python needs a target 'package.module:function'")
        return _instantiate(import_target(target), batched=bool(config.get("batched", False)))
    return _instantiate(resolve(kind), batched=False)
