"""The evaluator registry: entry-point group ``entropy_atlas.evaluators``.

An entry point names a class (the class form, with ``setup``) or a function (the
function form). ``kind: python`` imports ``target: package.module:attribute`` from the
user's PYTHONPATH with :mod:`importlib`; nothing is evaluated as code.

Checking a campaign before it runs (:func:`check`), an evaluator class may declare:

- ``config_model``: a pydantic model of its ``config`` mapping (unknown keys refused,
  strict numbers; see :mod:`workers.evaluators.configs`, whose base a third-party
  evaluator may reuse). Its problems come back as ``evaluator.config.<field>: reason``.
- ``check_space(config, space) -> list[str]``, a classmethod: the problems of the
  campaign's search space for this evaluator (``space.sampler.choices: 'foo' is not a
  known sampler (known: ...)``). ``config`` is the plain config mapping, already accepted
  by ``config_model``; ``space`` maps each parameter's name to its plain definition
  (``spec.model_dump(mode="json")["space"]``). It is called only when the config is valid.
- ``check_measures(config, measures) -> list[str]``, a classmethod: the problems of the
  campaign's measures (their names, in the spec's order) for this evaluator: a name its
  results never hold (``measures.2.name: 'm2' is not a measure the benchmark evaluator
  returns …``), which would fail every evaluation as a missing measure. The built-in
  evaluators' measure names are fixed (:func:`workers.contract.measure_problems`). Called
  with :meth:`check_space`, only when the config is valid; the problems of both come together.
- ``space_warnings(config, space) -> list[str]``, a classmethod: what the space asks that
  the evaluator takes but probably not as meant, as ``path: reason`` lines
  (``space.layers: not a decoding parameter; ...``). The run goes on; ``atlas run`` and
  ``atlas resume`` print each as a ``warning:`` line (:func:`warnings`). Called with the
  same arguments, only when :func:`check` finds no problem.
- ``units(config) -> Units``, a classmethod: the units of the objective and the measures
  its results hold (:class:`workers.contract.Units`), the labels of a campaign whose spec
  gives them no ``unit`` (:func:`units`). Not asked of ``kind: python``.

Checking imports the evaluator's module (for ``decoding``, ``activation`` and
``entropy_rl`` that means torch); the config models themselves are torch-free.

``kind: python`` is implemented here: the user's own function or class, named by
``target``. The target is imported with :mod:`importlib` (``package.module:attribute``
on the PYTHONPATH) by :func:`build`: a function ``evaluate(params, ctx) -> dict``
(wrapped in :class:`FunctionEvaluator`), a batched function (``config: {batched: true}``,
wrapped in :class:`BatchedFunctionEvaluator`) or a class with ``setup`` and
``evaluate_batch``. A function target's config is
:class:`~workers.evaluators.configs.PythonConfig` (``batched``, a boolean; nothing
else). A class target gets the config in ``setup``; it may declare its own
``config_model`` and ``check_space``, which :func:`check` then applies (with its ``max_batch_size``, which
must be an integer >= 1). A driver that only needs the class (a Ray scheduler: its
``max_batch_size``) takes :func:`evaluator_class`, which runs no ``__init__``; instances
are built (:func:`build`) where the evaluations run. The ``python``
entry point names :class:`FunctionEvaluator`, so the kind is listed by :func:`available`.
"""

from __future__ import annotations

import importlib
import inspect
import numbers
import re
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from entropy_atlas.errors import AtlasError
from entropy_atlas.names import did_you_mean
from entropy_atlas.validation import a_type
from workers.contract import EvalContext, Evaluator, Units
from workers.evaluators.configs import PythonConfig, config_problems, validate_config
from workers.exit_guard import exit_refused

GROUP = "entropy_atlas.evaluators"


class EvaluatorNotFound(AtlasError, LookupError):
    """No evaluator is registered under that kind, or the target cannot be imported."""


def available() -> list[str]:
    """The registered evaluator kinds."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


#: The form of a ``kind: python`` target: a module's dotted name, ``:``, an attribute's.
TARGET_FORM = re.compile(r"[\w.]+:[\w.]+")


def target_problem(target: str) -> str | None:
    """Why ``target`` is not of the form ``package.module:function`` (:data:`TARGET_FORM`), with
    the fix where it can be read (``'myeval.evaluate' has no ':'; write 'myeval:evaluate'``,
    the last dot as the colon); None where it is of that form."""
    if TARGET_FORM.fullmatch(target):
        return None
    if ":" not in target:
        module, dot, attr = target.rpartition(".")
        if dot and module and attr and re.fullmatch(r"[\w.]+", target):
            return f"{target!r} has no ':'; write '{module}:{attr}'"
        return f"{target!r} has no ':'; write 'package.module:function' (a module on PYTHONPATH, then what it defines)"
    return f"{target!r} is not 'package.module:function' (the module on PYTHONPATH, ':', then what it defines)"


def import_target(target: str) -> Any:
    """Import ``package.module:attribute`` (attribute may be dotted). An attribute the object
    lacks is named with the closest one it has (``; did you mean 'evaluate'?``)."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise EvaluatorNotFound(target_problem(target) or f"target {target!r} is not 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise EvaluatorNotFound(f"cannot import {module_name!r} for target {target!r}: {exc}"
                                f"{_working_directory_hint(module_name, exc)}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise EvaluatorNotFound(f"{module_name!r} has no attribute {attr!r} (target {target!r})"
                                    f"{did_you_mean(part, names)}")
        obj = getattr(obj, part)
    return obj


def _working_directory_hint(module_name: str, exc: ImportError) -> str:
    """What to do when the module that is missing is the target's own package (or a
    parent of it) and sits in the working directory, which is not on the import path:
    the ``atlas`` command, unlike ``python -m``, does not import from there. Empty
    otherwise (a missing dependency, a module that is nowhere)."""
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    if not missing or not (module_name == missing or module_name.startswith(missing + ".")):
        return ""
    cwd = Path.cwd().resolve()
    top = missing.split(".")[0]
    if not ((cwd / top).is_dir() or (cwd / f"{top}.py").is_file()):
        return ""
    on_path = {Path(p or ".").resolve() for p in sys.path}
    if cwd in on_path:
        return ""
    return (f" ({top} is in the working directory, which is not on Python's import path: "
            f"run with PYTHONPATH=. or install it)")


def resolve(kind: str) -> Any:
    """The class or function registered as ``kind``; a kind that is not registered is
    :class:`EvaluatorNotFound` naming those that are (and, where it is written as a
    ``module:attribute`` target, saying that one goes in ``target`` under ``kind: python``;
    else the registered one it is close to: ``; did you mean 'benchmark'?``)."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == kind]
    if not matches:
        known = ", ".join(available()) or "none"
        target = (f"; {kind!r} reads as a target: write `kind: python` and `target: {kind}`"
                  if ":" in kind and "python" in available() else did_you_mean(kind, available()))
        raise EvaluatorNotFound(f"no evaluator named {kind!r} (registered: {known}){target}")
    try:
        return matches[0].load()
    except ImportError as exc:
        raise EvaluatorNotFound(f"evaluator {kind!r} cannot be loaded: {exc}") from None


class FunctionEvaluator(Evaluator):
    """The function form, ``fn(params, ctx) -> result``, as a class-form evaluator."""

    config_model = PythonConfig

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        return self.fn(params, ctx)


class BatchedFunctionEvaluator(Evaluator):
    """A batched function, ``fn(list_of_params, ctx) -> results``: what it returns is read
    as a class's ``evaluate_batch``'s is (:func:`workers.runner.batch_results`: any
    iterable of one result per params)."""

    max_batch_size = 64
    config_model = PythonConfig

    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> Any:
        return self.fn(params, ctx)


def _class_of(obj: Any, batched: bool) -> type:
    """The evaluator class ``obj`` (a target or a registered entry) stands for: a class as
    :func:`with_defaults` makes it, a function's wrapper (:class:`FunctionEvaluator`, or
    :class:`BatchedFunctionEvaluator` when ``batched``)."""
    if inspect.isclass(obj):
        if not hasattr(obj, "evaluate_batch") and not hasattr(obj, "evaluate"):
            raise EvaluatorNotFound(f"{obj.__name__} has neither evaluate nor evaluate_batch")
        return with_defaults(obj)
    if callable(obj):
        return BatchedFunctionEvaluator if batched else FunctionEvaluator
    raise EvaluatorNotFound(f"{obj!r} is neither a class nor a function")


def with_defaults(cls: type) -> type:
    """A class target as an :class:`Evaluator`: itself where it is one; else a subclass of
    it and :class:`Evaluator`, so that what it leaves out (``setup``, ``teardown``,
    ``evaluate_batch``, ``max_batch_size``) has the base's defaults and what it defines
    is its own."""
    if issubclass(cls, Evaluator):
        return cls
    try:
        return type(cls.__name__, (cls, Evaluator), {"__module__": cls.__module__, "__doc__": cls.__doc__})
    except TypeError:  # a layout or metaclass that cannot be combined: used as it is
        return cls


def _target(kind: str, config: dict[str, Any] | None, target: str | None) -> tuple[Any, bool]:
    """What a campaign's ``evaluator`` section names (imported, nothing instantiated) and
    whether a function target is batched."""
    if kind != "python":
        return resolve(kind), False
    if not target:
        raise EvaluatorNotFound("kind python needs a target 'package.module:function'")
    obj = import_target(target)
    return obj, (False if inspect.isclass(obj) else validate_config(PythonConfig, config or {}).batched)


def evaluator_class(kind: str, config: dict[str, Any] | None = None, target: str | None = None) -> type:
    """The class :func:`build` would instantiate, not instantiated: what a driver needs to
    know of an evaluator (``max_batch_size``) without running its ``__init__``, which
    belongs in the worker that evaluates (a model loaded there, not in the scheduler)."""
    obj, batched = _target(kind, config, target)
    return _class_of(obj, batched)


def build(kind: str, config: dict[str, Any] | None = None, target: str | None = None) -> Evaluator:
    """A new, not yet set-up evaluator for a campaign's ``evaluator`` section (a class's
    ``__init__`` runs here: call it where the evaluations run)."""
    obj, batched = _target(kind, config, target)
    cls = _class_of(obj, batched)
    return cls() if inspect.isclass(obj) else cls(obj)


def batch_size_problem(cls: Any) -> str | None:
    """Why ``cls.max_batch_size`` cannot be used (None: it can): it must be a positive
    integer, not a bool (a missing one is the base's 1)."""
    value = getattr(cls, "max_batch_size", 1)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1:
        return None
    kind = "" if isinstance(value, numbers.Real) and not isinstance(value, bool) else f" ({a_type(value)})"
    return f"{getattr(cls, '__name__', cls)!s}.max_batch_size must be an integer >= 1, got {value!r:.80}{kind}"


def batch_size(evaluator: Any) -> int:
    """An evaluator's (or its class's) ``max_batch_size`` as an int; :class:`ValueError`
    where :func:`batch_size_problem` names a problem (:func:`check` refuses such a
    campaign before anything is written)."""
    problem = batch_size_problem(evaluator)
    if problem is not None:
        raise ValueError(problem)
    return int(getattr(evaluator, "max_batch_size", 1))


def check(kind: str, config: dict[str, Any], target: str | None, space: dict[str, dict[str, Any]],
          measures: Sequence[str] = ()) -> list[str]:
    """The problems of a campaign's evaluator section, as ``path: reason`` lines (none: it
    can be built): :func:`review`'s first list."""
    return review(kind, config, target, space, measures)[0]


def warnings(kind: str, config: dict[str, Any], target: str | None, space: dict[str, dict[str, Any]],
             measures: Sequence[str] = ()) -> list[str]:
    """What a campaign's evaluator section asks that is legal but probably not meant, as
    ``path: reason`` lines: :func:`review`'s second list (none where :func:`check` names a problem)."""
    return review(kind, config, target, space, measures)[1]


def review(kind: str, config: dict[str, Any], target: str | None,
           space: dict[str, dict[str, Any]], measures: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """``(problems, warnings)`` of a campaign's evaluator section, each as ``path: reason`` lines.

    Problems, in order: ``kind`` must be registered (``evaluator.kind: no evaluator named ...``);
    a ``python`` target must import (``evaluator.target: cannot import ...``; a module
    that raises or calls ``sys.exit`` while it imports is a problem line too) and be a
    function that takes ``(params, ctx)`` or an evaluator class whose own ``setup``,
    ``evaluate``, ``evaluate_batch`` and ``teardown`` take what the contract passes them
    (``(config, ctx)``, ``(params, ctx)``, ``(list_of_params, ctx)``, nothing; so must a
    registered kind's class); the class's ``max_batch_size`` must be an integer
    >= 1 (:func:`batch_size_problem`) and ``config`` must pass its ``config_model`` when
    it has one; then the class's ``check_space(config, space)`` and
    ``check_measures(config, measures)`` (the campaign's measure names), each when it has
    one, name what the space and the measures ask that the evaluator cannot do (both
    together). Nothing raises but a
    Ctrl-C (``KeyboardInterrupt``): an error while importing or checking is a problem
    line too, and so is ``os._exit`` called meanwhile (:mod:`workers.exit_guard`: it
    had ended the command without a word).

    Warnings: where there is no problem, the class's ``space_warnings(config, space)``,
    when it has one (one that raises is a warning line saying so: the campaign is valid).
    """
    with exit_refused():
        return _review(kind, config, target, space, measures)


def _review(kind: str, config: dict[str, Any], target: str | None,
            space: dict[str, dict[str, Any]], measures: Sequence[str]) -> tuple[list[str], list[str]]:
    if kind == "python":
        evaluator, problems = _python_evaluator(target)
    else:
        evaluator, problems = _registered(kind)
    if evaluator is None:
        return problems, []
    where = "evaluator.target" if kind == "python" else "evaluator.kind"
    problems = [f"{where}: {p}" for p in [batch_size_problem(evaluator)] if p is not None]
    model = getattr(evaluator, "config_model", None)
    if model is not None:
        found = config_problems(model, config)
        problems += _function_config_rule(found) if evaluator is FunctionEvaluator else found
    if problems:
        return problems, []
    problems, failure = _hook_lines(evaluator, "check_space", config, space)
    measured, measures_failure = _hook_lines(evaluator, "check_measures", config, list(measures))
    failures = [f for f in (failure, measures_failure) if f is not None]
    if failures or problems or measured:
        return failures or problems + measured, []
    warned, failure = _hook_lines(evaluator, "space_warnings", config, space)
    return [], (warned if failure is None else [failure])


def units(kind: str, config: dict[str, Any]) -> Units:
    """The units a registered evaluator's results hold under ``config`` (its class's
    ``units(config)``): a campaign's labels where its spec gives no ``unit``
    (:meth:`archive.records.CampaignSettings.from_spec`). None (``Units()``) for
    ``kind: python`` (the user's code: only the spec says), for an evaluator that declares
    none, and where asking fails or gives no :class:`Units` (a label never stops a run)."""
    with exit_refused():
        evaluator = None if kind == "python" else _registered(kind)[0]
    hook = getattr(evaluator, "units", None)
    if hook is None:
        return Units()
    try:
        with exit_refused():
            declared = hook(dict(config))
    except KeyboardInterrupt:
        raise
    except BaseException:  # a third-party hook must not take the run down
        return Units()
    return declared if isinstance(declared, Units) else Units()


def _hook_lines(evaluator: Any, name: str, config: dict[str, Any], what: Any) -> tuple[list[str], str | None]:
    """The lines of the class's classmethod ``name(config, what)`` (``what``: the space, or
    the measures' names; none where it has no such hook), or the line saying it raised."""
    hook = getattr(evaluator, name, None)
    if hook is None:
        return [], None
    try:
        return [str(line) for line in hook(dict(config), what)], None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a third-party check must not take the loader down (sys.exit included)
        return [], f"evaluator: {evaluator.__name__}.{name} failed: {_raised(exc)}"


def _raised(exc: BaseException) -> str:
    """``Name: message`` of an exception from user code (``sys.exit(5)`` read as such), on
    one line, even where its ``__str__`` raises."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r:.200})"
    try:
        message = str(exc)
    except Exception:
        message = "<its message could not be read>"
    lines = message.strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:500]}" if lines else type(exc).__name__


def _registered(kind: str) -> tuple[Any, list[str]]:
    """The class registered as ``kind`` (None for a function), or the problem line."""
    try:
        obj = resolve(kind)
    except EvaluatorNotFound as exc:
        return None, [f"evaluator.kind: {exc}"]
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the package raised (or called sys.exit) while importing
        return None, [f"evaluator.kind: evaluator {kind!r} cannot be loaded: {_raised(exc)}"]
    if not inspect.isclass(obj):
        return None, []
    problems = [f"evaluator.kind: {problem}" for problem in _methods_problems(obj)]
    return (None, problems) if problems else (obj, [])


def _function_config_rule(lines: list[str]) -> list[str]:
    """A function target's config problems with the rule an unknown key breaks: a function
    evaluator's config takes only :class:`~workers.evaluators.configs.PythonConfig`'s fields
    (``batched``), and settings reach the user's code only through a class target, whose
    ``setup(config, ctx)`` gets the config (DESIGN.md's evaluator contract). A key close to
    a field (``batch``) is named as its misspelling instead."""
    fields = list(PythonConfig.model_fields)
    ruled = []
    for line in lines:
        unknown = re.fullmatch(r"evaluator\.config\.(.+): is not a known field", line)
        if unknown is not None:
            line += (did_you_mean(unknown.group(1), fields) or
                     f"; a function target's config takes only {', '.join(fields)} (true: it is called with a list "
                     "of params); to give your code settings, make target a class: its setup(config, ctx) gets "
                     "the config")
        ruled.append(line)
    return ruled


def _where_raised(exc: BaseException, module_name: str) -> str:
    """`` (brokenmod.py, line 3)``: the innermost frame of ``exc``'s traceback that runs the
    target's own code (its module's, or a module of its top package), its file relative to
    the working directory where it lies below it; empty where there is none (a
    ``SyntaxError`` names its own place)."""
    top = module_name.split(".")[0]
    where = ""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_globals.get("__name__")
        if isinstance(name, str) and (name == top or name.startswith(top + ".")):
            where = f" ({_shown_path(tb.tb_frame.f_code.co_filename)}, line {tb.tb_lineno})"
        tb = tb.tb_next
    return where


def _shown_path(filename: str) -> str:
    """``filename`` relative to the working directory where it lies below it, else as it is."""
    try:
        return str(Path(filename).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return filename


def _python_evaluator(target: str | None) -> tuple[Any, list[str]]:
    """The class whose config rules apply to a ``python`` target, or the problem line."""
    if not target:
        return None, ["evaluator.target: kind python needs a target 'package.module:function'"]
    try:
        obj = import_target(target)
    except EvaluatorNotFound as exc:
        return None, [f"evaluator.target: {exc}"]
    except KeyboardInterrupt:  # a Ctrl-C while it imports stops the command
        raise
    except BaseException as exc:  # the module itself raised (or called sys.exit: argparse at import) while importing
        verb = "" if isinstance(exc, SystemExit) else "raised "
        where = _where_raised(exc, target.partition(":")[0])
        return None, [f"evaluator.target: importing {target!r} {verb}{_raised(exc)}{where}"]
    if inspect.isclass(obj):
        if not (hasattr(obj, "evaluate_batch") or hasattr(obj, "evaluate")):
            return None, [f"evaluator.target: {obj.__name__} has neither evaluate nor evaluate_batch"]
        problems = [f"evaluator.target: {problem}" for problem in _methods_problems(obj)]
        return (None, problems) if problems else (obj, [])
    if not callable(obj):
        return None, [f"evaluator.target: {target!r} is neither a class nor a function"]
    problem = _call_problem(obj, target)
    return (None, [f"evaluator.target: {problem}"]) if problem else (FunctionEvaluator, [])


def _call_problem(fn: Any, target: str) -> str | None:
    """Why a function target cannot be called as an evaluator is, ``fn(params, ctx)`` (its
    batched form too: ``fn(list_of_params, ctx)``), or None. Where it cannot take two
    positional arguments every evaluation had failed with the same ``TypeError``; a
    signature Python cannot read (some built-ins) is let be."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(None, None)
    except TypeError:
        return (f"{target!r} takes {_parameters(signature)}, but an evaluator function is called as "
                f"fn(params, ctx): add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)")
    return None


#: How the contract calls each method of a class evaluator (after ``self``), and what to do
#: where one cannot be called so: checked before the run (:func:`_methods_problems`).
_CALLED_AS: dict[str, tuple[tuple[str, ...], str]] = {
    "setup": (("config", "ctx"), "add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)"),
    "evaluate": (("params", "ctx"), "add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)"),
    "evaluate_batch": (("list_of_params", "ctx"), "add the ctx parameter (ctx.seed, ctx.device, ctx.workdir)"),
    "teardown": ((), "it gets no argument: give its other parameters defaults"),
}


def _methods_problems(cls: type) -> list[str]:
    """Why the class's own ``setup``, ``evaluate``, ``evaluate_batch`` or ``teardown``
    cannot be called as the contract calls it (:data:`_CALLED_AS`): one line each, in that
    order. Caught before the run: an ``evaluate`` without ``ctx`` had failed every
    evaluation, a ``setup`` without it had failed the run at its first worker."""
    return [problem for method in _CALLED_AS if (problem := _method_problem(cls, method)) is not None]


def _method_problem(cls: type, method: str) -> str | None:
    """Why the class's own ``method`` cannot be called as :data:`_CALLED_AS` says
    (``self.evaluate(params, ctx)``, ``self.setup(config, ctx)``, ``self.teardown()``), or
    None (one it does not define, inherits from :class:`Evaluator`, or whose signature
    Python cannot read, is let be)."""
    fn = getattr(cls, method, None)
    if fn is None or fn is getattr(Evaluator, method, None) or isinstance(inspect.getattr_static(cls, method),
                                                                          staticmethod | classmethod):
        return None
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    arguments, fix = _CALLED_AS[method]
    try:
        signature.bind(None, *(None for _ in arguments))
    except TypeError:
        return (f"{cls.__name__}.{method} takes {_parameters(signature)}, but it is called as "
                f"{method}({', '.join(('self', *arguments))}): {fix}")
    return None


def _parameters(signature: inspect.Signature) -> str:
    """A signature's parameters as written, ``(params)``, without annotations or defaults."""
    names = [("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "") + p.name
             for p in signature.parameters.values()]
    return f"({', '.join(names)})"
