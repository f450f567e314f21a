"""``atlas status NAME --json`` gives every proposer every count (0 where none), and
``atlas elites`` (JSON, CSV) gives each elite's ``seq`` and ``proposer`` after the rest."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import archive
from search import api
from tests.conftest import quadratic_spec
from tests.test_cli_outputs import atlas


def test_status_json_gives_each_proposer_every_count(tmp_path: Path) -> None:
    """A proposer with no failure had no ``failed`` key (``jq .failed`` read null), though
    ``running`` and ``pending`` were there at 0 (reprowalk item 6)."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    row = json.loads(atlas("status", "quad", "--storage", url, "--json").stdout)
    assert row["proposers"] == {"map-elites": {"done": 10, "failed": 0, "running": 0, "in_flight": 0, "pending": 0}}
    assert list(row["proposers"]["map-elites"]) == ["done", "failed", "running", "in_flight", "pending"]


def test_elites_json_and_csv_give_seq_and_proposer_last(tmp_path: Path) -> None:
    """They had only cell, evaluation id, objective, measures and params, where
    ``camp.elites()`` and the dashboard give ``seq`` and ``proposer`` too (reprowalk item 10).
    A parameter named ``seq`` keeps its value apart (``params.seq``)."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    space = {"a": {"type": "float", "low": 0.0, "high": 1.0}, "b": {"type": "float", "low": 0.0, "high": 1.0},
             "seq": {"type": "int", "low": 1, "high": 3}}
    api.run(quadratic_spec(space=space, search__budget=20), storage=url, executor="inline")
    stored = {e["evaluation_id"]: e for e in archive.open(url).campaign("quad").elites()}
    exact = json.loads(atlas("elites", "quad", "--storage", url, "--format", "json").stdout)
    assert exact and len(exact) == len(stored)
    for elite in exact:
        assert list(elite) == ["cell", "evaluation_id", "objective", "measures", "params", "seq", "proposer"]
        want = stored[elite["evaluation_id"]]
        assert (elite["seq"], elite["proposer"]) == (want["seq"], want["proposer"]) == (want["seq"], "map-elites")
    text = atlas("elites", "quad", "--storage", url, "--format", "csv").stdout
    assert next(csv.reader(io.StringIO(text))) == ["cell", "evaluation_id", "objective", "ma", "mb", "a", "b",
                                                   "params.seq", "seq", "proposer"]
    for row in csv.DictReader(io.StringIO(text)):
        want = stored[int(row["evaluation_id"])]
        assert (int(row["seq"]), row["proposer"], int(row["params.seq"])) == (
            want["seq"], want["proposer"], want["params"]["seq"])
