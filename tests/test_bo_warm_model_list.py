"""``qd-bo`` and ``mo-bo`` warm-start each outcome's GP from that outcome's fit at the
previous ask, capped at ``gp.WARM_FIT_MAXITER`` iterations, while the fit has at most
``gp.WARM_FIT_GROWTH`` times the observations of the outcome's last cold fit: an outcome
modelled for the first time, one whose data grew past that, or a start that does not fit
its model (another space), is fitted cold; the starts are part of the checkpoint, so a
resumed proposer fits and proposes what an uninterrupted one does, and a checkpoint
without them starts cold."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
import torch

from search.params import FloatParam
from search.proposers import build_proposer, checkpoint, gp
from search.proposers.base import Observation, Proposal, Proposer, ProposerContext
from search.space import SearchSpace
from tests.test_bo_bounded_fit import LIGHT, SMALL_MAP, build, fed
from tests.test_checkpoints import FakeHistory


@dataclasses.dataclass
class Fit:
    """One hyperparameter fit: the model's hyperparameters before and after, its iteration cap."""

    start: dict[str, np.ndarray]
    end: dict[str, np.ndarray]
    maxiter: int


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[Fit]:
    """Every hyperparameter fit, in order."""
    seen: list[Fit] = []
    original = gp._fit

    def record(mll: Any, maxiter: int = gp.FIT_MAXITER) -> None:
        start = gp.hyperparameters(mll.model)
        original(mll, maxiter)
        seen.append(Fit(start, gp.hyperparameters(mll.model), maxiter))
    monkeypatch.setattr(gp, "_fit", record)
    return seen


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# (algorithm, options, outcomes modelled: fitness and the measures ma, mb / fitness and ma)
WARM = [("qd-bo", {"initial_design": 8, "candidates": 64}, 3), ("mo-bo", {**LIGHT, "measures": ["ma"]}, 2)]
IDS = [a for a, _, _ in WARM]


@pytest.mark.parametrize(("algorithm", "options", "outcomes"), WARM, ids=IDS)
def test_a_warm_ask_fits_each_outcome_from_its_previous_fit(fits: list[Fit], algorithm: str,
                                                            options: dict[str, Any], outcomes: int) -> None:
    p, run = fed(algorithm, options, 20)
    proposals = p.ask(2)
    assert [f.maxiter for f in fits] == [gp.FIT_MAXITER] * outcomes  # the first fit of each outcome: cold
    p.tell(run.evaluate(proposals))
    p.ask(2)
    cold, warm = fits[:outcomes], fits[outcomes:]
    assert [f.maxiter for f in warm] == [gp.WARM_FIT_MAXITER] * outcomes
    for before, now in zip(cold, warm, strict=True):  # outcome i starts where outcome i's last fit ended
        assert same(now.start, before.end)
    assert {name.split(".")[0] for name in p.hyper} == {str(i) for i in range(outcomes)}
    assert p.cold_fits == dict.fromkeys(range(outcomes), 20)


@pytest.mark.parametrize(("algorithm", "options", "outcomes"), WARM, ids=IDS)
def test_a_fit_whose_data_grew_past_the_last_cold_fits_is_cold_again(fits: list[Fit], algorithm: str,
                                                                     options: dict[str, Any], outcomes: int) -> None:
    """Warm-started at every ask, a chain can stay in the optimum it found on few points."""
    p, run = fed(algorithm, options, 20)
    extra = iter(np.random.default_rng(9).random((2, 2)))
    for more in (0, 2, 0):  # asks on 20 (cold), 22 <= 1.2 × 20 (warm), 26 > 24 (cold), 28 <= 1.2 × 26 (warm)
        p.tell(run.evaluate(p.ask(2) + [Proposal(next(extra)) for _ in range(more)]))
    p.ask(2)
    caps = [f.maxiter for f in fits]
    assert caps == [c for c in (gp.FIT_MAXITER, gp.WARM_FIT_MAXITER, gp.FIT_MAXITER, gp.WARM_FIT_MAXITER)
                    for _ in range(outcomes)]
    assert p.cold_fits == dict.fromkeys(range(outcomes), 26)


def measured(p: Proposer, xs: np.ndarray, first: int, mb: float | None) -> list[Observation]:
    """The quadratic at ``xs``, measures (x0, x1), or (x0, ``mb``) when ``mb`` is given."""
    out = []
    for i, x in enumerate(xs):
        m = np.array([x[0], x[1] if mb is None else mb])
        fitness = 1 - (x[0] - 0.3) ** 2 - (x[1] - 0.6) ** 2
        out.append(Observation(first + i, first + i, x, p.ctx.space.decode(x), fitness, m,
                               int(SMALL_MAP.index_of(m[None])[0]), {}))
    return out


def test_an_outcome_modelled_for_the_first_time_is_fitted_cold(fits: list[Fit]) -> None:
    """mo-bo leaves out a measure that has not varied: once it varies, its GP starts cold, the others warm."""
    p = build("mo-bo", {**LIGHT, "measures": ["ma", "mb"]})
    rng = np.random.default_rng(5)
    p.tell(measured(p, rng.random((16, 2)), 0, mb=0.25))
    p.ask(2)
    assert [f.maxiter for f in fits] == [gp.FIT_MAXITER] * 2  # fitness and ma; mb constant, not modelled
    first = list(fits)
    p.tell(measured(p, rng.random((3, 2)), 16, mb=None))  # mb varies now; 19 <= 1.2 × 16 observations
    p.ask(2)
    assert [f.maxiter for f in fits[2:]] == [gp.WARM_FIT_MAXITER, gp.WARM_FIT_MAXITER, gp.FIT_MAXITER]
    assert same(fits[2].start, first[0].end) and same(fits[3].start, first[1].end)
    assert not same(fits[4].start, first[0].end) and not same(fits[4].start, first[1].end)
    assert {name.split(".")[0] for name in p.hyper} == {"0", "1", "2"}
    assert p.cold_fits == {0: 16, 1: 16, 2: 19}


def test_a_start_that_does_not_fit_the_model_is_ignored_whole(fits: list[Fit]) -> None:
    """Hyperparameters of another space (other shapes) start no fit, not even those whose
    shapes happen to fit (the noise, the output scale): the fit is cold, the same as no start."""
    cpu = torch.device("cpu")
    rng = np.random.default_rng(0)
    u = rng.random((20, 3))
    x3, x2 = gp.tensor(u, cpu), gp.tensor(u[:, :2], cpu)
    y = gp.tensor(gp.standardise(np.stack([np.sin(4 * u[:, 0]), u[:, 1]], axis=1) + 0.1 * rng.random((20, 2)))[0],
                  cpu)
    other = gp.hyperparameters(gp.fit_model_list(x3, y[:, :1], []).models[0])
    del fits[:]
    torch.manual_seed(0)
    ignored = gp.fit_model_list(x2, y, [], starts=[other, other])
    shapes = [np.shape(p) for _, p in ignored.models[0].named_parameters()]
    assert 0 < sum(np.shape(v) == s for v, s in zip(other.values(), shapes, strict=True)) < len(shapes)
    torch.manual_seed(0)
    cold = gp.fit_model_list(x2, y, [])
    assert [f.maxiter for f in fits] == [gp.FIT_MAXITER] * 4
    for a, b in zip(ignored.models, cold.models, strict=True):
        assert same(gp.hyperparameters(a), gp.hyperparameters(b))
    del fits[:]
    gp.fit_model_list(x2, y, [], starts=[gp.hyperparameters(m) for m in cold.models])
    assert [f.maxiter for f in fits] == [gp.WARM_FIT_MAXITER] * 2


def test_a_checkpoint_of_another_space_starts_cold(fits: list[Fit]) -> None:
    p, _ = fed("qd-bo", {"initial_design": 8, "candidates": 64}, 20)
    p.ask(2)
    wide = SearchSpace({"a": FloatParam(type="float", low=0.0, high=1.0, size=3)})
    other = build_proposer("qd-bo", ProposerContext(space=wide, layout=SMALL_MAP, options={"initial_design": 8,
                                                                                           "candidates": 64},
                                                    batch_size=2, seed=3))
    other.restore(p.state(), FakeHistory(measured(other, np.random.default_rng(2).random((20, 3)), 0, None), []))
    assert other.hyper.keys() == p.hyper.keys()
    del fits[:]
    other.ask(2)
    assert [f.maxiter for f in fits] == [gp.FIT_MAXITER] * 3


@pytest.mark.parametrize(("algorithm", "options", "outcomes"), WARM, ids=IDS)
def test_a_resumed_proposer_fits_warm_and_proposes_what_an_uninterrupted_one_does(
        fits: list[Fit], algorithm: str, options: dict[str, Any], outcomes: int) -> None:
    original, run = fed(algorithm, options, 30)
    run.step()  # fitted cold on 30
    in_flight = run.step(keep_in_flight=1)  # warm on 32
    resumed = build(algorithm, options)
    resumed.restore(original.state(), FakeHistory(run.finished, in_flight))
    assert resumed.cold_fits == original.cold_fits == dict.fromkeys(range(outcomes), 30)
    for p in (original, resumed):
        p.tell(in_flight)
    for _ in range(2):  # warm on 34 and 36
        done = len(fits)
        a = original.ask(2)
        mine = fits[done:]
        b = resumed.ask(2)
        theirs = fits[done + len(mine):]
        assert [q.x.tolist() for q in a] == [q.x.tolist() for q in b]
        assert len(mine) == len(theirs) == outcomes
        assert all(f.maxiter == g.maxiter == gp.WARM_FIT_MAXITER for f, g in zip(mine, theirs, strict=True))
        assert all(same(f.start, g.start) for f, g in zip(mine, theirs, strict=True))
        obs = run.evaluate(a)
        original.tell(obs)
        resumed.tell(obs)


@pytest.mark.parametrize(("algorithm", "options", "outcomes"), WARM, ids=IDS)
def test_a_checkpoint_without_starts_is_read_and_fits_cold(fits: list[Fit], algorithm: str,
                                                           options: dict[str, Any], outcomes: int) -> None:
    """What qd-bo and mo-bo wrote before their fits were warm-started: the counts, no hyperparameters."""
    p, run = fed(algorithm, options, 20)
    p.restore(checkpoint.dumps(algorithm, 2, {"asks": 3, "sobol_drawn": 8}), FakeHistory(run.finished, []))
    assert p.asks == 3 and p.hyper == {} and p.cold_fits == {}
    p.ask(2)
    assert [f.maxiter for f in fits] == [gp.FIT_MAXITER] * outcomes
    assert {name.split(".")[0] for name in p.hyper} == {str(i) for i in range(outcomes)}
