"""``atlas status``'s list at 80 columns keeps the QD-score, the figure that compares
campaigns, where its "in flight" column would show only zeros."""

from __future__ import annotations

from typing import Any

import pytest

from search import cli_tables


def _row(name: str, algorithm: str, pending: int = 0, in_flight: int = 0) -> dict[str, Any]:
    return {"name": name, "algorithm": algorithm, "status": "finished", "finished": 200, "budget": 200,
            "failed": 6, "pending": pending, "in_flight": in_flight, "coverage": 0.46,
            "qd_score": 5552.426108159658, "best": 21.4704}


def _shown(table: Any) -> tuple[list[str], int]:
    """The table's headers and the widest line it prints."""
    with cli_tables.console.capture() as captured:
        cli_tables.console.print(table)
    return [str(c.header) for c in table.columns], max(map(len, captured.get().splitlines()))


LONG = [_row("rw-map-elites-int11-ray", "map-elites"), _row("rw-optuna-cmaes-r1", "optuna-cmaes"),
        _row("rw-portfolio-r1", "portfolio")]


def test_an_idle_list_at_80_columns_shows_the_qd_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """Names of 25 characters at 80 columns had dropped the QD-score and kept an "in flight"
    column of zeros (reprowalk item 5)."""
    monkeypatch.setattr(cli_tables.console, "_width", 80)
    rows = [*LONG, _row("rw-optuna-nsga2-ray-int40", "map-elites")]
    table = cli_tables.campaigns_table(rows)
    headers, width = _shown(table)
    assert headers == ["name", "status", "evals", "failed", "coverage", "QD-score", "best"]
    assert width <= 80
    assert table.caption == "not shown at 80 columns: algorithm, in flight (see `atlas status NAME`)"


def test_shorter_names_at_80_columns_show_the_algorithm_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_tables.console, "_width", 80)
    table = cli_tables.campaigns_table([_row("rw-me1", "map-elites"), _row("rw-tpe1", "optuna-tpe")])
    headers, width = _shown(table)
    assert headers == ["name", "algorithm", "status", "evals", "failed", "coverage", "QD-score", "best"]
    assert width <= 80
    assert table.caption == "not shown at 80 columns: in flight (see `atlas status NAME`)"


@pytest.mark.parametrize(("pending", "in_flight"), [(400, 0), (0, 3)])
def test_a_list_with_work_left_keeps_in_flight_before_the_qd_score(monkeypatch: pytest.MonkeyPatch, pending: int,
                                                                   in_flight: int) -> None:
    """Where any campaign has rows pending or in flight, the column says what ``atlas
    resume`` would run (or what runs), and outlasts the QD-score as before."""
    monkeypatch.setattr(cli_tables.console, "_width", 80)
    rows = [*LONG, _row("rw-me-r3", "map-elites", pending=pending, in_flight=in_flight)]
    headers, width = _shown(cli_tables.campaigns_table(rows))
    assert "in flight" in headers and "QD-score" not in headers and width <= 80


def test_a_wide_console_shows_every_column(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_tables.console, "_width", 200)
    table = cli_tables.campaigns_table(LONG)
    assert [str(c.header) for c in table.columns] == [h for h, _, _ in cli_tables.CAMPAIGN_COLUMNS]
    assert table.caption is None
