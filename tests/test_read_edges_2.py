"""The read side at its edges, continued: the QD-score of elites whose fitnesses cancel,
as ``atlas status``, ``status --json`` and the map's title show it, on both storages."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from typer.testing import CliRunner

import archive
from archive.figures import map_title
from search import api
from search.cli import app
from tests.conftest import quadratic_spec

#: fitnesses whose sum best first is 0 (-1e308 cancels 1e308 last) but exactly 123456791.92345679
CANCELLING = [1e308, -1e308, 5e-324, -0.0, 0.1 + 0.2, 123456789.12345679, 2.5]
#: partial sums past the float range; the sums themselves 1e308, and +inf
OVERFLOWING = {"back": [1e308, 1e308, -1e308], "past": [1e308, 1e308]}


def _result(i: int, objective: float) -> dict[str, Any]:
    """Objective ``objective`` in cell ``i`` of a 5 × 5 map."""
    return {"objective": objective, "measures": {"ma": (i % 5) / 5 + 0.1, "mb": (i // 5) / 5 + 0.1}}


def cancelling(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    return _result(int(params["i"]), CANCELLING[int(params["i"])])


def overflowing_back(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    return _result(int(params["i"]), OVERFLOWING["back"][int(params["i"])])


def overflowing_past(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    return _result(int(params["i"]), OVERFLOWING["past"][int(params["i"])])


def one_per_cell(url: str, name: str, target: str, n: int) -> None:
    """A finished campaign ``name`` of ``n`` elites in ``n`` cells, ``target``'s objectives."""
    spec = quadratic_spec(name=name, search__budget=n, search__batch_size=n,
                          search__initial_points=[{"i": i} for i in range(n)],
                          evaluator={"kind": "python", "target": f"tests.test_read_edges_2:{target}"},
                          space={"i": {"type": "categorical", "choices": list(range(n))}})
    api.run(spec, storage=url, executor="inline")


def status_of(url: str, name: str) -> tuple[dict[str, Any], str]:
    """``atlas status NAME --json``'s row and the table ``atlas status NAME`` prints."""
    runner = CliRunner()
    as_json = runner.invoke(app, ["status", name, "--json", "--storage", url], catch_exceptions=False)
    table = runner.invoke(app, ["status", name, "--storage", url], catch_exceptions=False)
    assert as_json.exit_code == table.exit_code == 0, (as_json.output, table.output)
    return json.loads(as_json.stdout), table.stdout


def test_the_qd_score_is_exactly_rounded_where_large_fitnesses_cancel(storage_url: str) -> None:
    """SQL's ``SUM`` in order had given 0 on SQLite (PostgreSQL 1.23457e+08), and the map's
    title, a plain ``sum``, 0 too: both are now ``math.fsum``'s 123456791.92345679."""
    one_per_cell(storage_url, "cancel", "cancelling", len(CANCELLING))
    exact = math.fsum(CANCELLING)
    assert sum(sorted(CANCELLING, reverse=True)) == 0  # best first, as the map's title had added them
    row, table = status_of(storage_url, "cancel")
    assert row["elites"] == len(CANCELLING) and row["qd_score"] == exact
    assert "1.23457e+08" in table
    with archive.open(storage_url) as handle:
        camp = handle.campaign("cancel")
        data = camp.map_data()
        assert data.stats.qd_score == camp.stats().qd_score == exact
        assert data.stats.elites == len(data.elites) == len(CANCELLING)
        assert "QD-score 1.23457e+08" in map_title(data.name, data.stats)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # pyribs' own sums, in the run
@pytest.mark.parametrize("case, expected", [("back", 1e308), ("past", math.inf)])
def test_a_qd_score_whose_partial_sums_overflow_is_still_its_sum(storage_url: str, case: str,
                                                                 expected: float) -> None:
    """``math.fsum`` refuses partial sums past the float range: 1e308 + 1e308 − 1e308 is
    1e308, and 1e308 + 1e308 is +inf (``null`` in JSON), never an error."""
    one_per_cell(storage_url, "big", f"overflowing_{case}", len(OVERFLOWING[case]))
    row, table = status_of(storage_url, "big")
    assert row["qd_score"] == (None if math.isinf(expected) else expected)
    assert ("inf" if math.isinf(expected) else "1e+308") in table.split("QD-score", 1)[1].split("\n", 1)[0]
    with archive.open(storage_url) as handle:
        assert handle.campaign("big").map_data().stats.qd_score == expected
