"""Hypothesis strategies that damage a campaign spec: values replaced or removed at any path."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st


def paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into ``tree`` (mapping keys and list indices), the root included."""
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += paths(v, (*prefix, i))
    return out


def mutations(base: dict[str, Any], leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Copies of ``base`` with 1–3 values, at paths drawn from it, replaced by a leaf or removed."""
    all_paths = [p for p in paths(base) if p]

    @st.composite
    def mutated(draw: st.DrawFn) -> dict[str, Any]:
        data = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 3))):
            path = draw(st.sampled_from(all_paths))
            node = data
            try:
                for key in path[:-1]:
                    node = node[key]
                if draw(st.booleans()):
                    node[path[-1]] = draw(leaves)
                elif isinstance(node, dict):
                    node.pop(path[-1], None)
            except (KeyError, IndexError, TypeError):
                continue
        return data

    return mutated()
