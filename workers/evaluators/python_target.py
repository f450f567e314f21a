"""``kind: python``: the user's own function or class, named by ``target``.

The target is imported with :mod:`importlib` (``package.module:attribute`` on the
PYTHONPATH): a function ``evaluate(params, ctx) -> dict``, a batched function
(``config: {batched: true}``) or a class with ``setup`` and ``evaluate_batch``. See
:func:`workers.registry.build`, which builds it; this module documents the kind.

A function target's config is :class:`~workers.evaluators.configs.PythonConfig`
(``batched``, a boolean; nothing else). A class target gets the config in ``setup``; it
may declare its own ``config_model`` and ``check_space``, which
:func:`workers.registry.check` then applies.
"""

from workers.evaluators.configs import PythonConfig
from workers.registry import BatchedFunctionEvaluator, FunctionEvaluator

PythonEvaluator = FunctionEvaluator

__all__ = ["BatchedFunctionEvaluator", "FunctionEvaluator", "PythonConfig", "PythonEvaluator"]
