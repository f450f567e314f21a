"""With the inline executor, ``atlas run``'s start-up spinner stayed up through the first
evaluations (the first progress report came after the first poll, which runs them): the
scheduler now reports once when the run has started, before it evaluates anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from search import cli
from tests.conftest import quadratic_spec

LIVES: list[int] = []  # the live displays (the spinner) shown as each evaluation ran


def noting(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """``quadratic``, noting whether a spinner was shown as it ran (inline: in this process)."""
    LIVES.append(cli.console.lives)
    return {"objective": params["a"] + params["b"], "measures": {"ma": params["a"], "mb": params["b"]}}


def test_the_start_up_spinner_stops_before_the_first_inline_evaluation(tmp_path: Path) -> None:
    LIVES.clear()
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=4, search__batch_size=2, evaluator={
        "kind": "python", "target": "tests.test_start_report:noting"})))
    done = CliRunner().invoke(cli.app, ["run", str(spec), "--executor", "inline", "--storage",
                                        f"sqlite:///{tmp_path / 'a.db'}", "--map", str(tmp_path / "m.png")],
                              catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    assert LIVES == [0, 0, 0, 0]  # off a terminal no bar follows the spinner: nothing live at all
