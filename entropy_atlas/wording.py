"""Words a message puts around a number."""

from __future__ import annotations


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``1 attempt``, ``3 attempts``, ``0 elites``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
