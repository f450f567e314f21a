"""The adaptive map-elites' guided arms: a cell's neighbours, parents drawn toward the
frontier, refining steps toward a better neighbour, and which campaigns run them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ribs.emitters import IsoLineEmitter

from archive.layout import CellLayout, MeasureAxis
from search.proposers import build_proposer
from search.proposers.guided_lines import (
    FRONTIER_WEIGHT,
    ArchiveCells,
    BetterNeighbourLineEmitter,
    FrontierLineEmitter,
)
from search.proposers.ribs_emitters import FILLING_SIGMAS, GUIDED_SINCE, MapElitesProposer
from tests.test_checkpoints import Campaign, FakeHistory, context
from tests.test_iso_line_resume import as_version


def grid(*bins: int) -> CellLayout:
    return CellLayout.build("grid", [MeasureAxis(f"m{i}", 0.0, 1.0, b) for i, b in enumerate(bins)])


# -- a cell's neighbours ------------------------------------------------------------------
def test_a_grid_cell_has_the_cells_around_it_and_none_past_the_edge() -> None:
    layout = grid(3, 4)  # cell = 4 × row + column
    centre, corner, edge = layout.neighbours(np.array([5, 0, 4]))
    assert sorted(centre) == [0, 1, 2, 4, 6, 8, 9, 10]
    assert sorted(c for c in corner if c >= 0) == [1, 4, 5] and (corner == -1).sum() == 5
    assert sorted(c for c in edge if c >= 0) == [0, 1, 5, 8, 9]
    assert layout.neighbour_count == 8


def test_one_measure_has_two_neighbours_and_four_measures_two_along_each_axis() -> None:
    assert grid(5).neighbours(np.array([0, 2])).tolist() == [[-1, 1], [1, 3]]
    four = grid(3, 3, 3, 3)
    assert four.neighbour_count == 8
    (around,) = four.neighbours(np.array([40]))  # the centre, bins (1, 1, 1, 1)
    steps = {tuple(np.subtract(np.unravel_index(c, (3, 3, 3, 3)), (1, 1, 1, 1))) for c in around}
    assert steps == {tuple(s * np.eye(4, dtype=int)[k]) for k in range(4) for s in (1, -1)}


def test_a_cvt_cells_neighbours_are_the_nearest_other_centroids() -> None:
    centroids = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.3], [0.9, 0.9], [0.5, 0.5]])
    layout = CellLayout("cvt", [MeasureAxis("a", 0.0, 1.0, 5), MeasureAxis("b", 0.0, 1.0, 5)], centroids)
    assert layout.neighbour_count == 4  # 8 around, but only 4 other cells
    (first,) = layout.neighbours(np.array([0]))
    assert first.tolist() == [1, 2, 4, 3] and layout.neighbours(np.array([], dtype=int)).shape == (0, 4)


# -- the two arms ------------------------------------------------------------------------
def line_archive(objectives: list[float], bins: int) -> tuple[Any, CellLayout]:
    """A one-measure grid of ``bins`` cells, the first len(objectives) filled: elite k at
    x = measure = the centre of cell k, with objective ``objectives[k]``."""
    layout = grid(bins)
    archive = layout.make_archive(solution_dim=1, seed=0)
    centres = (np.arange(len(objectives)) + 0.5) / bins
    archive.add(solution=centres[:, None], objective=np.array(objectives, dtype=float), measures=centres[:, None])
    return archive, layout


def test_a_filling_arm_draws_parents_beside_empty_cells_more_often() -> None:
    """Cells 0-4 of 10 filled: cell 4 alone has an empty neighbour (cell 5), weight
    1 + FRONTIER_WEIGHT against 1 for the other four."""
    archive, layout = line_archive([1.0] * 5, 10)
    arm = FrontierLineEmitter(archive, layout=layout, iso_sigma=1e-9, line_sigma=1e-9, x0=[0.5],
                              bounds=[(0.0, 1.0)], batch_size=20_000, seed=3)
    parents = np.rint(arm.ask()[:, 0] * 10 - 0.5).astype(int)
    share = np.bincount(parents, minlength=5) / len(parents)
    expected = (1 + FRONTIER_WEIGHT) / (5 + FRONTIER_WEIGHT)
    assert share[4] == pytest.approx(expected, abs=0.015)
    assert share[:4] == pytest.approx([(1 - expected) / 4] * 4, abs=0.015)

    full, _ = line_archive([1.0] * 10, 10)  # no empty cell: a uniform draw
    uniform = FrontierLineEmitter(full, layout=layout, iso_sigma=1e-9, line_sigma=1e-9, x0=[0.5],
                                  bounds=[(0.0, 1.0)], batch_size=20_000, seed=3).ask()
    assert np.bincount(np.rint(uniform[:, 0] * 10 - 0.5).astype(int), minlength=10) / 20_000 == pytest.approx(
        [0.1] * 10, abs=0.015)


def test_a_refining_arm_steps_toward_a_better_neighbour_and_both_ways_from_a_local_best() -> None:
    """Objectives rise to cell 3 and fall after it: a child of any other cell moves toward
    cell 3 (x' − x_i has the sign of x_j − x_i), a child of cell 3 either way."""
    archive, layout = line_archive([1.0, 2.0, 3.0, 4.0, 3.5, 2.5], 6)
    arm = BetterNeighbourLineEmitter(archive, layout=layout, iso_sigma=1e-12, line_sigma=0.02, x0=[0.5],
                                     bounds=[(0.0, 1.0)], batch_size=6000, seed=5)
    children = arm.ask()[:, 0]
    centres = (np.arange(6) + 0.5) / 6
    parent = np.argmin(np.abs(children[:, None] - centres[None]), axis=1)  # steps are short: the nearest centre
    step = children - centres[parent]
    below, above = parent < 3, parent > 3
    assert below.sum() > 2000 and above.sum() > 1000
    assert (step[below] >= 0).all() and (step[above] <= 0).all()
    local_best = step[parent == 3]
    assert 0.35 < (local_best > 0).mean() < 0.65  # pyribs' step along a uniform pair: either way


def test_a_refining_arm_chooses_uniformly_among_the_better_neighbours() -> None:
    layout = grid(3, 3)
    archive = layout.make_archive(solution_dim=2, seed=0)
    centres = np.array([[(r + 0.5) / 3, (c + 0.5) / 3] for r in range(3) for c in range(3)])
    objective = np.array([0, 0, 0, 0, 1, 2, 0, 2, 0], dtype=float)  # the centre (1) has two better: cells 5 and 7
    archive.add(solution=centres, objective=objective, measures=centres)
    arm = BetterNeighbourLineEmitter(archive, layout=layout, iso_sigma=1e-12, line_sigma=0.05, x0=[0.5, 0.5],
                                     bounds=[(0.0, 1.0)] * 2, batch_size=20_000, seed=9)
    children = arm.ask()
    from_centre = np.abs(children - centres[4]).max(axis=1) < 1 / 6
    moved = children[from_centre] - centres[4]
    toward_5 = (moved[:, 1] > 1e-9) & (np.abs(moved[:, 0]) < 1e-9)
    toward_7 = (moved[:, 0] > 1e-9) & (np.abs(moved[:, 1]) < 1e-9)
    assert len(moved) > 1500 and (toward_5 | toward_7).all()
    assert toward_5.sum() / (toward_5.sum() + toward_7.sum()) == pytest.approx(0.5, abs=0.05)


# -- which campaigns run them ---------------------------------------------------------------
def test_guided_false_gives_pyribs_arms_and_other_variations_ignore_it() -> None:
    plain = build_proposer("map-elites", context({"guided": False}))
    assert {type(e) for e in plain.emitters} == {IsoLineEmitter}
    chosen = build_proposer("map-elites", context({"sigmas": [0.01, [0.1, 0.3]]}))
    assert [type(e) for e in chosen.emitters] == [FrontierLineEmitter, BetterNeighbourLineEmitter]
    assert MapElitesProposer.option_warnings({"variation": "iso_line", "guided": False}) == [
        "search.options.guided: the iso_line variation does not use it (only adaptive does); it is ignored"]


def test_a_campaign_stored_before_the_guided_arms_goes_on_unguided() -> None:
    """A checkpoint of version 4 (its arms pyribs' IsoLineEmitter) resumes with those arms,
    drawing what the unguided campaign would; its next checkpoint says so."""
    run = Campaign(build_proposer("map-elites", context({"guided": False})))
    for _ in range(5):
        run.step()
    resumed = build_proposer("map-elites", context({}))
    assert resumed.guided
    resumed.restore(as_version(run.proposer.state(), GUIDED_SINCE - 1), FakeHistory(run.finished, []))
    assert not resumed.guided and {type(e) for e in resumed.emitters} == {IsoLineEmitter}
    for _ in range(3):
        a, b = run.proposer.ask(4), resumed.ask(4)
        assert [p.x.tolist() for p in a] == [p.x.tolist() for p in b]
        told = run.evaluate(a)
        run.proposer.tell(told)
        resumed.tell(told)
    again = build_proposer("map-elites", context({}))
    again.restore(resumed.state(), FakeHistory(run.finished, []))
    assert not again.guided


def test_the_guided_default_resumes_exactly() -> None:
    run = Campaign(build_proposer("map-elites", context({})))
    for _ in range(6):
        run.step()
    assert {type(e) for e in run.proposer.emitters} == {FrontierLineEmitter, BetterNeighbourLineEmitter}
    resumed = build_proposer("map-elites", context({}))
    resumed.restore(run.proposer.state(), FakeHistory(run.finished, []))
    for n in (4, 1, 3):
        a, b = run.proposer.ask(n), resumed.ask(n)
        assert [p.x.tolist() for p in a] == [p.x.tolist() for p in b]
        told = run.evaluate(a)
        run.proposer.tell(told)
        resumed.tell(told)


def test_the_arms_read_the_archive_as_it_is_at_each_ask() -> None:
    """The arms share one view of the archive per ask: after results are told, the next
    ask reads the elites they added (a view kept from the ask before would not have them)."""
    run = Campaign(build_proposer("map-elites", context({"random_init": 0})))
    for _ in range(4):
        run.step()
        p = run.proposer
        p.ask(4)
        shared = p.cells.current()
        fresh = ArchiveCells(p.archive, p.ctx.layout).current()
        assert len(shared[0]) == len(p.archive) > 0
        for a, b in zip(shared, fresh, strict=True):
            assert np.array_equal(a, b)


def test_the_guided_arms_run_on_cvt_cells() -> None:
    axes = [MeasureAxis("ma", 0.0, 1.0, 5), MeasureAxis("mb", 0.0, 1.0, 5)]
    cvt = CellLayout.build("cvt", axes, cells=30, samples=2000)
    ctx = context({})
    proposer = build_proposer("map-elites", type(ctx)(space=ctx.space, layout=cvt, options={}, batch_size=8, seed=2))
    run = Campaign(proposer)
    for _ in range(12):
        run.step()
    assert {type(e) for e in proposer.emitters} == {FrontierLineEmitter, BetterNeighbourLineEmitter}
    assert len(proposer.archive) > 5 and proposer.count[:len(FILLING_SIGMAS)].sum() > 0
    assert proposer.count[len(FILLING_SIGMAS):].sum() > 0  # the refining arms asked and were told too


@pytest.mark.parametrize("bins", [(7, 9), (4, 3, 5), (3, 3, 3, 3)])
def test_layouts_too_large_for_the_table_give_the_same_neighbours_per_call(
        bins: tuple[int, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    cells = np.arange(int(np.prod(bins)))
    tabled = grid(*bins).neighbours(cells)
    monkeypatch.setattr("archive.layout.NEIGHBOUR_TABLE_MAX", 10)
    large = grid(*bins)
    assert np.array_equal(large.neighbours(cells[::-1]), tabled[::-1])
    assert large._neighbour_table is None  # worked out per call, never kept


def test_a_refining_arm_on_a_layout_of_one_cell_takes_pyribs_step() -> None:
    """No neighbours at all (a CVT of one cell, below what a campaign file allows): the
    arm still asks, along the pair of its one elite, instead of failing."""
    one = CellLayout("cvt", [MeasureAxis("a", 0.0, 1.0, 2)], np.array([[0.5]]))
    archive = one.make_archive(solution_dim=2, seed=0)
    archive.add(solution=np.array([[0.3, 0.6]]), objective=np.array([1.0]), measures=np.array([[0.4]]))
    arm = BetterNeighbourLineEmitter(archive, layout=one, iso_sigma=0.01, line_sigma=0.2, x0=[0.5, 0.5],
                                     bounds=[(0.0, 1.0)] * 2, batch_size=50, seed=1)
    children = arm.ask()
    assert children.shape == (50, 2) and np.abs(children - [0.3, 0.6]).max() < 0.1
