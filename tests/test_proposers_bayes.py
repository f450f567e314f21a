"""Bayesian and hybrid proposers: each through a campaign, categorical and conditional
parameters, resume equivalence of ``bo``, pending points never proposed twice."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml

import archive
from search import api
from tests.conftest import quadratic_spec
from tests.test_cli import atlas

LIGHT = {"num_restarts": 2, "raw_samples": 32}


def mixed_spec(algorithm: str, options: dict, **overrides: object) -> dict:
    """A space with a categorical that switches a conditional parameter on and off."""
    spec = quadratic_spec(search__algorithm=algorithm, search__options=options, search__budget=16,
                          search__batch_size=4, search__max_in_flight=8, **overrides)
    spec["evaluator"] = {"kind": "python", "target": "tests.test_proposers_bayes:mixed"}
    spec["space"] = {
        "a": {"type": "float", "low": 0.0, "high": 1.0},
        "mode": {"type": "categorical", "choices": ["shift", "plain", "scale"]},
        "b": {"type": "float", "low": 0.0, "high": 1.0, "when": {"mode": ["shift", "scale"]}},
        "k": {"type": "int", "low": 1, "high": 4},
    }
    return spec


def mixed(params: dict, ctx: object) -> dict:
    mode = params["mode"]
    assert ("b" in params) == (mode != "plain"), f"condition broken: {params}"
    assert isinstance(params["k"], int) and 1 <= params["k"] <= 4
    b = params.get("b", 0.5)
    bonus = {"shift": 0.2, "plain": 0.0, "scale": 0.1}[mode]
    return {"objective": 1 - (params["a"] - 0.7) ** 2 + bonus - 0.01 * params["k"],
            "measures": {"ma": params["a"], "mb": b}}


@pytest.mark.parametrize("algorithm,options", [
    ("bo", {**LIGHT, "initial_design": 8}),
    ("qd-bo", {"candidates": 128, "initial_design": 8}),
    ("qd-bo", {"acquisition": "sail", "sail_generations": 5, "initial_design": 8}),
    ("mo-bo", {**LIGHT, "initial_design": 8, "measures": ["ma"]}),
    ("optuna-tpe", {"n_startup_trials": 5}),
    ("optuna-cmaes", {"n_startup_trials": 5}),
    ("optuna-gp", {"n_startup_trials": 5}),
    ("optuna-nsga2", {"population_size": 8}),
])
def test_each_proposer_decodes_mixed_spaces(sqlite_url: str, algorithm: str, options: dict) -> None:
    stats = api.run(mixed_spec(algorithm, options), storage=sqlite_url, executor="inline")
    assert stats.finished == 16 and stats.counts["failed"] == 0  # `mixed` asserts the conditions
    rows = archive.open(sqlite_url).campaign("quad").evaluations()
    assert len({r["params"]["mode"] for r in rows}) >= 2


def test_bo_finds_the_optimum_of_a_smooth_function(sqlite_url: str) -> None:
    spec = quadratic_spec(search__algorithm="bo", search__options=LIGHT, search__budget=30, search__batch_size=3,
                          search__max_in_flight=3)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.best_objective > 0.99  # the maximum is 1 at (0.3, 0.6)


def test_qd_bo_fills_the_map_faster_than_map_elites(sqlite_url: str) -> None:
    common = {"search__budget": 40, "search__batch_size": 4, "search__max_in_flight": 4}
    qd = api.run(quadratic_spec(name="qdbo", search__algorithm="qd-bo", search__options={"candidates": 512},
                                **common), storage=sqlite_url, executor="inline")
    me = api.run(quadratic_spec(name="me", **common), storage=sqlite_url, executor="inline")
    assert qd.coverage >= 0.9 and qd.qd_score > 1.5 * me.qd_score


def test_bo_resume_proposes_what_an_uninterrupted_run_does(tmp_path: Path) -> None:
    common = {"search__algorithm": "bo", "search__options": LIGHT, "search__batch_size": 4,
              "search__max_in_flight": 4}
    one = f"sqlite:///{tmp_path / 'one.db'}"
    two = f"sqlite:///{tmp_path / 'two.db'}"
    api.run(quadratic_spec(search__budget=24, **common), storage=one, executor="inline")
    api.run(quadratic_spec(search__budget=16, **common), storage=two, executor="inline")
    api.resume("quad", storage=two, executor="inline", budget=24)
    a = [r["x"] for r in archive.open(one).campaign("quad").evaluations()]
    b = [r["x"] for r in archive.open(two).campaign("quad").evaluations()]
    assert np.allclose(a, b, atol=1e-9)


def test_pending_points_are_never_proposed_twice(sqlite_url: str) -> None:
    for algorithm, options in (("bo", LIGHT), ("qd-bo", {"candidates": 256})):
        spec = quadratic_spec(name=algorithm.replace("-", ""), search__algorithm=algorithm, search__options=options,
                              search__budget=28, search__batch_size=4, search__max_in_flight=12)
        api.run(spec, storage=sqlite_url, executor="inline")
        xs = [tuple(np.round(r["x"], 9)) for r in archive.open(sqlite_url).campaign(spec["name"]).evaluations()]
        assert max(Counter(xs).values()) == 1


def test_failed_points_are_not_proposed_again(sqlite_url: str) -> None:
    spec = quadratic_spec(evaluator={"kind": "python", "target": "tests.support.evaluators:flaky"},
                          search__algorithm="bo", search__options=LIGHT, search__budget=24, search__batch_size=4,
                          search__max_in_flight=4)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    rows = archive.open(sqlite_url).campaign("quad").evaluations()
    xs = [tuple(np.round(r["x"], 9)) for r in rows]
    assert stats.counts["failed"] > 0 and max(Counter(xs).values()) == 1


def test_portfolio_records_its_members_and_status_shows_them(tmp_path: Path) -> None:
    spec = quadratic_spec(name="pf", search__algorithm="portfolio", search__budget=40, search__batch_size=4,
                          search__max_in_flight=8,
                          search__options={"members": {"map-elites": {}, "random": {}, "qd-bo": {"candidates": 256}}})
    (tmp_path / "pf.yaml").write_text(yaml.safe_dump(spec))
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    assert atlas("run", str(tmp_path / "pf.yaml"), "--executor", "inline", "--storage", url,
                 cwd=tmp_path).returncode == 0
    counts = archive.open(url).campaign("pf").proposer_counts()
    assert set(counts) == {"map-elites", "random", "qd-bo"}
    assert sum(c["done"] for c in counts.values()) == 40
    shown = atlas("status", "pf", "--storage", url, cwd=tmp_path).stdout
    assert "qd-bo" in shown and "evaluations by proposer" in shown
    again = api.resume("pf", storage=url, executor="inline", budget=48)
    assert again.finished == 48


def test_atlas_front_draws_the_pareto_front(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    spec = quadratic_spec(search__algorithm="mo-bo", search__budget=16, search__batch_size=4,
                          search__options={**LIGHT, "measure_directions": {"mb": "minimize"}})
    api.run(spec, storage=url, executor="inline")
    done = atlas("front", "quad", "--out", str(tmp_path / "front.png"), "--storage", url, cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "front.png").read_bytes()[:4] == b"\x89PNG"


def test_pareto_mask() -> None:
    from archive.stats import non_dominated as pareto_mask

    pts = np.array([[1, 1], [2, 0], [0, 2], [0.5, 0.5], [2, 0], [1.5, -1]])
    # equal points do not dominate each other; (0.5, 0.5) and (1.5, -1) are dominated
    assert pareto_mask(pts).tolist() == [True, True, True, False, True, False]
