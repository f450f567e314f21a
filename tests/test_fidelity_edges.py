"""What is written out matches what the evaluator returned, at the edges: a measure on a
bin edge, choices of mixed types, parameters named like secrets, a portfolio's measure
directions, a killed run's status, an objective named like a column, extreme objectives."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import archive
from archive.layout import LEGACY_RULE, CellLayout, MeasureAxis
from archive.records import CampaignSettings
from archive.redact import MASK, redact_spec
from archive.store import Store
from search import api
from search.cli import app
from search.spec import SpecError, parse_spec
from tests.conftest import quadratic_spec
from workers.contract import EvalContext


def on_edges(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """The measure is the parameter ``m`` itself; the objective ``k``."""
    return {"objective": float(params["k"]), "measures": {"m0": params["m"]}}


def choice_echo(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.0, "measures": {"m0": 0.5}}


def extreme(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": 1.7e308 if params["a"] > 0.5 else -1.7e308, "measures": {"m0": params["a"]}}


def _spec(target: str, space: dict[str, Any], measures: list[dict[str, Any]], **search: Any) -> dict[str, Any]:
    spec = quadratic_spec(**{f"search__{k}": v for k, v in search.items()})
    spec.update(evaluator={"kind": "python", "target": f"tests.test_fidelity_edges:{target}"}, space=space,
                measures=measures)
    return spec


def test_a_measure_on_an_interior_bin_edge_falls_in_the_bin_above_as_in_pyribs(sqlite_url: str) -> None:
    """[0, 3] in 5 bins: 0.6 and 1.2 went to the bin below (0.6 / 3 · 5 = 0.999…), where the
    point at 0.0 beat 0.6's elite away; pyribs, which the proposers use, puts them above."""
    from ribs.archives import GridArchive

    layout = CellLayout("grid", [MeasureAxis("m0", 0.0, 3.0, 5)])
    points = np.array([[0.6], [1.2], [0.0], [3.0], [1.8], [2.4]])
    ribs = GridArchive(solution_dim=1, dims=[5], ranges=[(0.0, 3.0)])
    assert layout.index_of(points).tolist() == ribs.index_of(points).tolist() == [1, 2, 0, 4, 3, 4]
    spec = _spec("on_edges", {"m": {"type": "float", "low": 0.0, "high": 3.0},
                              "k": {"type": "int", "low": 0, "high": 9}},
                 [{"name": "m0", "low": 0.0, "high": 3.0, "bins": 5}], budget=4, algorithm="random",
                 initial_points=[{"m": 0.6, "k": 1}, {"m": 1.2, "k": 2}, {"m": 0.0, "k": 3}, {"m": 3.0, "k": 4}])
    api.run(spec, storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        elites = handle.campaign("quad").elites()
    assert sorted((e["cell"], e["objective"]) for e in elites) == [(0, 3.0), (1, 1.0), (2, 2.0), (4, 4.0)]


def test_a_measure_within_pyribs_epsilon_below_an_edge_falls_in_the_bin_above_as_in_pyribs() -> None:
    """archive/layout.py's rule (pyribs' ``GridArchive.index_of``): bin ⌊(bins·(m − low) + ε) / (high − low)⌋,
    ε = 10⁻⁶. On [0, 1] in 10 bins, 0.3 − 5·10⁻⁸ (bins·(m − low) = 3 − 5·10⁻⁷, within ε of the edge) goes
    up to bin 3; 0.3 − 2·10⁻⁷ (3 − 2·10⁻⁶, beyond ε) stays in bin 2."""
    from ribs.archives import GridArchive

    layout = CellLayout("grid", [MeasureAxis("m0", 0.0, 1.0, 10)])
    points = np.array([[0.3 - 5e-8], [0.3 - 2e-7]])
    ribs = GridArchive(solution_dim=1, dims=[10], ranges=[(0.0, 1.0)])
    assert layout.index_of(points).tolist() == ribs.index_of(points).tolist() == [3, 2]


def test_a_legacy_layout_puts_an_exact_interior_edge_in_the_bin_above() -> None:
    """The legacy rule (layouts stored before ``grid_rule``), ⌊(m − low) / (high − low) · bins⌋: a floor, so a
    measure exactly on an interior edge belongs to the bin above; low is bin 0 and high the last bin."""
    old = CellLayout("grid", [MeasureAxis("m0", 0.0, 4.0, 4)], grid_rule=LEGACY_RULE)
    points = np.array([[1.0], [2.0], [3.0], [0.0], [4.0], [1.5]])
    assert old.index_of(points).tolist() == [1, 2, 3, 0, 3, 1]


def test_a_layout_stored_before_the_rule_keeps_its_cells() -> None:
    stored = CellLayout("grid", [MeasureAxis("m0", 0.0, 3.0, 5)]).to_json()
    assert stored["grid_rule"] == "ribs"
    del stored["grid_rule"]  # as written before it was named
    old = CellLayout.from_json(stored)
    assert old.grid_rule == LEGACY_RULE and old.index_of(np.array([[0.6], [1.2]])).tolist() == [0, 1]


def test_mixed_type_choices_stay_apart_in_the_flat_exports(sqlite_url: str, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    choices = [1, "1", 1.5, False]
    spec = _spec("choice_echo", {"c": {"type": "categorical", "choices": choices}},
                 [{"name": "m0", "low": 0.0, "high": 1.0, "bins": 2}], budget=4, algorithm="random",
                 initial_points=[{"c": c} for c in choices])
    api.run(spec, storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        table = pq.read_table(handle.campaign("quad").export(tmp_path / "e.parquet"))
    assert table.column("params.c").to_pylist() == ["1", '"1"', "1.5", "false"]


def test_parameters_named_like_secrets_keep_their_space() -> None:
    spec = parse_spec(quadratic_spec()).model_dump(mode="json")
    spec["space"] = {"pad_token": {"type": "int", "low": 0, "high": 60000},
                     "sort_key": {"type": "categorical", "choices": ["length", "alpha"]}}
    spec["search"]["initial_points"] = [{"pad_token": 5, "sort_key": "alpha"}]
    spec["evaluator"]["config"] = {"api_key": "sk-SECRET", "url": "https://u:pw@host/x"}
    shown = redact_spec(spec)
    assert shown["space"] == spec["space"] and shown["search"]["initial_points"] == spec["search"]["initial_points"]
    assert shown["evaluator"]["config"] == {"api_key": MASK, "url": f"https://u:{MASK}@host/x"}


def test_a_portfolio_members_measure_directions_are_the_fronts() -> None:
    spec = parse_spec(quadratic_spec()).model_dump(mode="json")
    members = {"mo-bo": {"measure_directions": {"ma": "minimize"}}, "random": {}}
    spec["search"].update(algorithm="portfolio", options={"members": members})
    assert CampaignSettings.from_spec(spec).measure_directions == {"ma": "minimize"}


@pytest.mark.parametrize("direction, where", [("maximize", "pre"), ("minimize", "post")])
def test_the_front_staircase_steps_at_the_points_it_can_reach(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               direction: str, where: str) -> None:
    """Maximised, the best objective with the measure at or beyond m is the next point's."""
    from matplotlib.axes import Axes

    from archive.figures import pareto_front

    steps: list[str] = []
    original = Axes.step
    monkeypatch.setattr(Axes, "step", lambda self, *a, **k: (steps.append(k["where"]), original(self, *a, **k))[1])
    settings = CampaignSettings.from_spec({**parse_spec(quadratic_spec()).model_dump(mode="json")})
    settings.measure_directions.update(ma=direction)
    points = [(1, 0.1), (0.5, 0.6), (0, 0.9)]
    rows = [{"objective": float(o), "measures": {"ma": float(m), "mb": 0.0}} for o, m in points]
    pareto_front(tmp_path / "f.png", "quad", settings, rows)
    assert steps[0] == where


def test_a_killed_runs_export_says_interrupted(sqlite_url: str, tmp_path: Path) -> None:
    api.run(quadratic_spec(search__budget=4), storage=sqlite_url, executor="inline")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store = Store(sqlite_url)
    try:
        store.update_campaign(store.require_campaign("quad").id, status="running",
                              lease_holder=f"{socket.gethostname()}:{dead.pid}:deadbeef",
                              lease_expires=time.time() + 600)
    finally:
        store.close()
    with archive.open(sqlite_url) as handle:
        document = json.loads(handle.campaign("quad").export(tmp_path / "e.json").read_text())
    assert document["campaign"]["status"] == "interrupted"


def test_an_objective_named_like_a_column_gets_its_own_label(sqlite_url: str) -> None:
    spec = quadratic_spec(search__budget=4)
    spec["objective"] = {"name": "cell", "direction": "maximize"}
    spec["evaluator"]["target"] = "tests.support.evaluators:quadratic"
    api.run(spec, storage=sqlite_url, executor="inline")
    result = CliRunner().invoke(app, ["elites", "quad", "--storage", sqlite_url, "--format", "csv"],
                                catch_exceptions=False)
    header = result.stdout.splitlines()[0].split(",")
    assert header[:3] == ["cell", "evaluation_id", "objective"] and len(set(header)) == len(header)


def test_a_map_of_objectives_near_the_largest_float_is_drawn(sqlite_url: str, tmp_path: Path) -> None:
    from archive.figures import colour_scale

    spec = _spec("extreme", {"a": {"type": "float", "low": 0.0, "high": 1.0}},
                 [{"name": "m0", "low": 0.0, "high": 1.0, "bins": 4}], budget=8, algorithm="random")
    api.run(spec, storage=sqlite_url, executor="inline")
    with archive.open(sqlite_url) as handle:
        assert handle.campaign("quad").map(tmp_path / "m.png").stat().st_size > 0
    scale = colour_scale(np.array([-1.7e308, 1.7e308]), (0.0, 1.0))
    assert np.isfinite(scale.high - scale.low)
    scale = colour_scale(np.array([1e308, 1e308]), (0.0, 1.0))
    assert scale.low < scale.high and np.isfinite(scale.high - scale.low)


def test_a_range_wider_than_the_largest_float_is_refused() -> None:
    spec = quadratic_spec()
    spec["space"]["a"] = {"type": "float", "low": -1e308, "high": 1e308}
    with pytest.raises(SpecError, match="high - low must be a finite number"):
        parse_spec(spec)


def test_a_measure_range_whose_cells_pass_the_largest_float_is_refused() -> None:
    """[0, 1e308] in 10 bins put 3e307 and 5e307 both in the last cell (10 · 5e307 is inf),
    where the better of the two took the other's place."""
    spec = quadratic_spec()
    spec["measures"][0] = {**spec["measures"][0], "low": 0.0, "high": 1e308, "bins": 10}
    with pytest.raises(SpecError, match=r"measures\.0: .*bins × \(high - low\) must be a finite number"):
        parse_spec(spec)
    spec["measures"][0]["bins"] = 1
    parse_spec(spec)


def test_atlas_front_minimize_draws_that_measure_s_front_minimised(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A map-elites campaign's front was drawn maximising every measure, "(maximize)" under
    each axis, with no way to say an entropy is to be kept low."""
    from matplotlib.axes import Axes
    from typer.testing import CliRunner

    from search.cli import app

    url = f"sqlite:///{tmp_path / 'a.db'}"
    api.run(quadratic_spec(search__budget=12), storage=url, executor="inline")
    labels: list[str] = []
    original = Axes.set_xlabel
    monkeypatch.setattr(Axes, "set_xlabel",
                        lambda self, text, *a, **k: (labels.append(text), original(self, text, *a, **k))[1])
    shown = CliRunner().invoke(app, ["front", "quad", "--storage", url, "--out", str(tmp_path / "f.png"),
                                     "--minimize", "mb"])
    assert shown.exit_code == 0, shown.output
    assert labels == ["ma (maximize)", "mb (minimize)"]
    refused = CliRunner().invoke(app, ["front", "quad", "--storage", url, "--out", str(tmp_path / "g.png"),
                                       "--minimize", "entropy"])
    assert refused.exit_code == 2
    assert refused.stderr == "error: --minimize entropy: not a measure of campaign 'quad' (measures: ma, mb)\n"
    assert not (tmp_path / "g.png").exists()
