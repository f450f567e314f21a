"""What an evaluator raised reaches the terminal as text, never as control sequences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from search import api
from search.cli import app
from search.printable import printable
from tests.conftest import quadratic_spec
from workers.contract import EvalContext

NASTY = "\x1b[31mRED\x1b[0m \x1b]0;pwned\x07 title\u2028next\u202eevil\x9b"


def nasty(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise ValueError(NASTY)


def test_printable_escapes_what_a_terminal_acts_on() -> None:
    assert printable(NASTY) == ("\\x1b[31mRED\\x1b[0m \\x1b]0;pwned\\x07 title\\u2028next\\u202eevil\\x9b")
    assert printable("plain é ✓ 日本\ta") == "plain é ✓ 日本 a"


def test_failures_and_status_print_an_evaluators_error_as_text(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a.db'}"
    spec = quadratic_spec(search__budget=4, search__fail_fast=0)
    spec["evaluator"]["target"] = "tests.test_printable:nasty"
    api.run(spec, storage=url, executor="inline")
    for args in (["failures", "quad"], ["status", "quad"]):
        result = CliRunner().invoke(app, [*args, "--storage", url], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output and "\u2028" not in result.output and "\x9b" not in result.output
        assert "\\x1b[31mRED" in result.output.replace("\n", "")
