"""``max_fit_points`` (#15): past it, ``bo``, ``mo-bo`` and ``qd-bo`` fit their GPs on a
bounded, deterministic subset of the observations — the best (the non-dominated, every
elite) and a sample of the rest drawn from (seed, ask number) — and qLogNEI's (qLogNEHVI's)
baseline is the same subset; 0 fits them all. A resumed proposer fits and proposes what an
uninterrupted one does."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from archive.layout import CellLayout, MeasureAxis
from search.proposers import bo, build_proposer, gp, mo_bo
from search.proposers.base import Proposal, Proposer, ProposerContext
from search.space import SearchSpace
from search.spec import parse_spec
from tests.conftest import quadratic_spec
from tests.test_checkpoints import Campaign, FakeHistory

LIGHT = {"num_restarts": 2, "raw_samples": 32, "initial_design": 8}
SMALL_MAP = CellLayout.build("grid", [MeasureAxis("ma", 0.0, 1.0, 3), MeasureAxis("mb", 0.0, 1.0, 3)])


def build(algorithm: str, options: dict[str, Any], batch_size: int = 2) -> Proposer:
    space = SearchSpace(parse_spec(quadratic_spec()).space)
    return build_proposer(algorithm, ProposerContext(space=space, layout=SMALL_MAP, options=options,
                                                     batch_size=batch_size, seed=3))


def fed(algorithm: str, options: dict[str, Any], n: int) -> tuple[Proposer, Campaign]:
    """A proposer told ``n`` random points of the quadratic (measures: the point itself)."""
    p = build(algorithm, options)
    run = Campaign(p)
    obs = run.evaluate([Proposal(x) for x in np.random.default_rng(7).random((n, 2))])
    p.tell(obs)
    run.finished += obs
    return p, run


def fitted_inputs(model: Any) -> list[np.ndarray]:
    """Each GP's training inputs (n × d) of a fitted model: one, a batched multi-output one, or a list."""
    models = model.models if hasattr(model, "models") else [model]
    out = []
    for m in models:
        x = m.train_inputs[0].detach().cpu().numpy()
        out += list(x) if x.ndim == 3 else [x]
    return out


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[Any]]:
    """Every model fitted and every baseline passed to qLogNEI / qLogNEHVI, recorded."""
    seen: dict[str, list[Any]] = {"models": [], "baselines": []}
    for name in ("fit_gp", "fit_model_list"):
        original = getattr(gp, name)

        def record(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            model = _original(*args, **kwargs)
            seen["models"].append(model)
            return model
        monkeypatch.setattr(gp, name, record)
    for module, name in ((bo, "qLogNoisyExpectedImprovement"), (mo_bo, "qLogNoisyExpectedHypervolumeImprovement")):
        acqf = getattr(module, name)

        def baseline(*args: Any, _acqf: Any = acqf, **kwargs: Any) -> Any:
            seen["baselines"].append(kwargs["X_baseline"].detach().cpu().numpy())
            return _acqf(*args, **kwargs)
        monkeypatch.setattr(module, name, baseline)
    return seen


def rows_of(points: np.ndarray, table: np.ndarray) -> bool:
    """Whether every row of ``points`` is a row of ``table``."""
    return all((np.abs(table - p).max(axis=1) == 0).any() for p in np.atleast_2d(points))


ALGORITHMS = [("bo", LIGHT), ("mo-bo", {**LIGHT, "measures": ["ma"]}), ("qd-bo", {"initial_design": 8,
                                                                               "candidates": 64})]


@pytest.mark.parametrize(("algorithm", "options"), ALGORITHMS, ids=[a for a, _ in ALGORITHMS])
def test_the_model_is_fitted_on_at_most_max_fit_points(fits: dict[str, list[Any]], algorithm: str,
                                                       options: dict[str, Any]) -> None:
    p, _ = fed(algorithm, {**options, "max_fit_points": 16}, 40)
    assert len(p.ask(2)) == 2
    inputs = fitted_inputs(fits["models"][-1])
    assert inputs and all(len(x) == 16 for x in inputs)
    for baseline in fits["baselines"]:  # the acquisition improves on the same observations
        assert len(baseline) == 16 and rows_of(baseline, inputs[0])


@pytest.mark.parametrize(("algorithm", "options"), ALGORITHMS, ids=[a for a, _ in ALGORITHMS])
def test_zero_fits_every_observation(fits: dict[str, list[Any]], algorithm: str, options: dict[str, Any]) -> None:
    p, _ = fed(algorithm, {**options, "max_fit_points": 0}, 40)
    p.ask(2)
    assert all(len(x) == 40 for x in fitted_inputs(fits["models"][-1]))


def test_bo_keeps_the_best_observations(fits: dict[str, list[Any]]) -> None:
    p, run = fed("bo", {**LIGHT, "max_fit_points": 16}, 60)
    p.ask(2)
    inputs = fitted_inputs(fits["models"][-1])[0]
    by_fitness = sorted(run.finished, key=lambda o: -o.fitness)
    assert rows_of(np.stack([o.x for o in by_fitness[:8]]), inputs)  # the better half of the bound


@pytest.mark.parametrize("cap, n", [(5, 100), (16, 1000)])
def test_a_bounded_fit_keeps_the_better_half_rounded_up_then_a_sample_of_the_others(cap: int, n: int) -> None:
    """Past ``max_fit_points``, at least half the bound of the best, rounded up, then a
    sample of the others without replacement (docs/proposers.md, Bayesian details: a
    bounded fit; ``BoProposer.fit_rows``): of 100 ranked observations a bound of 5 keeps
    the 3 best and 2 of the other 97, not the 4th and 5th; a bound of 16 of 1000 the 8
    best and 8 from anywhere in the rest."""
    p = build("bo", {**LIGHT, "max_fit_points": cap})
    rows = p.fit_rows(-np.arange(float(n))[:, None]).tolist()  # observation i is the (i + 1)-th best
    best = -(-cap // 2)
    assert len(rows) == cap == len(set(rows)) and rows == sorted(rows)
    assert rows[:best] == list(range(best))
    assert rows != list(range(cap))  # the others are a sample, not the next best
    assert max(rows) > n // 10  # drawn from the whole rest


def test_mo_bo_keeps_every_non_dominated_observation(fits: dict[str, list[Any]]) -> None:
    p, run = fed("mo-bo", {**LIGHT, "measures": ["ma"], "max_fit_points": 16}, 60)
    p.ask(2)
    y = np.array([[o.fitness, o.measures[0]] for o in run.finished])
    front = [i for i in range(len(y)) if not ((y >= y[i]).all(axis=1) & (y > y[i]).any(axis=1)).any()]
    assert 2 <= len(front) <= 16
    assert rows_of(np.stack([run.finished[i].x for i in front]), fitted_inputs(fits["models"][-1])[0])


def test_qd_bo_keeps_every_elite(fits: dict[str, list[Any]]) -> None:
    p, run = fed("qd-bo", {"initial_design": 8, "candidates": 64, "max_fit_points": 16}, 60)
    p.ask(2)
    elites = FakeHistory(run.finished, []).elites()
    assert len(elites) == SMALL_MAP.cells  # 9 elites, within the bound, and fewer than the 60 points
    assert rows_of(np.stack([o.x for o in elites]), fitted_inputs(fits["models"][-1])[0])


def test_best_first_ranks_by_the_value_or_by_how_many_dominate() -> None:
    order, lead = gp.best_first(np.array([[1.0], [3.0], [2.0], [3.0]]))
    assert order.tolist() == [1, 3, 2, 0] and lead == 2
    y = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [2.0, -1.0], [0.4, 0.4]])
    order, lead = gp.best_first(y)  # dominated by 4, 0, 0, 0, 0 and 1 (only (0.5, 0.5)) others
    assert order.tolist() == [4, 1, 3, 2, 5, 0] and lead == 4


def test_a_resumed_proposer_fits_and_proposes_what_an_uninterrupted_one_does(fits: dict[str, list[Any]]) -> None:
    options = {**LIGHT, "max_fit_points": 10}
    run = Campaign(build("bo", options, batch_size=4))
    for _ in range(6):  # 8 Sobol points, then asks fitted on 8, then 10 of the 12, 16 and 20 observations
        run.step()
    in_flight = run.step(keep_in_flight=2)
    resumed = build("bo", options, batch_size=4)
    resumed.restore(run.proposer.state(), FakeHistory(run.finished, in_flight))
    for p in (run.proposer, resumed):
        p.tell(in_flight)
    for _ in range(2):
        a = run.proposer.ask(4)
        one = fitted_inputs(fits["models"][-1])[0]
        b = resumed.ask(4)
        two = fitted_inputs(fits["models"][-1])[0]
        assert len(one) == 10 and np.array_equal(one, two)
        assert [q.x.tolist() for q in a] == [q.x.tolist() for q in b]
        obs = run.evaluate(a)
        run.proposer.tell(obs)
        resumed.tell(obs)
