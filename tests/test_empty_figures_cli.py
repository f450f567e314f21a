"""``atlas front`` and ``atlas map`` of a campaign whose every evaluation failed: the
measures' ranges, no colour bar, ``no done evaluation (N failed)`` (needs archive/handle.py's
patch: /tmp/archread/handle.patch)."""

from __future__ import annotations

from pathlib import Path

import yaml
from matplotlib.figure import Figure
from typer.testing import CliRunner

from search.cli import app
from tests.conftest import quadratic_spec

runner = CliRunner()


def test_figures_of_a_campaign_whose_every_evaluation_failed(tmp_path: Path, drawn: list[Figure]) -> None:
    spec = quadratic_spec(search__budget=12, search__batch_size=4, search__max_in_flight=4)
    spec["evaluator"]["target"] = "tests.support.evaluators:always_fails"
    spec["resources"]["max_retries"] = 0
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    runner.invoke(app, ["run", str(path), "--storage", url, "--executor", "inline"])  # stops: all failed (fail-fast)
    done = runner.invoke(app, ["front", "quad", "--storage", url, "--out", str(tmp_path / "f.png")])
    assert done.exit_code == 0, done.output
    front = drawn[-1]
    assert front.get_suptitle().startswith("quad: score against each measure, no done evaluation (")
    assert front.get_suptitle().endswith(" failed)")
    assert [ax.get_xlim() for ax in front.axes] == [(0.0, 1.0), (0.0, 1.0)]
    done = runner.invoke(app, ["map", "quad", "--storage", url, "--out", str(tmp_path / "m.png")])
    assert done.exit_code == 0, done.output
    (ax,) = drawn[-1].axes
    assert [t.get_text() for t in ax.texts] == [front.axes[0].texts[0].get_text()]
