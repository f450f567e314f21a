"""Campaigns on which a proposer's search degenerates still run to budget, and resume:

- CMA-ES (``cma-mae``, ``cma-me``) restarts from ``x0`` when the archive holds no elite
  (CMA-MAE: no fitness beats ``threshold_min``, by default ``qd_offset``; CMA-ME: every
  member failed), where pyribs would sample a restart point from the empty archive;
- ``bo`` and ``mo-bo`` on a space of categoricals only score the enumerated choices
  (there is no continuous coordinate left to optimise), new ones first, repeats once all
  are taken; points in flight stay pending for every point of a batch (qLogNEI keeps
  them in its baseline, not in ``X_pending``), in a mixed space too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import archive
from archive.layout import CellLayout, MeasureAxis
from search import api
from search.proposers import build_proposer
from search.proposers.acquisition import ConditionalInputs
from search.proposers.base import Observation, ProposerContext
from search.space import SearchSpace
from search.spec import parse_spec
from tests.test_bo_mixed_space import SPACE, observations
from tests.test_checkpoints import context

HERE = "tests.test_proposer_degenerate"
SCORES = {"a": 0.1, "b": 0.5, "c": 0.9}
RESTARTED = "restarted from x0"


def positive_loss(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A loss >= 1 to minimise: every fitness (−loss) is below the default qd_offset 0."""
    x = params["x"]
    return {"objective": 1.0 + x[0] ** 2 + x[1] ** 2, "measures": {"m0": x[0], "m1": x[1]}}


def negative_square(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """−x² of an int x in {0, 1}: no fitness above 0, and CMA-ES soon sees a flat generation."""
    x = params["x"]
    return {"objective": -float(x) ** 2, "measures": {"m0": x, "m1": -x}}


def choice_score(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A score per choice of ``c`` (and of ``d`` when the space has it)."""
    s = SCORES[params["c"]] + (SCORES[params["d"]] if "d" in params else 0.0)
    return {"objective": s, "measures": {"m0": s / 2, "m1": -s / 2}}


def spec(name: str, evaluator: str, space: dict[str, Any], search: dict[str, Any], **extra: Any) -> dict[str, Any]:
    measures = [{"name": "m0", "low": -1.0, "high": 1.0, "bins": 10},
                {"name": "m1", "low": -1.0, "high": 1.0, "bins": 10}]
    return {"name": name, "evaluator": {"kind": "python", "target": f"{HERE}:{evaluator}"}, "space": space,
            "measures": measures, "search": {"batch_size": 8, "max_in_flight": 8, "seed": 0, **search}, **extra}


def mae_spec(budget: int) -> dict[str, Any]:
    """CMA-MAE minimising ``positive_loss``, restarting every 5 generations (40 evaluations):
    the default rule first restarts after 432, when CMA-ES converges."""
    return spec("mae", "positive_loss", {"x": {"type": "float", "low": -1.0, "high": 1.0, "size": 2}},
                {"algorithm": "cma-mae", "budget": budget, "options": {"restart_rule": 5}},
                objective={"name": "loss", "direction": "minimize"})


def evaluated(url: str, name: str) -> list[dict[str, Any]]:
    with archive.open(url) as atlas:
        return atlas.campaign(name).evaluations()


# -- CMA-ES on an empty archive ----------------------------------------------------
def test_cma_mae_on_a_minimised_positive_loss_runs_and_resumes(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.ribs"):
        first = api.run(mae_spec(48), storage=url, executor="inline")
        assert (first.created, first.finished, first.counts.get("failed", 0)) == (48, 48, 0)
        assert RESTARTED in caplog.text and "threshold_min (0)" in caplog.text
        resumed = api.resume("mae", storage=url, executor="inline", budget=100)
    assert (resumed.created, resumed.finished, resumed.counts.get("failed", 0)) == (100, 100, 0)
    assert resumed.elites > 0 and resumed.best_objective >= 1.0


def test_cma_mae_resumed_in_steps_proposes_what_one_run_does(tmp_path: Path) -> None:
    """The checkpoint of an empty threshold archive and of CMA-ES restarted at x0 resumes exactly."""
    one, steps = f"sqlite:///{tmp_path / 'one.db'}", f"sqlite:///{tmp_path / 'steps.db'}"
    api.run(mae_spec(96), storage=one, executor="inline")
    for budget in (40, 64, 96):  # 40: stopped right after the first restart
        assert api.run(mae_spec(budget), storage=steps, executor="inline").finished == budget
    assert [r["params"] for r in evaluated(one, "mae")] == [r["params"] for r in evaluated(steps, "mae")]


def test_cma_mae_on_a_single_int_with_no_positive_objective_runs(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    s = spec("int", "negative_square", {"x": {"type": "int", "low": 0, "high": 1}},
             {"algorithm": "cma-mae", "budget": 100})
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.ribs"):
        stats = api.run(s, storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")
    assert (stats.created, stats.finished) == (100, 100) and RESTARTED in caplog.text


@pytest.mark.parametrize("algorithm", ["cma-me", "cma-mae"])
def test_a_generation_that_all_failed_restarts_cma_es_from_x0(algorithm: str) -> None:
    """An always-restarting rule (every generation) on an archive still empty: CMA-ES goes
    back to x0 with its first step size, and counts the restart."""
    proposer = build_proposer(algorithm, context({"restart_rule": 1, "x0": [0.2, 0.7]}))
    emitter = proposer.emitters[0]
    asked = proposer.ask(4)
    proposer.tell([Observation(k, k, p.x, {}, None, None, None, dict(p.meta), algorithm)
                   for k, p in enumerate(asked)])
    assert proposer.archive.empty and emitter.restarts == 1 and emitter.itrs == 1
    assert np.array_equal(emitter._opt.mean, [0.2, 0.7]) and emitter._opt.sigma == emitter._opt.sigma0
    assert len(proposer.ask(4)) == 4


# -- BO over categoricals only -------------------------------------------------------
CATEGORICAL = {"type": "categorical", "choices": ["a", "b", "c"]}


@pytest.mark.parametrize(("algorithm", "space"), [
    ("bo", {"c": CATEGORICAL}),
    ("bo", {"c": CATEGORICAL, "d": CATEGORICAL}),
    ("mo-bo", {"c": CATEGORICAL}),
], ids=["bo-one", "bo-two", "mo-bo-one"])
def test_bo_on_categoricals_only_runs_past_the_number_of_choices(tmp_path: Path, algorithm: str,
                                                                 space: dict[str, Any]) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    s = spec("cat", "choice_score", space, {"algorithm": algorithm, "budget": 14, "batch_size": 2,
                                            "max_in_flight": 2})
    stats = api.run(s, storage=url, executor="inline")
    assert (stats.created, stats.finished, stats.counts.get("failed", 0)) == (14, 14, 0)
    asks: dict[int, list[str]] = {}
    for row in evaluated(url, "cat"):
        if row["proposal"]["source"] == algorithm:  # not the Sobol design's
            asks.setdefault(row["proposal"]["ask"], []).append(str(sorted(row["params"].items())))
    assert len(asks) >= 4 and all(len(set(ask)) == len(ask) == 2 for ask in asks.values())  # no point twice
    if len(space) == 1:  # every choice tried, the best found
        assert {r["params"]["c"] for r in evaluated(url, "cat")} == set(SCORES)
        assert stats.best_objective == pytest.approx(0.9)


def test_bo_on_categoricals_only_skips_pending_choices_until_none_is_left() -> None:
    """Points in flight (and failed ones) are pending: not proposed while another is left."""
    space = SearchSpace(parse_spec(spec("cat", "choice_score", {"c": CATEGORICAL},
                                        {"algorithm": "bo", "budget": 10})).space)
    layout = CellLayout.build("grid", [MeasureAxis("m0", -1.0, 1.0, 10), MeasureAxis("m1", -1.0, 1.0, 10)])
    proposer = build_proposer("bo", ProposerContext(space=space, layout=layout, options={"initial_design": 3},
                                                    batch_size=2, seed=0))
    points = {c: space.encode({"c": c}) for c in SCORES}
    proposer.tell([Observation(k, k, x, {"c": c}, SCORES[c], np.zeros(2), 0, {}, "bo")
                   for k, (c, x) in enumerate(points.items())])
    proposer.book.propose(points["c"])  # the best choice, in flight
    first = [space.decode(p.x)["c"] for p in proposer.ask(2)]
    assert sorted(first) == ["a", "b"]
    second = [space.decode(p.x)["c"] for p in proposer.ask(2)]  # every choice in flight: repeats
    assert len(second) == 2 and set(second) <= set(SCORES)


def test_bo_in_a_mixed_space_keeps_points_in_flight_pending_for_every_point_of_a_batch(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """qLogNEI folds its pending points into its baseline (its ``X_pending`` is None): the
    point in flight must still be pending when the batch's later points are chosen."""
    seen: list[torch.Tensor] = []
    real = ConditionalInputs.set_X_pending

    def record(self: ConditionalInputs, X_pending: torch.Tensor | None = None) -> None:
        seen.append(X_pending)
        real(self, X_pending)

    monkeypatch.setattr(ConditionalInputs, "set_X_pending", record)
    proposer = build_proposer("bo", ProposerContext(space=SPACE, layout=context({}).layout, batch_size=3, seed=0,
                                                    options={"num_restarts": 2, "raw_samples": 32}))
    proposer.tell(observations(12))
    in_flight = observations(13)[-1].x
    proposer.book.propose(in_flight)
    assert len(proposer.ask(3)) == 3 and len(seen) == 2  # the 2nd and 3rd points' pending points
    row = torch.as_tensor(proposer.encoder.to_model(in_flight[None]), dtype=torch.double)
    assert all((pending == row).all(dim=-1).any() and len(pending) == k + 2 for k, pending in enumerate(seen))
