"""The layout's rules, read from the sources: which room may import which, no import
cycles between modules, and SQL only inside ``archive/``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ("entropy_atlas", "archive", "workers", "search", "dashboard")
#: What each room may import of the project (DESIGN.md, docs/architecture.md).
ALLOWED = {
    "entropy_atlas": set(),
    "archive": {"entropy_atlas"},
    "workers": {"entropy_atlas"},
    "dashboard": {"entropy_atlas", "archive"},
    "search": {"entropy_atlas", "archive", "workers", "dashboard"},
}


def modules() -> Iterator[tuple[str, Path]]:
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            yield name, path


def imports(path: Path, name: str) -> set[str]:
    """The project modules ``path`` imports, anywhere in it (lazy imports included)."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m.split(".")[0] in ROOMS}


MODULES = dict(modules())


def graph() -> dict[str, set[str]]:
    out = {}
    for name, path in MODULES.items():
        out[name] = {m for m in imports(path, name) if m in MODULES and m != name}
    return out


def test_rooms_import_only_what_the_layout_allows() -> None:
    wrong = []
    for name, deps in graph().items():
        room = name.split(".")[0]
        wrong += [f"{name} -> {d}" for d in sorted(deps) if d.split(".")[0] not in ALLOWED[room] | {room}]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles_between_modules() -> None:
    edges = graph()
    # a package's __init__ re-exporting its own modules is not a cycle of design
    for name in list(edges):
        edges[name] = {d for d in edges[name] if not (MODULES[d].name == "__init__.py" and name.startswith(d + "."))}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep):], dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("room", ["workers", "search", "dashboard", "entropy_atlas"])
def test_no_module_outside_archive_uses_sql(room: str) -> None:
    users = []
    for name, path in MODULES.items():
        if name.split(".")[0] != room:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("sqlalchemy", "sqlite3", "psycopg", "alembic") for n in names):
                users.append(name)
    assert not users, users
