"""The expression parser: every supported form computes what it says, everything else is refused."""

from __future__ import annotations

import ast
import builtins
import copy
import math
import pickle
from collections.abc import Callable

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from workers.activations import parse_activation, validate_expression
from workers.activations.symbolic import MAX_LENGTH, MAX_NODES, UNARY_FUNCTIONS

X = torch.linspace(-4.0, 4.0, 161, dtype=torch.float64)
XP = torch.linspace(0.05, 4.0, 80, dtype=torch.float64)  # for log and sqrt

Ref = Callable[[torch.Tensor], torch.Tensor]

# (expression, hand-written torch version, input)
FORMS: list[tuple[str, Ref, torch.Tensor]] = [
    ("x", lambda x: x, X),
    ("x + 1.5", lambda x: x + 1.5, X),
    ("2 - x", lambda x: 2 - x, X),
    ("3*x", lambda x: 3 * x, X),
    ("x/4", lambda x: x / 4, X),
    ("1/(1 + x**2)", lambda x: 1 / (1 + x**2), X),
    ("-x", lambda x: -x, X),
    ("+x", lambda x: x, X),
    ("-x**2", lambda x: -(x**2), X),
    ("x**3", lambda x: x**3, X),
    ("x**-2 + 0*x", lambda x: x**-2, XP),
    ("x**0.5", lambda x: x**0.5, XP),
    ("(x + 1)**2", lambda x: (x + 1) ** 2, X),
    ("2**3*x", lambda x: 8 * x, X),
    ("pi*x", lambda x: math.pi * x, X),
    ("e*x", lambda x: math.e * x, X),
    ("2.5e-1*x", lambda x: 0.25 * x, X),
    ("exp(x)", torch.exp, X),
    ("log(x)", torch.log, XP),
    ("log1p(x)", torch.log1p, XP),
    ("expm1(x)", torch.expm1, X),
    ("sqrt(x)", torch.sqrt, XP),
    ("abs(x)", torch.abs, X),
    ("sign(x)", torch.sign, X),
    ("tanh(x)", torch.tanh, X),
    ("sigmoid(x)", torch.sigmoid, X),
    ("relu(x)", torch.relu, X),
    ("softplus(x)", lambda x: torch.log1p(torch.exp(x)), X),
    ("sin(x)", torch.sin, X),
    ("cos(x)", torch.cos, X),
    ("atan(x)", torch.atan, X),
    ("sinh(x)", torch.sinh, X),
    ("cosh(x)", torch.cosh, X),
    ("erf(x)", torch.erf, X),
    ("gelu(x)", lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))), X),
    ("silu(x)", lambda x: x * torch.sigmoid(x), X),
    ("mish(x)", lambda x: x * torch.tanh(torch.log1p(torch.exp(x))), X),
    ("elu(x)", lambda x: torch.where(x > 0, x, torch.exp(x) - 1), X),
    ("max(x, 0)", lambda x: torch.clamp(x, min=0), X),
    ("max(0, x)", lambda x: torch.clamp(x, min=0), X),
    ("min(x, 1)", lambda x: torch.clamp(x, max=1), X),
    ("max(x, 0.1*x)", lambda x: torch.maximum(x, 0.1 * x), X),
    ("min(x, sin(x))", lambda x: torch.minimum(x, torch.sin(x)), X),
    ("sqrt(2)*x", lambda x: math.sqrt(2) * x, X),
    ("exp(-x**2/2)", lambda x: torch.exp(-(x**2) / 2), X),
    (
        "x*sigmoid(1.7*x) + 0.01*x*exp(-x**2/2)",
        lambda x: x * torch.sigmoid(1.7 * x) + 0.01 * x * torch.exp(-x * x / 2),
        X,
    ),
    ("relu(x) + 0.01*x*exp(-x**2/2)", lambda x: F.relu(x) + 0.01 * x * torch.exp(-x * x / 2), X),
    ("x*tanh(softplus(x))", lambda x: x * torch.tanh(F.softplus(x)), X),
    ("  x * (1 + erf(x / sqrt(2))) / 2  ", lambda x: x * (1 + torch.erf(x / math.sqrt(2))) / 2, X),
]


def test_every_whitelisted_function_is_covered() -> None:
    covered = {
        node.func.id
        for expr, _, _ in FORMS
        for node in ast.walk(ast.parse(expr.strip(), mode="eval"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert set(UNARY_FUNCTIONS) | {"max", "min"} <= covered


@pytest.mark.parametrize(("expr", "reference", "x"), FORMS, ids=[f[0].strip() for f in FORMS])
def test_supported_form_equals_hand_written_torch(expr: str, reference: Ref, x: torch.Tensor) -> None:
    module = parse_activation(expr)
    torch.testing.assert_close(module(x), reference(x), rtol=1e-10, atol=1e-12)
    # float32 and arbitrary shapes too
    x32 = x.float().reshape(1, -1, 1)
    out = module(x32)
    assert out.dtype == torch.float32 and out.shape == x32.shape


def test_gradients_flow_through_a_parsed_expression() -> None:
    module = parse_activation("x*sigmoid(1.7*x) + 0.01*x*exp(-x**2/2) + max(x, 0.2*x)**2/8")
    x = torch.tensor([-2.1, -0.7, 0.3, 1.9], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(module, (x,))
    assert list(module.parameters()) == []


def test_constants_are_folded_and_canonical_form() -> None:
    module = parse_activation("x * (2*pi) + 2**3")
    assert module.canonical == f"((x * {2 * math.pi!r}) + 8.0)"
    assert module.expression == "x * (2*pi) + 2**3"


def test_parsed_module_pickles_and_copies() -> None:
    module = parse_activation("x*sigmoid(1.7*x) + max(x, 0)")
    for clone in (pickle.loads(pickle.dumps(module)), copy.deepcopy(module)):
        torch.testing.assert_close(clone(X), module(X))


def test_parser_never_executes_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """eval and exec are never called; compile only ever builds a syntax tree (ast.parse)."""
    real_compile = builtins.compile
    calls: list[int] = []

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("eval/exec called")

    def only_ast(source: object, filename: object, mode: str, flags: int = 0, *args: object, **kw: object) -> object:
        calls.append(flags)
        assert flags & ast.PyCF_ONLY_AST, "compile called without PyCF_ONLY_AST"
        return real_compile(source, filename, mode, flags, *args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", only_ast)
    module = parse_activation("x*sigmoid(1.7*x) + 0.01*x*exp(-x**2/2)")
    with pytest.raises(ValueError):
        validate_expression("__import__('os').system('echo pwned')")
    assert calls
    monkeypatch.undo()
    expected = torch.sigmoid(torch.tensor(1.7)).item() + 0.01 * math.exp(-0.5)
    assert module(torch.ones(1)).item() == pytest.approx(expected)


HOSTILE: list[tuple[str, str]] = [
    ("__import__('os')", "call of '__import__' is not allowed"),
    ("__import__('os').system('ls')", "attribute access is not allowed"),
    ("x.__class__", r"attribute access is not allowed \('x.__class__', attribute '__class__'\)"),
    ("x.__class__.__mro__[1].__subclasses__()", "attribute access is not allowed"),
    ("().__class__", "attribute access is not allowed"),
    ("sin.__call__(x)", "attribute access is not allowed"),
    ("lambda x: x", "lambda expressions are not allowed"),
    ("(lambda: x)()", "lambda expressions are not allowed"),
    ("[x for x in range(3)]", "comprehensions are not allowed"),
    ("{x for x in [1]}", "comprehensions are not allowed"),
    ("{x: 1 for x in [1]}", "comprehensions are not allowed"),
    ("max(y for y in [x])", "comprehensions"),
    ("9**9**9", r"constant 9\*\*9 = 3.874e\+08 is out of range"),
    ("x**100", "exponent 100 is out of range"),
    ("x**17", "exponent 17 is out of range"),
    ("x**-17", "exponent -17 is out of range"),
    ("x**(10**10)", "out of range"),
    ("2**1000*x", "exponent 1000 is out of range"),
    ("1e300*x", "out of range"),
    ("10000000*x", "out of range"),
    ("1000*1000*1000*x", "out of range"),
    ("2**x", "exponents must be constants"),
    ("x**x", "exponents must be constants"),
    ("x" + " + x" * 200, "input too long"),
    ("x" * (MAX_LENGTH + 1), "input too long"),
    ("y + x", "unknown name 'y'"),
    ("os", "unknown name 'os'"),
    ("__builtins__", "unknown name '__builtins__'"),
    ("torch", "unknown name 'torch'"),
    ("open('/etc/passwd')", "call of 'open' is not allowed"),
    ("getattr(x, 'real')", "call of 'getattr' is not allowed"),
    ("eval('x')", "call of 'eval' is not allowed"),
    ("x[0]", "subscripts are not allowed"),
    ("x[::2]", "subscripts are not allowed"),
    ("exp", "function 'exp' must be called"),
    ("exp(x, 2)", "exp\\(\\) takes 1 argument"),
    ("max(x)", "max\\(\\) takes 2 arguments"),
    ("exp(x=1)", "keyword arguments are not allowed"),
    ("max(*[x, 0])", "starred arguments are not allowed"),
    ("x if x else 1", "conditional expressions"),
    ("x > 0", "comparisons are not allowed"),
    ("x and 1", "boolean operators"),
    ("(x := 2)", "assignment expressions"),
    ("f'{x}'", "f-strings are not allowed"),
    ("'a' * x", "only real numbers"),
    ("b'a' * x", "only real numbers"),
    ("True * x", "only real numbers"),
    ("1j * x", "only real numbers"),
    ("x // 2", "operator '//' is not allowed"),
    ("x % 2", "operator '%' is not allowed"),
    ("x @ x", "operator '@' is not allowed"),
    ("x ^ 1", r"operator '\^' is not allowed"),
    ("~x", "operator '~' is not allowed"),
    ("not x", "operator 'not' is not allowed"),
    ("[x, x]", "lists are not allowed"),
    ("(x, x)", "tuples are not allowed"),
    ("x / 0", "division by zero"),
    ("x / (1 - 1)", "division by zero"),
    ("log(0) * x", "not a finite number"),
    ("sqrt(-1) * x", "not a finite number"),
    ("(-8)**0.5 * x", "not a finite real number"),
    ("3.5", "does not depend on x"),
    ("exp(2)", "does not depend on x"),
    ("", "empty"),
    ("   ", "empty"),
    ("x +", "not a valid expression"),
    ("import os", "not a valid expression"),
    ("x; y", "not a valid expression"),
    ("x\x00", "not a valid expression"),
    ("-" * 40 + "x", "nested too deeply"),
    ("exp(" * 30 + "x" + ")" * 30, "nested too deeply"),
    ("+".join(["x*1"] * 100), "too large|nested too deeply"),
]


@pytest.mark.parametrize(("expr", "match"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_hostile_or_unsupported_input_is_refused(expr: str, match: str) -> None:
    with pytest.raises(ValueError, match="activation expression refused") as info:
        validate_expression(expr)
    assert info.match(match)
    with pytest.raises(ValueError):
        parse_activation(expr)


def test_non_string_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a string"):
        validate_expression(42)  # type: ignore[arg-type]


def test_accepted_at_the_limits() -> None:
    validate_expression("x**16 + x**-16*0 + 1000000*x")
    validate_expression(" " * 10 + "x" + " " * (MAX_LENGTH - 11))
    torch.testing.assert_close(parse_activation("(" * 200 + "x" + ")" * 200)(X), X)  # parentheses add no depth
    nested = "tanh(" * 20 + "x" + ")" * 20
    torch.testing.assert_close(parse_activation(nested)(X), _nest(torch.tanh, 20)(X))


def _balanced_sum(leaves: list[str]) -> str:
    """The leaves summed as a balanced tree, so that the depth stays far below its limit."""
    while len(leaves) > 1:
        right = leaves[1::2] + [""] * (len(leaves) % 2)
        leaves = [f"({a}+{b})" if b else a for a, b in zip(leaves[::2], right, strict=True)]
    return leaves[0]


def test_the_node_limit_is_exactly_128_syntax_nodes() -> None:
    """workers/activations/symbolic.py docstring: "at most 512 characters, 128 syntax nodes"."""
    at = _balanced_sum(["x"] * 31 + ["1"] * 2)
    over = _balanced_sum(["x"] * 32 + ["1"])
    assert sum(1 for _ in ast.walk(ast.parse(at, mode="eval"))) - 1 == MAX_NODES == 128  # less the Expression
    assert sum(1 for _ in ast.walk(ast.parse(over, mode="eval"))) - 1 == 129
    validate_expression(at)
    with pytest.raises(ValueError, match="too large"):
        validate_expression(over)


def test_the_depth_limit_is_exactly_24_levels() -> None:
    """workers/activations/symbolic.py docstring: "nesting depth 24"."""
    validate_expression("tanh(" * 24 + "x" + ")" * 24)
    with pytest.raises(ValueError, match="nested too deeply"):
        validate_expression("tanh(" * 25 + "x" + ")" * 25)


def _nest(fn: Ref, depth: int) -> Ref:
    def out(x: torch.Tensor) -> torch.Tensor:
        for _ in range(depth):
            x = fn(x)
        return x

    return out


EXPRESSION_CHARS = "x()+-*/.0123456789 eps,*_[]:'abcdfgilmnortwy"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=EXPRESSION_CHARS, max_size=40))
def test_fuzz_only_value_errors_or_working_modules(text: str) -> None:
    """Random text is refused with ValueError or gives a module mapping tensors to same-shape tensors."""
    try:
        module = parse_activation(text)
    except ValueError as exc:
        assert str(exc).startswith("activation expression refused: ")
        return
    out = module(torch.linspace(-1, 1, 5))
    assert isinstance(out, torch.Tensor) and out.shape == (5,)
