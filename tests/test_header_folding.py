"""A folded header breaks where a reader would: after a ``_`` or at a space, never inside a
word or a unit such as ``(nats)``; only a word wider than its column is cut. Before, headers
were cut every ``width`` characters, and ``atlas elites`` outside a terminal printed
``post_activatio`` / ``n_entropy (nat`` / ``/ s)``."""

from __future__ import annotations

from typing import Any

import pytest

from search import cli as cli_module
from search import cli_tables
from search.plain_table import PLAIN_ROWS, folded
from tests.test_cli_table_units import header

NAME = "post_activation_entropy"
UNIT = "nat / s"


def test_a_header_folds_after_underscores_and_keeps_its_unit_whole() -> None:
    assert folded(f"{NAME} ({UNIT})", 14) == ["post_", "activation_", "entropy", "(nat / s)"]
    assert folded("mean_entropy (nats)", 8) == ["mean_", "entropy", "(nats)"]
    assert folded("mean_entropy (nats)", 19) == ["mean_entropy (nats)"]
    assert folded("accuracy (fraction)", 10) == ["accuracy", "(fraction)"]


def test_only_a_word_wider_than_the_column_is_cut() -> None:
    assert folded("entropy_of_" + "x" * 25, 10) == ["entropy_", "of_", "x" * 10, "x" * 10, "x" * 5]
    assert folded("score", 3) == ["sco", "re"]
    assert folded("m (tokens per second)", 8) == ["m", "(tokens", "per", "second)"]  # a unit wider: at its spaces


@pytest.mark.parametrize("text", ["mean_token_entropy_over_all_generated_continuations_nats", "a_b c_d (x y)",
                                  "entropy_of_" + "x" * 289, "cell", ""])
@pytest.mark.parametrize("width", [1, 3, 8, 14, 30])
def test_folding_loses_nothing_and_stays_within_the_width(text: str, width: int) -> None:
    lines = folded(text, width)
    assert all(len(line) <= width for line in lines)
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def rows(n: int) -> list[dict[str, Any]]:
    return [{"cell": i, "evaluation_id": i + 1, "objective": 0.5, "params": {"t": 0.7},
             "measures": {NAME: 1.25, "distinct_2": 0.5}} for i in range(n)]


@pytest.mark.parametrize("n", [2, PLAIN_ROWS + 1])  # rich's table; plain text past PLAIN_ROWS rows
def test_atlas_elites_headers_fold_at_word_boundaries_in_a_narrow_console(monkeypatch: pytest.MonkeyPatch,
                                                                         n: int) -> None:
    """At 60 columns the measure's header folds: onto ``post_`` / ``activation_`` / ``entropy``
    / ``(nat / s)``, each whole on a line of its own (it had been ``post_activatio`` / ``n_entropy (nat``)."""
    monkeypatch.setattr(cli_module.console, "_width", 60)
    table = cli_tables.elites_table("t", rows(n), "accuracy", [NAME, "distinct_2"], ["t"],
                                    units={"accuracy": "fraction", NAME: UNIT})
    words = [w for line in header(table, 60).splitlines() for w in line.split("  ") if w.strip()]
    words = [w.strip() for w in words]
    assert "(nat / s)" in words and "activation_" in words
    assert not any(w.startswith("n_") or w.endswith("(nat") for w in words)
