"""Edges of the Bayesian proposers found by a bug hunt:

- no proposal of ``bo``, ``mo-bo`` or ``qd-bo`` repeats a point evaluated, in flight, or
  chosen earlier in its batch (within ``DUPLICATE_TOL`` in the unit cube), and when every
  candidate does, a fresh Sobol point is proposed;
- ``bo`` passes a batch's earlier points to the acquisition as pending (``set_X_pending``)
  in a continuous space too;
- objectives of any finite magnitude (1e300) are fitted, and an ask whose fit still fails
  proposes Sobol points with one logged warning instead of stopping the campaign;
- ``optuna-gp`` takes an ``int`` too wide for its sampler's enumeration as a float, rounded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement

import archive
from archive.layout import CellLayout, MeasureAxis
from search import api
from search.params import FloatParam, IntParam
from search.proposers import acquisition, build_proposer, gp, qd_bo
from search.proposers.base import Observation, Proposer, ProposerContext
from search.space import SearchSpace
from tests.test_checkpoints import FakeHistory

LAYOUT = CellLayout.build("grid", [MeasureAxis("m0", 0.0, 1.0, 5), MeasureAxis("m1", 0.0, 1.0, 5)])
LINE = SearchSpace({"x": FloatParam(type="float", low=0.0, high=1.0)})
HUGE = SearchSpace({"h": FloatParam(type="float", low=1.0, high=1.0e300, log=True)})
WIDE = SearchSpace({"k": IntParam(type="int", low=1, high=4_000_000_000_000_000_000, log=True)})
Outcome = Callable[[dict[str, Any]], tuple[float, list[float]]]


def proposer(algorithm: str, space: SearchSpace, options: dict[str, Any] | None = None,
             batch_size: int = 4) -> Proposer:
    ctx = ProposerContext(space=space, layout=LAYOUT, options=options or {}, batch_size=batch_size, seed=0)
    return build_proposer(algorithm, ctx)


def minus_x(params: dict[str, Any]) -> tuple[float, list[float]]:
    """Objective −x, measures (x, 0.5): the best point is a corner of the cube."""
    return -params["x"], [params["x"], 0.5]


def campaign(p: Proposer, outcome: Outcome, budget: int) -> list[Observation]:
    """Ask batches of ``batch_size`` and tell each before the next, as the scheduler does
    with ``max_in_flight`` = batch; every observation, in order."""
    space, seen = p.ctx.space, []
    while len(seen) < budget:
        told = []
        for proposal in p.ask(min(p.ctx.batch_size, budget - len(seen))):
            x = np.asarray(proposal.x, dtype=float)
            params = proposal.params or space.decode(x)
            fitness, measures = outcome(params)
            told.append(Observation(len(seen) + len(told), len(seen) + len(told), x, params, fitness,
                                    np.array(measures), int(LAYOUT.index_of(np.array([measures]))[0]),
                                    dict(proposal.meta), p.name))
        p.tell(told)
        seen += told
    return seen


def repeats(points: list[np.ndarray], tol: float = 1e-4) -> list[int]:
    """The indices of the points that repeat an earlier one: within ``tol`` in every coordinate."""
    xs = np.stack(points)
    return [i for i in range(1, len(xs)) if (np.abs(xs[:i] - xs[i]).max(axis=1) <= tol).any()]


# -- no repeated proposals ----------------------------------------------------------------
@pytest.mark.parametrize(("algorithm", "options"), [
    ("qd-bo", {}),
    ("qd-bo", {"acquisition": "sail", "sail_generations": 5}),
    ("bo", {}),
], ids=["qd-bo-ejie", "qd-bo-sail", "bo"])
def test_no_proposal_repeats_a_point_evaluated_or_in_its_batch(algorithm: str, options: dict[str, Any]) -> None:
    """Objective −x over x in [0, 1], budget 16, batch 4: every model proposal was x = 0
    (qd-bo), or two or three of a batch were (bo)."""
    seen = campaign(proposer(algorithm, LINE, options), minus_x, 16)
    assert repeats([o.x for o in seen]) == []
    assert sum(o.meta["source"] == algorithm for o in seen) == 12  # the model's, after 4 Sobol points


def test_a_batch_point_that_every_restart_repeats_is_a_fresh_sobol_point() -> None:
    encoder = gp.Encoder(LINE)
    taken = np.array([[0.0], [0.5]])
    ends = np.array([[0.0], [0.5 + acquisition.DUPLICATE_TOL / 2], [0.0]])
    point = acquisition.pick(ends, np.array([3.0, 2.0, 1.0]), taken, encoder, np.random.default_rng(0))
    assert not acquisition.duplicates(point[None], taken)[0] and 0.0 <= point[0] <= 1.0
    # one fresh end: the next-best acquisition value, not a Sobol point
    ends[2, 0] = 0.7
    assert acquisition.pick(ends, np.array([3.0, 2.0, 1.0]), taken, encoder, np.random.default_rng(0))[0] == 0.7


def test_points_closer_than_1e_4_in_every_coordinate_are_one_point() -> None:
    """A point within 1e-4 in every coordinate of the unit cube of one evaluated, in flight
    or chosen repeats it (docs/proposers.md, Bayesian details; acquisition.py's
    ``DUPLICATE_TOL``): of restart ends 5e-5 and 2e-4 from a taken point, the better, a
    repeat, is passed over for the other; 2e-4 apart in one coordinate is another point."""
    encoder = gp.Encoder(SearchSpace({"x": FloatParam(type="float", low=0.0, high=1.0),
                                      "y": FloatParam(type="float", low=0.0, high=1.0)}))
    taken = np.array([[0.5, 0.5]])
    near, apart = [0.5 + 5e-5, 0.5 - 5e-5], [0.5 + 5e-5, 0.5 + 2e-4]
    assert acquisition.duplicates(np.array([near, apart]), taken).tolist() == [True, False]
    ends = np.array([near, apart])
    assert acquisition.pick(ends, np.array([2.0, 1.0]), taken, encoder, np.random.default_rng(0)).tolist() == apart


def test_qd_bo_falls_back_to_fresh_points_when_every_candidate_repeats_one(monkeypatch: pytest.MonkeyPatch) -> None:
    qd = proposer("qd-bo", LINE, {"candidates": 16})
    campaign(qd, minus_x, 4)
    monkeypatch.setattr(qd_bo, "duplicates", lambda points, taken: np.ones(len(points), dtype=bool))
    batch = [p.x for p in qd.ask(4)]  # every candidate and refinement "repeats": Sobol points that do not
    assert repeats(list(qd.book.x) + batch) == []


def test_bo_passes_its_batch_points_as_pending_in_a_continuous_space(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[torch.Tensor] = []
    real = qLogNoisyExpectedImprovement.set_X_pending

    def record(self: qLogNoisyExpectedImprovement, X_pending: torch.Tensor | None = None) -> None:
        if X_pending is not None:  # its constructor sets None
            seen.append(X_pending)
        real(self, X_pending)

    monkeypatch.setattr(qLogNoisyExpectedImprovement, "set_X_pending", record)
    bo = proposer("bo", LINE, {"num_restarts": 2, "raw_samples": 32})
    campaign(bo, minus_x, 4)
    bo.book.propose(np.array([0.25]))  # in flight
    batch = [p.x for p in bo.ask(3)]
    assert len(seen) == 2  # the 2nd and 3rd points': the in-flight one and the points before
    for k, pending in enumerate(seen):
        assert len(pending) == k + 2 and pending[0, 0] == 0.25
        np.testing.assert_allclose(pending[1:, 0].numpy(), np.stack(batch[: k + 1])[:, 0])


# -- objectives of any magnitude ---------------------------------------------------------
def test_outcomes_of_any_finite_magnitude_standardise_and_map_back() -> None:
    y = np.array([[1.0, 0.5, 1e-300], [1e300, 0.5, 3e-300], [2e299, 0.5, 2e-300]])
    z, scale = gp.standardise(y)
    assert np.isfinite(z).all()
    np.testing.assert_allclose(z[:, [0, 2]].std(axis=0, ddof=1), 1.0)
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    assert (z[:, 1] == 0).all()  # a constant column: centred, not scaled
    np.testing.assert_allclose(scale.mean_of(z) / scale.scale, y / scale.scale, atol=1e-12)  # float64's resolution
    assert np.isfinite(scale.std_of(np.ones(3))).all()


def huge(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """The campaign's evaluator: objective h (up to 1e300), measures its decade's share and
    the rest."""
    share = math.log10(params["h"]) / 300
    return {"objective": params["h"], "measures": {"m0": share, "m1": 1 - share}}


@pytest.mark.parametrize(("algorithm", "budget", "batch"), [("bo", 12, 4), ("mo-bo", 6, 2)])
def test_a_campaign_fits_objectives_near_the_largest_float(sqlite_url: str, algorithm: str, budget: int, batch: int,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """h over [1, 1e300] (log), objective h: ``bo`` raised _LinAlgError in ``linalg.eigh``
    in every ask, and on every resume."""
    spec = {"name": "huge", "evaluator": {"kind": "python", "target": "tests.test_bayes_edges:huge"},
            "space": {"h": {"type": "float", "low": 1.0, "high": 1.0e300, "log": True}},
            "objective": {"name": "objective", "direction": "maximize"},
            "measures": [{"name": "m0", "low": 0.0, "high": 1.0, "bins": 5},
                         {"name": "m1", "low": 0.0, "high": 1.0, "bins": 5}],
            "search": {"algorithm": algorithm, "budget": budget, "batch_size": batch, "max_in_flight": batch,
                       "seed": 0, "options": {"num_restarts": 2, "raw_samples": 32}}}
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.bo"):
        stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == budget and stats.counts["failed"] == 0
    with archive.open(sqlite_url) as atlas:
        rows = atlas.campaign("huge").evaluations()
    model = [r["proposal"] for r in rows if r["proposal"]["source"] == algorithm]
    assert len(model) >= budget - 4 and not any("fallback" in m for m in model)  # fitted, not the fallback
    assert not [r for r in caplog.records if r.name == "entropy_atlas.bo"]  # the spec's own warnings aside


def test_a_fit_that_fails_falls_back_to_sobol_points_with_one_warning(monkeypatch: pytest.MonkeyPatch,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    bo = proposer("bo", HUGE, {"num_restarts": 2, "raw_samples": 32})
    campaign(bo, lambda p: (p["h"], [0.5, 0.5]), 4)
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        raise torch._C._LinAlgError("linalg.eigh: The algorithm failed to converge")

    monkeypatch.setattr(gp, "fit_gp", broken)
    sobol_before = bo.sobol_drawn
    with caplog.at_level(logging.WARNING, logger="entropy_atlas.bo"):
        batch = bo.ask(4)
    assert len(batch) == 4 and all(p.meta["source"] == "sobol" for p in batch)
    assert batch[0].meta["fallback"] == "_LinAlgError" and bo.sobol_drawn == sobol_before + 4
    assert len(caplog.records) == 1 and "_LinAlgError" in caplog.records[0].getMessage()
    bo.ask(4)
    assert len(calls) == 2  # the next ask tries the model again


# -- optuna-gp and wide ints -------------------------------------------------------------
def test_optuna_gp_takes_an_int_too_wide_to_enumerate_as_a_rounded_float() -> None:
    """k in [1, 4e18] (log): GPSampler raised "array is too big" in every ask."""
    options = {"n_startup_trials": 4}
    gp_sampler = proposer("optuna-gp", WIDE, options)
    seen = campaign(gp_sampler, lambda p: (-abs(np.log(p["k"]) - 20.0), [0.5, 0.5]), 12)
    ks = [o.params["k"] for o in seen]
    assert all(type(k) is int and 1 <= k <= 4_000_000_000_000_000_000 for k in ks)
    # a resumed study is rebuilt from the archive's ints, and asks on
    resumed = proposer("optuna-gp", WIDE, options)
    resumed.restore(gp_sampler.state(), FakeHistory(seen, []))
    assert len(resumed.study.trials) == 12 and len(resumed.ask(4)) == 4


def test_an_int_within_the_limit_stays_an_int_for_every_sampler() -> None:
    narrow = SearchSpace({"k": IntParam(type="int", low=0, high=2**16 - 1)})
    for algorithm, space, as_float in (("optuna-gp", narrow, False), ("optuna-gp", WIDE, True),
                                       ("optuna-tpe", WIDE, False)):
        p = proposer(algorithm, space)
        dist = p._flat({"k": 7})[1]["k"]
        assert type(dist).__name__ == ("FloatDistribution" if as_float else "IntDistribution")


def test_mo_bo_infers_its_reference_point_below_every_outcome_it_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hypervolume's reference point is inferred from the outcomes fitted (mo_bo.py's
    docstring; docs/proposers.md, a bounded fit: BoTorch's ``infer_reference_point``, the
    nadir less a margin), so it lies below each outcome's every fitted value and every
    observed point adds hypervolume. (At the outcomes' maximum, none would, and no test
    saw it.)"""
    from search.proposers import mo_bo

    plane = SearchSpace({"x": FloatParam(type="float", low=0.0, high=1.0),
                         "y": FloatParam(type="float", low=0.0, high=1.0)})
    seen: list[tuple[list[float], list[float]]] = []
    real = mo_bo.qLogNoisyExpectedHypervolumeImprovement

    def spy(model: Any, ref_point: list[float], **kwargs: Any) -> Any:
        fitted = [m.outcome_transform.untransform(m.train_targets.unsqueeze(-1))[0] for m in model.models]
        seen.append((list(ref_point), [float(y.min()) for y in fitted]))
        return real(model, ref_point=ref_point, **kwargs)

    monkeypatch.setattr(mo_bo, "qLogNoisyExpectedHypervolumeImprovement", spy)
    mo = proposer("mo-bo", plane, {"num_restarts": 2, "raw_samples": 32, "mc_samples": 8})
    campaign(mo, lambda q: (q["x"] - q["y"], [q["x"], q["y"]]), 12)
    assert len(seen) == 1  # the ask at 8 evaluated (the first 6 are Sobol points)
    for ref, lows in seen:
        assert len(ref) == len(lows) == 3 and all(r < low for r, low in zip(ref, lows, strict=True)), (ref, lows)


# -- outcomes that do not vary -----------------------------------------------------------
def record_acquisitions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of outcomes of each acquisition mo-bo builds from now on: the hypervolume's
    (its reference point's length), or 1 for qLogNEI."""
    from search.proposers import bo, mo_bo

    built: list[int] = []
    hvi, nei = mo_bo.qLogNoisyExpectedHypervolumeImprovement, bo.qLogNoisyExpectedImprovement

    def hypervolume(*args: Any, ref_point: list[float], **kwargs: Any) -> Any:
        built.append(len(ref_point))
        return hvi(*args, ref_point=ref_point, **kwargs)

    def improvement(*args: Any, **kwargs: Any) -> Any:
        built.append(1)
        return nei(*args, **kwargs)

    monkeypatch.setattr(mo_bo, "qLogNoisyExpectedHypervolumeImprovement", hypervolume)
    monkeypatch.setattr(bo, "qLogNoisyExpectedImprovement", improvement)
    return built


def measure_constant_until(evaluations: int) -> Outcome:
    """Objective −(x − 0.3)², measures x and a second one that is 0.5 for the first
    ``evaluations`` evaluations, then 0.5 + 0.3 sin 5x."""
    seen = [0]

    def outcome(params: dict[str, Any]) -> tuple[float, list[float]]:
        x, seen[0] = params["x"], seen[0] + 1
        return -(x - 0.3) ** 2, [x, 0.5 if seen[0] <= evaluations else 0.5 + 0.3 * math.sin(5 * x)]

    return outcome


@pytest.mark.parametrize(("outcome", "built"), [
    (measure_constant_until(10**9), [2, 2, 2]),
    (measure_constant_until(6), [2, 2, 3]),
    (lambda p: (-(p["x"] - 0.3) ** 2, [0.5, 0.5]), [1, 1, 1]),
    (lambda p: (1.0, [0.5, 0.5]), [1, 1, 1]),
], ids=["measure-constant", "measure-varies-later", "measures-constant", "all-constant"])
def test_mo_bo_models_only_the_outcomes_that_vary(monkeypatch: pytest.MonkeyPatch, outcome: Outcome,
                                                  built: list[int]) -> None:
    """A measure that every evaluation gave the same value: its reference point was 1e-8
    below it and its posterior draws ±0.005 around it, so the hypervolume improvement was
    that noise's, in one more dimension (asks 2–3× slower). Left out until it varies; with
    one varying outcome left (or none), qLogNEI of it (of the fitness)."""
    acquisitions = record_acquisitions(monkeypatch)
    mo = proposer("mo-bo", LINE, {"num_restarts": 2, "raw_samples": 32, "mc_samples": 8}, batch_size=2)
    seen = campaign(mo, outcome, 10)
    assert acquisitions == built  # asks at 4, 6 and 8 evaluated: the first two Sobol
    assert repeats([o.x for o in seen]) == [] and sum(o.meta["source"] == "mo-bo" for o in seen) == 6
