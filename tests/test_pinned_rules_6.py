"""Mutation audit round 6: the guided map-elites arms, cell neighbours and checkpoint version 5.

Each test pins a rule of search/proposers/guided_lines.py, CellLayout.neighbours or the
guided option's checkpoint handling that a small change to the source left untested.
The arms' draws are read back exactly from one-hot solutions: elite k's solution is the
k-th unit vector (its measures put it in its cell), so a child
x' = x_i + σ_iso N(0, I) + s (x_j − x_i), with σ_iso negligible, is 1 − s at i and s at j.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from ribs.emitters import IsoLineEmitter

from archive.layout import CellLayout, MeasureAxis
from search.proposers import build_proposer
from search.proposers.checkpoint import loads
from search.proposers.guided_lines import FRONTIER_WEIGHT, BetterNeighbourLineEmitter, FrontierLineEmitter
from tests.test_checkpoints import Campaign, FakeHistory, context, legacy
from tests.test_guided_lines import grid
from tests.test_iso_line_resume import CURRENT, as_version

N = 20_000  # children per ask: shares are checked to about ±0.015 (±0.03 for a fifth of them)


def one_hot_archive(layout: CellLayout, cells: list[int], objectives: list[float], dim: int | None = None) -> Any:
    """A one-measure grid's archive with elite k (solution: unit vector k of ``dim``, default
    len(cells)) at the centre of ``cells[k]`` with ``objectives[k]``."""
    archive = layout.make_archive(solution_dim=dim or len(cells), seed=0)
    add(archive, layout, cells, objectives, first=0)
    return archive


def add(archive: Any, layout: CellLayout, cells: list[int], objectives: list[float], first: int) -> None:
    """Elites ``first``, ``first`` + 1, ... (unit vectors) at the centres of ``cells``."""
    solution = np.eye(archive.solution_dim)[first:first + len(cells)]
    centres = (np.array(cells, dtype=float) + 0.5) / layout.cells
    archive.add(solution=solution, objective=np.array(objectives, dtype=float), measures=centres[:, None])


def arm(kind: type, archive: Any, layout: CellLayout, **kwargs: Any) -> Any:
    return kind(archive, layout=layout, iso_sigma=1e-12, line_sigma=kwargs.pop("line_sigma", 0.05),
                x0=[0.5] * archive.solution_dim, bounds=[(-1.0, 2.0)] * archive.solution_dim,
                batch_size=kwargs.pop("batch_size", N), seed=kwargs.pop("seed", 4), **kwargs)


def pairs(children: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, s) of each child: the elite it is drawn from, the one it steps along, the step."""
    i = children.argmax(axis=1)
    rest = np.abs(children)
    rest[np.arange(len(i)), i] = 0.0
    j = np.where(rest.max(axis=1) > 1e-10, rest.argmax(axis=1), i)
    return i, j, children[np.arange(len(i)), j] * (j != i)


def shares(values: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(values, minlength=n) / len(values)


# -- the filling arm ------------------------------------------------------------------------
def test_a_filling_arm_draws_x_j_uniformly_whatever_the_parent_weights() -> None:
    """Only x_i is drawn ∝ 1 + empty neighbours: x_j is uniform over every elite (and is
    another elite four times in five of five), so the line step still spans the map."""
    layout = grid(10)
    i, j, _ = pairs(arm(FrontierLineEmitter, one_hot_archive(layout, [0, 1, 2, 3, 4], [1.0] * 5), layout).ask())
    assert shares(i, 5)[4] == pytest.approx((1 + FRONTIER_WEIGHT) / (5 + FRONTIER_WEIGHT), abs=0.015)
    assert shares(j, 5) == pytest.approx([0.2] * 5, abs=0.015)
    assert (i != j).mean() == pytest.approx(0.8, abs=0.015)


def test_a_filling_arms_parent_weight_counts_every_empty_neighbour() -> None:
    """Cells 0, 1, 2 and 5 of ten filled: cell 5 has two empty neighbours (4 and 6), cell 2
    one (3), cells 0 and 1 none (the edge is no empty cell): weights 1, 1, 1 + w, 1 + 2w."""
    layout = grid(10)
    i, _, _ = pairs(arm(FrontierLineEmitter, one_hot_archive(layout, [0, 1, 2, 5], [1.0] * 4), layout).ask())
    weights = np.array([1.0, 1.0, 1.0 + FRONTIER_WEIGHT, 1.0 + 2 * FRONTIER_WEIGHT])
    assert shares(i, 4) == pytest.approx(weights / weights.sum(), abs=0.015)


# -- the refining arm -------------------------------------------------------------------------
def test_a_refining_arm_draws_x_i_uniformly_over_every_elite() -> None:
    layout = grid(5)
    i, _, _ = pairs(arm(BetterNeighbourLineEmitter, one_hot_archive(layout, [0, 1, 2, 3, 4], [1, 2, 5, 2, 1]),
                        layout).ask())
    assert shares(i, 5) == pytest.approx([0.2] * 5, abs=0.015)


def test_a_local_best_takes_pyribs_step_a_uniform_partner_and_a_step_either_way() -> None:
    """Objectives 1, 2, 5, 2, 1: every other cell steps (s ≥ 0) toward its better neighbour;
    the local best, cell 2, takes x_j uniform over all five elites and s of either sign."""
    layout = grid(5)
    i, j, s = pairs(arm(BetterNeighbourLineEmitter, one_hot_archive(layout, [0, 1, 2, 3, 4], [1, 2, 5, 2, 1]),
                        layout).ask())
    for parent, toward in ((0, 1), (1, 2), (3, 2), (4, 3)):
        assert (j[i == parent] == toward).all() and (s[i == parent] >= -1e-9).all()
    best = i == 2
    assert shares(j[best], 5) == pytest.approx([0.2] * 5, abs=0.03)
    moved = best & (j != 2)
    assert (s[moved] > 0).mean() == pytest.approx(0.5, abs=0.04)


def test_an_equal_neighbour_is_not_a_better_one() -> None:
    """A flat map: no neighbour scores higher, so every elite takes pyribs' step with a
    uniform x_j (not a neighbour of the same objective)."""
    layout = grid(5)
    i, j, _ = pairs(arm(BetterNeighbourLineEmitter, one_hot_archive(layout, [0, 1, 2, 3, 4], [1.0] * 5),
                        layout).ask())
    assert shares(j[i == 0], 5) == pytest.approx([0.2] * 5, abs=0.03)


def test_the_missing_neighbour_of_an_edge_cell_stands_for_no_elite() -> None:
    """Objectives 3, 1, 1, 1, 9: cell 0's neighbours are the edge (−1) and cell 1, neither
    better, so it is a local best; the −1 must not read as the last cell's elite (9)."""
    layout = grid(5)
    i, j, _ = pairs(arm(BetterNeighbourLineEmitter, one_hot_archive(layout, [0, 1, 2, 3, 4], [3, 1, 1, 1, 9]),
                        layout).ask())
    assert shares(j[i == 0], 5) == pytest.approx([0.2] * 5, abs=0.03)


# -- both arms --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", [FrontierLineEmitter, BetterNeighbourLineEmitter])
def test_an_arm_with_its_own_view_reads_the_archive_afresh_at_every_ask(kind: type) -> None:
    layout = grid(6)
    archive = one_hot_archive(layout, [0, 1, 2], [1.0, 2.0, 3.0], dim=6)
    emitter = arm(kind, archive, layout, batch_size=2000)
    assert set(pairs(emitter.ask())[0].tolist()) == {0, 1, 2}
    add(archive, layout, [3, 4, 5], [4.0, 5.0, 6.0], first=3)
    assert set(pairs(emitter.ask())[0].tolist()) == {0, 1, 2, 3, 4, 5}


@pytest.mark.parametrize("kind", [FrontierLineEmitter, BetterNeighbourLineEmitter])
def test_children_are_clipped_to_the_bounds(kind: type) -> None:
    layout = grid(2)
    archive = layout.make_archive(solution_dim=1, seed=0)
    archive.add(solution=np.array([[0.01], [0.99]]), objective=np.array([1.0, 2.0]),
                measures=np.array([[0.25], [0.75]]))
    children = kind(archive, layout=layout, iso_sigma=0.5, line_sigma=0.5, x0=[0.5], bounds=[(0.0, 1.0)],
                    batch_size=2000, seed=1).ask()
    assert children.min() == 0.0 and children.max() == 1.0


# -- a cell's neighbours ------------------------------------------------------------------------
def test_up_to_three_measures_a_grid_cell_has_every_cell_around_it() -> None:
    """3^m − 1 neighbours for m ≤ 3 (26 for three measures), 2m beyond; the count is the
    width of what ``neighbours`` gives."""
    three = grid(3, 3, 3)
    assert three.neighbour_count == 26
    assert sorted(three.neighbours(np.array([13]))[0].tolist()) == [c for c in range(27) if c != 13]
    for bins, count in (((4,), 2), ((4, 3), 8), ((4, 3, 3), 26), ((3, 3, 3, 3), 8), ((3, 2, 2, 2, 2), 10)):
        layout = grid(*bins)
        assert layout.neighbour_count == count
        assert layout.neighbours(np.arange(layout.cells)).shape == (layout.cells, count)


def test_a_cell_at_the_upper_edge_has_no_neighbour_past_it() -> None:
    corner = grid(3, 4).neighbours(np.array([11]))[0]  # row 2, column 3: the last cell
    assert sorted(c for c in corner if c >= 0) == [6, 7, 10] and (corner == -1).sum() == 5
    assert grid(5).neighbours(np.array([4])).tolist() == [[3, -1]]


def test_the_neighbour_table_is_kept_up_to_its_limit_inclusive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("archive.layout.NEIGHBOUR_TABLE_MAX", 72)  # 9 cells × 8 neighbours
    at_limit = grid(3, 3)
    at_limit.neighbours(np.array([4]))
    assert at_limit._neighbour_table is not None
    monkeypatch.setattr("archive.layout.NEIGHBOUR_TABLE_MAX", 71)
    over = grid(3, 3)
    over.neighbours(np.array([4]))
    assert over._neighbour_table is None


def test_the_neighbour_table_is_worked_out_once(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = grid(7, 9)
    calls: list[int] = []
    work = layout._neighbours_of
    monkeypatch.setattr(layout, "_neighbours_of", lambda cells: calls.append(len(cells)) or work(cells))
    first = layout.neighbours(np.array([0, 30]))
    again = layout.neighbours(np.array([30, 62]))
    assert calls == [63] and np.array_equal(first[1], again[0])


def test_a_one_cell_cvt_layout_has_no_neighbours() -> None:
    axes = [MeasureAxis("a", 0.0, 1.0, 5), MeasureAxis("b", 0.0, 1.0, 5)]
    one = CellLayout("cvt", axes, np.array([[0.5, 0.5]]))
    assert one.neighbour_count == 0 and one.neighbours(np.array([0, 0, 0])).shape == (3, 0)


# -- which campaigns run them -------------------------------------------------------------------
def test_every_arm_of_a_proposer_reads_one_shared_view_of_the_archive() -> None:
    proposer = build_proposer("map-elites", context({}))
    assert proposer.cells is not None and all(e.cells is proposer.cells for e in proposer.emitters)


def test_a_legacy_pickle_of_the_adaptive_default_resumes_unguided() -> None:
    run = Campaign(build_proposer("map-elites", context({"guided": False})))
    for _ in range(4):
        run.step()
    resumed = build_proposer("map-elites", context({}))
    resumed.restore(legacy(random_left=0), FakeHistory(run.finished, []))
    assert not resumed.guided and {type(e) for e in resumed.emitters} == {IsoLineEmitter}
    assert len(resumed.ask(4)) == 4
    assert loads(resumed.state(), "map-elites", CURRENT).fields["guided"] is False


def test_a_version_1_checkpoint_resumed_adaptive_runs_unguided() -> None:
    """Every checkpoint before version 5 resumes unguided, version 1 (a single-step
    campaign whose options now give the adaptive default) too."""
    run = Campaign(build_proposer("map-elites", context({"variation": "iso_line"})))
    for _ in range(4):
        run.step()
    resumed = build_proposer("map-elites", context({}))
    resumed.restore(as_version(run.proposer.state(), 1), FakeHistory(run.finished, []))
    assert not resumed.guided and {type(e) for e in resumed.emitters} == {IsoLineEmitter}
    assert len(resumed.ask(4)) == 4
    assert loads(resumed.state(), "map-elites", CURRENT).fields["guided"] is False
