"""A notebook's figures: ``camp.map_figure()`` and ``camp.front_figure()`` return a
matplotlib Figure to show, writing no file and leaving ``pyplot``'s state alone (``map``
and ``front`` only wrote files). The map's title shows the QD-score as the command line
does (6 significant digits: ``18579.6``, where the map had said ``1.858e+04``)."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from matplotlib.figure import Figure

import archive
from archive.errors import UnknownMeasure
from archive.figures import map_title
from search.cli_tables import qd_text
from tests.conftest import finished_quadratic


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_quadratic(tmp_path_factory.mktemp("figures"), budget=12, batch=4)


@pytest.fixture
def camp(made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[archive.CampaignHandle]:
    monkeypatch.chdir(tmp_path)  # a file written anywhere relative would land here
    with archive.open(f"sqlite:///{made}") as handle:
        yield handle.campaign("q")


def files(*folders: Path) -> set[str]:
    return {os.path.join(root, f) for folder in folders for root, _, names in os.walk(folder) for f in names}


def pyplot_figures() -> list[int]:
    """The figures ``pyplot`` manages, where something imported it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    return [] if pyplot is None else list(pyplot.get_fignums())


def test_map_figure_returns_the_map_and_writes_nothing(camp: archive.CampaignHandle, made: Path,
                                                       tmp_path: Path) -> None:
    before, managed = files(tmp_path, made.parent), pyplot_figures()
    fig = camp.map_figure()
    assert isinstance(fig, Figure) and fig.canvas.manager is None  # no pyplot figure manager
    ax = fig.axes[0]
    stats = camp.stats()
    assert ax.get_title() == map_title("q", stats)
    assert ax.get_title().startswith(f"q: {stats.elites}/25 cells") and f"QD-score {qd_text(stats.qd_score)}," \
        in ax.get_title()
    assert ax.get_xlabel() == "ma  [0, 1]" and ax.get_ylabel() == "mb  [0, 1]"
    assert fig.axes[1].get_ylabel().startswith("score (higher is better)")  # the colour bar
    assert files(tmp_path, made.parent) == before and pyplot_figures() == managed


def test_map_figure_draws_the_data_given(camp: archive.CampaignHandle) -> None:
    data = camp.map_data()
    data.name = "renamed"
    assert camp.map_figure(data).axes[0].get_title().startswith("renamed: ")
    with pytest.raises(TypeError, match=r"^data: must be map_data\(\)'s MapData or None, got 3"):
        camp.map_figure(3)  # type: ignore[arg-type]


def test_front_figure_returns_the_front_and_writes_nothing(camp: archive.CampaignHandle, made: Path,
                                                          tmp_path: Path) -> None:
    before, managed = files(tmp_path, made.parent), pyplot_figures()
    fig = camp.front_figure(minimize="mb")
    assert isinstance(fig, Figure) and fig.canvas.manager is None
    assert fig.get_suptitle() == "q: score against each measure, 12 evaluations"
    assert [ax.get_xlabel() for ax in fig.axes] == ["ma (maximize)", "mb (minimize)"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["score (maximize)"] * 2
    assert files(tmp_path, made.parent) == before and pyplot_figures() == managed
    with pytest.raises(UnknownMeasure, match=r"^minimize='zz': not a measure of campaign 'q' \(measures: ma, mb\)"):
        camp.front_figure(minimize="zz")


def test_map_and_front_still_write_their_files(camp: archive.CampaignHandle, tmp_path: Path) -> None:
    assert camp.map(tmp_path / "m.png") == tmp_path / "m.png"
    assert camp.front(tmp_path / "f.svg", minimize="mb") == tmp_path / "f.svg"
    assert (tmp_path / "m.png").read_bytes().startswith(b"\x89PNG")
    assert b"<svg" in (tmp_path / "f.svg").read_bytes()[:500]


def test_the_map_title_shows_the_qd_score_as_the_command_line_does(camp: archive.CampaignHandle) -> None:
    stats = dataclasses.replace(camp.stats(), qd_score=18579.6012)
    assert qd_text(18579.6012) == "18579.6"
    assert "QD-score 18579.6, best" in map_title("q", stats)
    assert "QD-score 1.23457e+08," in map_title("q", dataclasses.replace(stats, qd_score=123456791.92))
