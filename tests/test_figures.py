"""Elite maps for every layout: 1-D and 2-D grids, facets beyond two measures, CVT (and
its pairwise projections beyond two measures)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

import archive
from search import api
from tests.conftest import quadratic_spec

MEASURES = {
    "one": [{"name": "ma", "low": 0, "high": 1, "bins": 8}],
    "three": [{"name": "ma", "low": 0, "high": 1, "bins": 4}, {"name": "mb", "low": 0, "high": 1, "bins": 4},
              {"name": "mc", "low": 0, "high": 1, "bins": 3}],
}


def three_measures(params: dict, ctx: object) -> dict:
    a, b = params["a"], params["b"]
    return {"objective": a + b, "measures": {"ma": a, "mb": b, "mc": (a * b) ** 0.5, "md": a * b, "me": a - b}}


@pytest.mark.parametrize("layout", ["one", "two", "three", "cvt", "cvt-three", "cvt-five"])
def test_map_is_written_for_every_layout(sqlite_url: str, tmp_path: Path, layout: str) -> None:
    overrides: dict = {"search__budget": 40}
    if layout in MEASURES:
        overrides["measures"] = MEASURES[layout]
    if layout in ("three", "cvt-three", "cvt-five"):
        overrides["evaluator"] = {"kind": "python", "target": "tests.test_figures:three_measures"}
    if layout.startswith("cvt"):
        overrides["archive"] = {"type": "cvt", "cells": 10, "samples": 500}
    if layout in ("cvt-three", "cvt-five"):  # pyribs draws no CVT heatmap past two measures
        n = 3 if layout == "cvt-three" else 5
        overrides["measures"] = [{"name": f"m{c}", "low": -1, "high": 1} for c in "abcde"[:n]]
    api.run(quadratic_spec(**overrides), storage=sqlite_url, executor="inline")
    out = archive.open(sqlite_url).campaign("quad").map(tmp_path / "map.png")
    image = mpimg.imread(out)
    assert image.shape[0] > 200 and image.shape[1] > 400
    # Not a blank canvas: a coloured map has many distinct colours.
    assert len(np.unique(image.reshape(-1, image.shape[-1])[:, :3].round(2), axis=0)) > 20
