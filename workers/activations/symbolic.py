"""Activations written as an expression in ``x``, parsed by a whitelist walk of ``ast``.

``parse_activation("x*sigmoid(1.7*x) + 0.01*x*exp(-x**2/2)")`` returns a module that
computes that function with torch operations. The text is parsed with
:func:`ast.parse` (``mode="eval"``), which only builds a syntax tree, and every node of
the tree is checked against the whitelist below before anything is built. Nothing is
ever passed to ``eval``, ``exec`` or ``compile``, nor to sympy's ``parse_expr``, and the
built module holds a small tree of its own node classes, not Python code.

Grammar (everything else is refused with a :class:`ValueError` naming what was refused)::

    expr     := number | "x" | "pi" | "e"
              | expr ("+" | "-" | "*" | "/") expr
              | expr "**" constant          # a constant exponent, |p| <= 16
              | ("-" | "+") expr
              | "(" expr ")"
              | unary_fn "(" expr ")"
              | ("max" | "min") "(" expr "," expr ")"   # elementwise
    unary_fn := exp | log | log1p | expm1 | sqrt | abs | sign | tanh | sigmoid | relu
              | softplus | sin | cos | atan | sinh | cosh | erf | gelu | silu | mish | elu

Limits: at most 512 characters, 128 syntax nodes and nesting depth 24; every constant,
written or folded (``2*pi``, ``sqrt(2)``), is finite with |c| <= 1e6; exponents are
constants with |p| <= 16 (so ``9**9**9`` is refused as soon as ``9**9`` folds out of
range, without computing it). The expression must depend on ``x``.

Numerics are the user's: ``log(x)`` or ``x**0.5`` give NaN for negative inputs, which
the activation evaluator reports as a failed (diverged) evaluation.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

MAX_LENGTH = 512
MAX_NODES = 128
MAX_DEPTH = 24
MAX_CONSTANT = 1e6
MAX_EXPONENT = 16

Value = torch.Tensor | float

UNARY_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "exp": torch.exp,
    "log": torch.log,
    "log1p": torch.log1p,
    "expm1": torch.expm1,
    "sqrt": torch.sqrt,
    "abs": torch.abs,
    "sign": torch.sign,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "softplus": F.softplus,
    "sin": torch.sin,
    "cos": torch.cos,
    "atan": torch.atan,
    "sinh": torch.sinh,
    "cosh": torch.cosh,
    "erf": torch.erf,
    "gelu": F.gelu,
    "silu": F.silu,
    "mish": F.mish,
    "elu": F.elu,
}
BINARY_FUNCTIONS: tuple[str, ...] = ("max", "min")
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}

GRAMMAR_HELP = (
    "an expression in x using numbers, pi, e, + - * /, ** with a constant exponent "
    f"(|p| <= {MAX_EXPONENT}), unary functions {', '.join(UNARY_FUNCTIONS)}, and elementwise "
    f"max(a, b), min(a, b); at most {MAX_LENGTH} characters, constants |c| <= {MAX_CONSTANT:g}"
)

_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
}
_REFUSED_KINDS: dict[type[ast.AST], str] = {
    ast.Lambda: "lambda expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions (generator expressions)",
    ast.Subscript: "subscripts",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators (and/or)",
    ast.IfExp: "conditional expressions (a if c else b)",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.JoinedStr: "f-strings",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Starred: "starred arguments",
    ast.Slice: "slices",
}


# ----------------------------------------------------------------------------------
# The expression tree the module evaluates: plain classes holding names and numbers.
# ----------------------------------------------------------------------------------


class Node:
    """A node of a checked expression; ``node(x)`` evaluates it with torch operations."""

    def __call__(self, x: torch.Tensor) -> Value:
        raise NotImplementedError

    def depends_on_x(self) -> bool:
        raise NotImplementedError


class Var(Node):
    """The input ``x``."""

    def __call__(self, x: torch.Tensor) -> Value:
        return x

    def depends_on_x(self) -> bool:
        return True

    def __str__(self) -> str:
        return "x"


class Const(Node):
    """A finite number with |value| <= MAX_CONSTANT."""

    def __init__(self, value: float) -> None:
        self.value = value

    def __call__(self, x: torch.Tensor) -> Value:
        return self.value

    def depends_on_x(self) -> bool:
        return False

    def __str__(self) -> str:
        return repr(self.value) if self.value >= 0 else f"({self.value!r})"


class Neg(Node):
    """``-a``."""

    def __init__(self, arg: Node) -> None:
        self.arg = arg

    def __call__(self, x: torch.Tensor) -> Value:
        return -self.arg(x)

    def depends_on_x(self) -> bool:
        return self.arg.depends_on_x()

    def __str__(self) -> str:
        return f"(-{self.arg})"


class BinOp(Node):
    """``a op b`` for op in + - * /."""

    def __init__(self, op: str, left: Node, right: Node) -> None:
        self.op, self.left, self.right = op, left, right

    def __call__(self, x: torch.Tensor) -> Value:
        a, b = self.left(x), self.right(x)
        if self.op == "+":
            return a + b
        if self.op == "-":
            return a - b
        if self.op == "*":
            return a * b
        return a / b

    def depends_on_x(self) -> bool:
        return self.left.depends_on_x() or self.right.depends_on_x()

    def __str__(self) -> str:
        return f"({self.left} {self.op} {self.right})"


class Pow(Node):
    """``a ** p`` with a constant exponent ``p`` (|p| <= MAX_EXPONENT)."""

    def __init__(self, base: Node, exponent: float) -> None:
        self.base = base
        self.exponent: float | int = int(exponent) if float(exponent).is_integer() else exponent

    def __call__(self, x: torch.Tensor) -> Value:
        return torch.pow(self.base(x), self.exponent)

    def depends_on_x(self) -> bool:
        return self.base.depends_on_x()

    def __str__(self) -> str:
        return f"({self.base}**{self.exponent})"


class Call(Node):
    """A whitelisted function of one argument (elementwise)."""

    def __init__(self, name: str, arg: Node) -> None:
        self.name, self.arg = name, arg

    def __call__(self, x: torch.Tensor) -> Value:
        arg = self.arg(x)
        if not isinstance(arg, torch.Tensor):  # only while folding constants
            arg = torch.tensor(arg, dtype=x.dtype, device=x.device)
        return UNARY_FUNCTIONS[self.name](arg)

    def depends_on_x(self) -> bool:
        return self.arg.depends_on_x()

    def __str__(self) -> str:
        return f"{self.name}({self.arg})"


class Extremum(Node):
    """Elementwise ``max(a, b)`` or ``min(a, b)``; a constant side becomes a clamp."""

    def __init__(self, name: str, left: Node, right: Node) -> None:
        self.name, self.left, self.right = name, left, right

    def __call__(self, x: torch.Tensor) -> Value:
        a, b = self.left(x), self.right(x)
        if not isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):  # folding constants
            return max(a, b) if self.name == "max" else min(a, b)
        if not isinstance(a, torch.Tensor):
            a, b = b, a
        if not isinstance(b, torch.Tensor):
            return torch.clamp(a, min=b) if self.name == "max" else torch.clamp(a, max=b)
        return torch.maximum(a, b) if self.name == "max" else torch.minimum(a, b)

    def depends_on_x(self) -> bool:
        return self.left.depends_on_x() or self.right.depends_on_x()

    def __str__(self) -> str:
        return f"{self.name}({self.left}, {self.right})"


# ----------------------------------------------------------------------------------
# The whitelist walk: ast -> Node, refusing anything else.
# ----------------------------------------------------------------------------------


def _refuse(reason: str) -> ValueError:
    return ValueError(f"activation expression refused: {reason}")


def _checked_constant(value: float, what: str) -> Const:
    if not math.isfinite(value):
        raise _refuse(f"{what} is not a finite number")
    if abs(value) > MAX_CONSTANT:
        raise _refuse(f"{what} = {value:.4g} is out of range (|c| <= {MAX_CONSTANT:g})")
    return Const(float(value))


def _fold(node: Node, what: str) -> Node:
    """Evaluate a node that does not depend on x to a checked constant."""
    if isinstance(node, Const) or node.depends_on_x():
        return node
    probe = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        out = node(probe)
    value = float(out) if not isinstance(out, torch.Tensor) else float(out.item())
    return _checked_constant(value, what)


class _Builder:
    """Turns a checked ``ast`` expression into a :class:`Node`, one whitelisted node at a time."""

    def __init__(self, source: str) -> None:
        self.source = source

    def text(self, node: ast.AST) -> str:
        segment = ast.get_source_segment(self.source, node)
        if segment is None:
            return type(node).__name__
        return segment if len(segment) <= 40 else segment[:37] + "..."

    def build(self, node: ast.AST, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:
            raise _refuse(f"the expression is nested too deeply (more than {MAX_DEPTH} levels)")
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            return self.unary(node, depth)
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        if isinstance(node, ast.Attribute):
            raise _refuse(f"attribute access is not allowed ({self.text(node)!r}, attribute {node.attr!r})")
        for kind, label in _REFUSED_KINDS.items():
            if isinstance(node, kind):
                raise _refuse(f"{label} are not allowed ({self.text(node)!r})")
        raise _refuse(f"{type(node).__name__} is not allowed ({self.text(node)!r})")

    def constant(self, node: ast.Constant) -> Node:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse(f"only real numbers may appear as constants, not {value!r}")
        if isinstance(value, int) and abs(value) > MAX_CONSTANT:
            raise _refuse(f"constant {self.text(node)} is out of range (|c| <= {MAX_CONSTANT:g})")
        return _checked_constant(float(value), f"constant {self.text(node)}")

    def name(self, node: ast.Name) -> Node:
        if node.id == "x":
            return Var()
        if node.id in CONSTANTS:
            return Const(CONSTANTS[node.id])
        if node.id in UNARY_FUNCTIONS or node.id in BINARY_FUNCTIONS:
            raise _refuse(f"function {node.id!r} must be called, e.g. {node.id}(x)")
        allowed = ", ".join(["x", *CONSTANTS])
        raise _refuse(f"unknown name {node.id!r} (names allowed: {allowed} and the whitelisted functions)")

    def unary(self, node: ast.UnaryOp, depth: int) -> Node:
        if isinstance(node.op, ast.UAdd):
            return self.build(node.operand, depth + 1)
        if isinstance(node.op, ast.USub):
            inner = self.build(node.operand, depth + 1)
            if isinstance(inner, Const):
                return Const(-inner.value)
            return Neg(inner)
        symbol = {ast.Not: "not", ast.Invert: "~"}.get(type(node.op), type(node.op).__name__)
        raise _refuse(f"operator {symbol!r} is not allowed ({self.text(node)!r})")

    def binop(self, node: ast.BinOp, depth: int) -> Node:
        symbol = _OPERATORS.get(type(node.op), type(node.op).__name__)
        if symbol not in ("+", "-", "*", "/", "**"):
            raise _refuse(f"operator {symbol!r} is not allowed ({self.text(node)!r}); use + - * / **")
        left = self.build(node.left, depth + 1)
        right = self.build(node.right, depth + 1)
        if symbol == "**":
            return self.power(node, left, right)
        if symbol == "/" and isinstance(right, Const) and right.value == 0.0:
            raise _refuse(f"division by zero ({self.text(node)!r})")
        return _fold(BinOp(symbol, left, right), f"constant {self.text(node)}")

    def power(self, node: ast.BinOp, base: Node, exponent: Node) -> Node:
        if not isinstance(exponent, Const):
            raise _refuse(f"exponents must be constants ({self.text(node)!r}); write exp(a*log(b)) for b**a")
        p = exponent.value
        if abs(p) > MAX_EXPONENT:
            raise _refuse(f"exponent {p:g} is out of range (|p| <= {MAX_EXPONENT}) in {self.text(node)!r}")
        if isinstance(base, Const):
            if base.value == 0.0 and p < 0:
                raise _refuse(f"division by zero ({self.text(node)!r})")
            try:
                value = math.pow(base.value, p)
            except (OverflowError, ValueError):
                raise _refuse(f"constant {self.text(node)} is not a finite real number") from None
            return _checked_constant(value, f"constant {self.text(node)}")
        return Pow(base, p)

    def call(self, node: ast.Call, depth: int) -> Node:
        func = node.func
        if isinstance(func, ast.Attribute):
            raise _refuse(f"attribute access is not allowed ({self.text(func)!r}, attribute {func.attr!r})")
        if not isinstance(func, ast.Name):
            self.build(func, depth + 1)  # names what is refused inside (a lambda, a subscript, ...)
            raise _refuse(f"only whitelisted functions may be called, not {self.text(func)!r}")
        name = func.id
        if name not in UNARY_FUNCTIONS and name not in BINARY_FUNCTIONS:
            raise _refuse(
                f"call of {name!r} is not allowed; functions allowed: "
                f"{', '.join([*UNARY_FUNCTIONS, *BINARY_FUNCTIONS])}"
            )
        if node.keywords:
            raise _refuse(f"keyword arguments are not allowed ({self.text(node)!r})")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise _refuse(f"starred arguments are not allowed ({self.text(node)!r})")
        args = [self.build(a, depth + 1) for a in node.args]  # refusals inside the arguments first
        arity = 2 if name in BINARY_FUNCTIONS else 1
        if len(args) != arity:
            raise _refuse(f"{name}() takes {arity} argument{'s' if arity > 1 else ''}, got {len(args)}")
        built: Node = Extremum(name, args[0], args[1]) if arity == 2 else Call(name, args[0])
        return _fold(built, f"constant {self.text(node)}")


def _parse_tree(expr: str) -> Node:
    if not isinstance(expr, str):
        raise _refuse(f"expected a string, got {type(expr).__name__}")
    if len(expr) > MAX_LENGTH:
        raise _refuse(f"input too long ({len(expr)} characters; at most {MAX_LENGTH})")
    text = expr.strip()
    if not text:
        raise _refuse("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise _refuse(f"not a valid expression ({exc.msg})") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise _refuse(f"not a valid expression ({type(exc).__name__}: {exc})") from None
    count = sum(1 for _ in ast.walk(tree))
    if count > MAX_NODES + 1:  # +1 for the Expression wrapper
        raise _refuse(f"the expression is too large ({count - 1} syntax nodes; at most {MAX_NODES})")
    root = _Builder(text).build(tree.body)
    if not root.depends_on_x():
        raise _refuse("the expression does not depend on x")
    return root


def validate_expression(expr: str) -> None:
    """Raise :class:`ValueError` (naming what was refused) unless ``expr`` is in the grammar.

    Cheap (no tensors of the input's size are made): for a proposer to check text before
    it spends an evaluation on it.
    """
    _parse_tree(expr)


class SymbolicActivation(nn.Module):
    """An activation built from a whitelisted expression in ``x`` (see the module docstring).

    ``expression`` keeps the text as given; ``canonical`` is the fully parenthesised form
    of what is computed (constants folded), handy for deduplicating proposals.
    """

    def __init__(self, expression: str) -> None:
        super().__init__()
        self.tree = _parse_tree(expression)
        self.expression = expression.strip()

    @property
    def canonical(self) -> str:
        return str(self.tree)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.tree(x)
        if not isinstance(out, torch.Tensor):  # unreachable: the tree depends on x
            raise RuntimeError("symbolic activation produced a constant")
        return out

    def extra_repr(self) -> str:
        return f"expression={self.expression!r}"


def parse_activation(expr: str) -> SymbolicActivation:
    """Parse ``expr`` (an expression in ``x``) into a module; :class:`ValueError` if refused."""
    return SymbolicActivation(expr)
