"""The default ``map-elites``: IsoLine arms at several σ_iso, a bandit sharing each batch
out by their gain to the QD-score; what explicit options still mean; exact resume of the
bandit; version-1 checkpoints still read."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from ribs.emitters import GaussianEmitter

import archive
from archive.layout import CellLayout, MeasureAxis
from search import api
from search.params import FloatParam
from search.proposers import build_proposer
from search.proposers.base import Observation, OptionError, ProposerContext
from search.proposers.checkpoint import CheckpointError
from search.proposers.guided_lines import BetterNeighbourLineEmitter, FrontierLineEmitter
from search.proposers.ribs_emitters import (
    ADAPTIVE_SIGMAS,
    EXPLORE,
    FILLING_SIGMAS,
    ISO_SIGMA_BEFORE_V4,
    REFINING_ARMS,
    SHARPNESS,
)
from search.space import SearchSpace
from tests.conftest import quadratic_spec
from tests.test_checkpoints import Campaign, FakeHistory, context, split_and_resume
from tests.test_iso_line_resume import as_version


# -- what the options build ---------------------------------------------------------
def test_the_default_is_adaptive_and_explicit_options_keep_their_meaning() -> None:
    default = build_proposer("map-elites", context({}))
    assert default.adaptive and default.variation == "adaptive"
    assert [type(e) for e in default.emitters] == ([FrontierLineEmitter] * len(FILLING_SIGMAS)
                                                   + [BetterNeighbourLineEmitter] * len(REFINING_ARMS))
    arms = [(float(e.iso_sigma), float(e.line_sigma)) for e in default.emitters]
    assert arms == [(s, 0.5) for s in FILLING_SIGMAS] + list(REFINING_ARMS)
    assert all(line < 0.5 for _, line in REFINING_ARMS)  # the refining arms take short line steps
    assert default.random_left == 4  # random_init = batch_size, as before

    for options in ({"iso_sigma": 0.05}, {"line_sigma": 0.3}, {"variation": "iso_line"}, {"emitters": 2}):
        single = build_proposer("map-elites", context(options))
        assert not single.adaptive and single.variation == "iso_line", options
        expected = [options.get("iso_sigma", 0.01)] * options.get("emitters", 1)
        assert [float(e.iso_sigma) for e in single.emitters] == expected
        assert {float(e.line_sigma) for e in single.emitters} == {options.get("line_sigma", 0.2)}
    gauss = build_proposer("map-elites", context({"variation": "gaussian", "sigma": 0.07}))
    assert not gauss.adaptive and [type(e) for e in gauss.emitters] == [GaussianEmitter]
    assert float(gauss.emitters[0].sigma) == 0.07

    chosen = build_proposer("map-elites", context({"variation": "adaptive", "sigmas": [0.01, [0.1, 0.3]],
                                                   "line_sigma": 0.4}))
    assert [(float(e.iso_sigma), float(e.line_sigma)) for e in chosen.emitters] == [(0.01, 0.4), (0.1, 0.3)]
    for bad in ({"sigmas": []}, {"sigmas": [0.1, -1]}, {"sigmas": [[0.1]]}, {"sigmas": "0.1"},
                {"discount": 0}, {"discount": 1.5}, {"variation": "adaptve"}):
        with pytest.raises(OptionError):
            build_proposer("map-elites", context(bad))
    with pytest.raises(OptionError, match="not understood"):
        build_proposer("cma-me", context({"sigmas": [0.1]}))  # an adaptive option of map-elites only


@pytest.mark.parametrize("variation", [{}, {"variation": "iso_line"}, {"variation": "gaussian"}])
def test_children_of_an_empty_archive_are_uniform_not_drawn_around_x0(variation: dict[str, Any]) -> None:
    """Several batches asked before the first result (max_in_flight > batch_size): past the
    ``random_init`` samples, pyribs' emitters drew every child of the empty archive around
    ``x0`` (the quickstart's 300 children after its 100 random ones fell in 4 cells). They
    are uniform until an elite is told; then the emitters take over. A given ``x0`` keeps
    pyribs' rule: the children of an empty archive are drawn around it."""
    p = build_proposer("map-elites", context(variation))
    first = np.stack([q.x for q in p.ask(40)])  # random_init 4, then 36 more before any result
    assert first.std(axis=0).min() > 0.2  # uniform on [0, 1]: 0.29; around x0 (σ ≤ 0.1): < 0.12
    assert {q.meta.get("source") for q in p.ask(4)} == {"uniform"}
    p.tell([Observation(0, 0, first[0], {}, 1.0, np.array([0.5, 0.5]), None, {"source": "uniform"})])
    assert all("emitter" in q.meta for q in p.ask(8))  # an elite: the emitters again

    centred = build_proposer("map-elites", context({**variation, "x0": [0.5, 0.5]}))
    later = np.stack([q.x for q in centred.ask(40)][4:])
    assert later.std(axis=0).max() < 0.15 and np.allclose(later.mean(axis=0), 0.5, atol=0.1)


def test_shares_start_even_keep_a_floor_and_always_sum_to_one() -> None:
    p = build_proposer("map-elites", context({"sigmas": [0.01, 0.1, 0.3]}))
    assert np.allclose(p.shares(), 1 / 3)
    p.gain[:], p.count[:] = [0.0, 0.0, 9.0], [10.0, 10.0, 10.0]
    shares = p.shares()
    assert shares.sum() == pytest.approx(1.0) and shares[2] > 0.8
    assert shares[0] == shares[1] >= EXPLORE / 3 - 1e-12


def test_shares_grow_with_the_square_of_the_mean_gain() -> None:
    """An arm of twice the mean gain gets four times the exploiting share, not twice (plain
    probability matching, which could not move a nearly full map's batch to the arms that
    refine best)."""
    assert SHARPNESS == 2.0
    p = build_proposer("map-elites", context({"sigmas": [0.01, 0.1]}))
    p.gain[:], p.count[:] = [1e6, 2e6], [1e6, 1e6]  # means ≈ 1 and 2; the pooled prior negligible
    exploit = p.shares() - EXPLORE / 2
    assert exploit[1] / exploit[0] == pytest.approx(4.0, rel=1e-4)
    assert p.shares().sum() == pytest.approx(1.0)
    p.gain[:] = [1e300, 1e300]  # scaled before the power: no overflow
    assert np.allclose(p.shares(), 0.5)


# -- the bandit follows the gain --------------------------------------------------------
def corner_problem(sigmas: list[Any], bins: int = 20) -> tuple[Any, CellLayout]:
    """Measures = the point itself on a fine grid, fitness flat: only new cells pay, so
    an arm whose steps leave the parent's cell gains and one that stays put does not."""
    space = SearchSpace({"x": FloatParam(type="float", low=0.0, high=1.0, size=2)})
    layout = CellLayout.build("grid", [MeasureAxis("m0", 0.0, 1.0, bins), MeasureAxis("m1", 0.0, 1.0, bins)])
    options = {"sigmas": sigmas, "random_init": 0, "x0": [0.05, 0.05]}
    ctx = ProposerContext(space=space, layout=layout, options=options, batch_size=20, seed=1)
    return build_proposer("map-elites", ctx), layout


def drive(proposer: Any, layout: CellLayout, asks: int, fitness: Any) -> list[np.ndarray]:
    """Ask, evaluate and tell ``asks`` batches; the children per arm of each batch."""
    taken, next_id = [], 0
    for _ in range(asks):
        proposals = proposer.ask(proposer.ctx.batch_size)
        x = np.stack([p.x for p in proposals])
        cells = layout.index_of(x)
        proposer.tell([Observation(next_id + k, next_id + k, x[k], {}, float(fitness(x[k], p.meta)), x[k],
                                   int(cells[k]), dict(p.meta)) for k, p in enumerate(proposals)])
        next_id += len(proposals)
        taken.append(np.bincount([p.meta["emitter"] for p in proposals], minlength=len(proposer.emitters)))
    return taken


def test_the_bandit_moves_the_batch_to_the_arm_that_finds_new_cells() -> None:
    proposer, layout = corner_problem([[1e-5, 1e-5], [0.08, 0.2]])
    taken = drive(proposer, layout, 12, lambda x, meta: 1.0)
    assert taken[0].tolist() == [10, 10]  # even before anything is told
    late = np.sum(taken[-4:], axis=0)
    assert late[1] > 3 * late[0], taken  # the wide arm fills cells; the still one cannot
    assert late[0] >= 4  # the exploration floor keeps the other arm alive
    assert proposer.shares()[1] > 0.8


def test_the_bandit_follows_improvement_when_a_different_arm_pays() -> None:
    """Same arms, but a fitness that only the still arm's children improve on (its
    elites climb, the wide arm's stay at zero): the batch moves the other way."""
    proposer, layout = corner_problem([[1e-5, 1e-5], [0.08, 0.2]], bins=2)
    counter = iter(range(1, 10**6))
    taken = drive(proposer, layout, 12, lambda x, meta: float(next(counter)) if meta["emitter"] == 0 else 0.0)
    late = np.sum(taken[-4:], axis=0)
    assert late[0] > 3 * late[1], taken


def test_small_asks_still_share_the_batch_out() -> None:
    """Asks of one child at a time give every arm its share over time (credit, not
    rounding per ask)."""
    p = build_proposer("map-elites", context({"sigmas": [0.01, 0.1, 0.3], "random_init": 0}))
    x = np.full(2, 0.5)  # one elite: the children of an empty archive are uniform, not the arms'
    p.tell([Observation(0, 0, x, {}, 1.0, x, None, {"source": "uniform"})])
    p.gain[:], p.count[:] = [1.0, 2.0, 7.0], [10.0, 10.0, 10.0]
    shares = p.shares()
    p.discount = 1.0  # hold the shares still
    arms = [p.ask(1)[0].meta["emitter"] for _ in range(300)]
    assert np.allclose(np.bincount(arms, minlength=3) / 300, shares, atol=0.01)


def test_shares_are_five_percent_even_and_the_rest_by_the_squared_mean_gain_with_the_pooled_prior() -> None:
    """share_i = 0.05 / k + 0.95 · m_i² / Σ m², m_i = (g_i + ḡ) / (n_i + 1), ḡ = Σg / Σn
    (docs/proposers.md, MAP-Elites; ribs_emitters.py's docstring), written here with the
    documented numbers, not the module's constants. The gains and counts are set directly
    (as the tests above do): reaching exact values through ask/tell is not practical."""
    p = build_proposer("map-elites", context({"sigmas": [0.01, 0.1, 0.3]}))
    g, n = np.array([0.0, 1.0, 9.0]), np.array([10.0, 10.0, 10.0])
    p.gain[:], p.count[:] = g, n
    m = (g + g.sum() / n.sum()) / (n + 1.0)
    assert p.shares() == pytest.approx(0.05 / 3 + 0.95 * m**2 / (m**2).sum(), rel=1e-12)
    assert p.shares()[0] > 0.05 / 3  # the pooled prior: an arm that never gained still has a mean above 0


def one_batch_told(options: dict[str, Any], qd_offset: float = 0.0) -> Any:
    """The corner problem's two arms with ``options`` and ``qd_offset``, after one batch of
    20 children asked and told, each of fitness 1."""
    space = SearchSpace({"x": FloatParam(type="float", low=0.0, high=1.0, size=2)})
    layout = CellLayout.build("grid", [MeasureAxis("m0", 0.0, 1.0, 20), MeasureAxis("m1", 0.0, 1.0, 20)])
    ctx = ProposerContext(space=space, layout=layout, batch_size=20, seed=1, qd_offset=qd_offset,
                          options={"sigmas": [[1e-5, 1e-5], [0.08, 0.2]], "random_init": 0, "x0": [0.05, 0.05],
                                   **options})
    proposer = build_proposer("map-elites", ctx)
    drive(proposer, layout, 1, lambda x, meta: 1.0)
    return proposer


@pytest.mark.parametrize("options,fade", [({}, 0.8), ({"discount": 0.5}, 0.5)])
def test_the_bandits_memory_fades_by_discount_per_batch_size_children(options: dict[str, Any], fade: float) -> None:
    """The gains and counts fade by ``discount``, 0.8 by default, per batch_size children
    asked (docs/proposers.md: the map-elites row and MAP-Elites): of 20 children told, an
    ask of a batch (20) leaves 20 × discount, and an ask of half a batch √discount of that."""
    p = one_batch_told(options)
    assert p.count.sum() == pytest.approx(20.0)
    p.ask(20)
    assert p.count.sum() == pytest.approx(20.0 * fade)
    p.ask(10)
    assert p.count.sum() == pytest.approx(20.0 * fade**1.5)


def test_a_new_cells_gain_is_its_objective_less_the_qd_offset_floored_at_0() -> None:
    """A new cell gains its objective − ``qd_offset``, floored at 0 (docs/proposers.md,
    MAP-Elites; ribs_emitters.py's docstring): a first batch of fitness 1 (every child
    added to a new cell) gains half as much at an offset of 0.5 as at 0, and nothing at 5."""
    gained = one_batch_told({}).gain.sum()
    assert gained > 0
    assert one_batch_told({}, qd_offset=0.5).gain.sum() == pytest.approx(gained / 2)
    assert one_batch_told({}, qd_offset=5.0).gain.sum() == 0.0


# -- exact resume ---------------------------------------------------------------------
@pytest.mark.parametrize("options", [{}, {"sigmas": [0.01, [0.1, 0.3]], "discount": 0.5, "random_init": 2}])
def test_the_adaptive_default_resumes_exactly(options: dict[str, Any]) -> None:
    run, resumed, in_flight = split_and_resume("map-elites", options, steps=6)
    original = run.proposer
    assert original.count.sum() > 0 and not np.allclose(original.shares(), original.shares()[0])
    for p in (original, resumed):
        p.tell(in_flight)
    for name in ("gain", "count", "credit"):
        assert np.array_equal(getattr(original, name), getattr(resumed, name)), name
    for n in (4, 1, 3, 4):
        a, b = original.ask(n), resumed.ask(n)
        assert [p.x.tolist() for p in a] == [p.x.tolist() for p in b]
        assert [p.meta for p in a] == [p.meta for p in b]
        obs = run.evaluate(a)
        original.tell(obs)
        resumed.tell(obs)
    assert np.array_equal(original.credit, resumed.credit)


def test_resume_equivalence_of_the_default_through_the_scheduler(sqlite_url: str) -> None:
    one = f"{sqlite_url[:-3]}-one.db"
    common = {"search__max_in_flight": 10, "search__budget": 100}
    api.run(quadratic_spec(**common), storage=one, executor="inline")
    for budget in range(10, 110, 10):
        api.run(quadratic_spec(**{**common, "search__budget": budget}), storage=sqlite_url, executor="inline")
    a = [(r["params"], r["proposal"]) for r in archive.open(one).campaign("quad").evaluations()]
    b = [(r["params"], r["proposal"]) for r in archive.open(sqlite_url).campaign("quad").evaluations()]
    assert a == b
    assert {r[1].get("emitter") for r in a if "emitter" in r[1]} == set(range(len(ADAPTIVE_SIGMAS)))


# -- checkpoint versions ------------------------------------------------------------
def as_version_1(state: bytes) -> bytes:
    """The checkpoint an earlier Entropy Atlas wrote: version 1, no ``variation``, no bandit."""
    return as_version(state, 1)


def test_a_version_1_checkpoint_of_a_single_step_campaign_resumes_exactly() -> None:
    options = {"variation": "iso_line"}
    run = Campaign(build_proposer("map-elites", context({**options, "iso_sigma": ISO_SIGMA_BEFORE_V4})))
    for _ in range(5):
        run.step()
    old = as_version_1(run.proposer.state())
    resumed = build_proposer("map-elites", context(options))
    resumed.restore(old, FakeHistory(run.finished, []))
    a, b = run.proposer.ask(4), resumed.ask(4)
    assert [p.x.tolist() for p in a] == [p.x.tolist() for p in b]


def test_a_version_1_checkpoint_of_the_old_default_resumes_adaptive(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "entropy_atlas.checkpoint")
    run = Campaign(build_proposer("map-elites", context({"variation": "iso_line"})))
    for _ in range(5):
        run.step()
    old = as_version_1(run.proposer.state())
    resumed = build_proposer("map-elites", context({}))
    resumed.restore(old, FakeHistory(run.finished, []))
    assert len(resumed.archive) == len(FakeHistory(run.finished, []).elites())
    assert resumed.gen_counter == run.proposer.gen_counter and resumed.random_left == 0
    assert np.allclose(resumed.shares(), 1 / len(ADAPTIVE_SIGMAS))
    assert len(resumed.ask(4)) == 4
    assert any("single-step map-elites (version 1)" in r.getMessage() for r in caplog.records)


def test_a_version_2_checkpoint_of_the_seven_arm_default_resumes_with_the_refining_arms_fresh(
        caplog: pytest.LogCaptureFixture) -> None:
    """The default before the refining arms: its seven arms come back exactly (generators
    and bandit), the three new ones start with no gain; other arm counts are refused."""
    caplog.set_level(logging.WARNING, "entropy_atlas.checkpoint")
    run = Campaign(build_proposer("map-elites", context({"sigmas": list(FILLING_SIGMAS)})))
    for _ in range(5):
        run.step()
    old = as_version(run.proposer.state(), 2)
    resumed = build_proposer("map-elites", context({}))
    resumed.restore(old, FakeHistory(run.finished, []))
    seven = len(FILLING_SIGMAS)
    for name in ("gain", "count", "credit"):
        assert np.array_equal(getattr(resumed, name)[:seven], getattr(run.proposer, name)), name
        assert not getattr(resumed, name)[seven:].any(), name
    for a, b in zip(resumed.emitters[:seven], run.proposer.emitters, strict=True):
        assert a._rng.bit_generator.state == b._rng.bit_generator.state
    assert len(resumed.ask(4)) == 4
    assert any("seven-arm adaptive default" in r.getMessage() for r in caplog.records)
    with pytest.raises(CheckpointError, match="has 7 emitters"):
        build_proposer("map-elites", context({"sigmas": [0.01, 0.1]})).restore(old, FakeHistory(run.finished, []))


def test_a_checkpoint_of_another_variation_is_refused() -> None:
    run = Campaign(build_proposer("map-elites", context({})))
    run.step()
    with pytest.raises(CheckpointError, match="variation 'adaptive'"):
        build_proposer("map-elites", context({"emitters": 7})).restore(run.proposer.state(), FakeHistory(run.finished,
                                                                                                           []))
