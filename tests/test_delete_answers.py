"""``atlas delete``'s question takes y or n: another answer is asked again after one line
saying what to answer (typer's ``Error: invalid input``, capitalised unlike every other
line, said neither), and where standard input ends with no answer, one ``error:`` line,
exit 2, nothing deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from archive.store import Store
from search import api
from search.cli import app
from tests.conftest import quadratic_spec

HINT = "please answer y (yes) or n (no), not 'maybe'"
NO_ANSWER = "error: no answer (standard input is closed); nothing deleted; pass --yes to delete without asking"


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=4), storage=url, executor="inline")
    return url


def delete(url: str, answers: str) -> Any:
    return CliRunner().invoke(app, ["delete", "quad", "--storage", url], input=answers)


def kept(url: str) -> bool:
    store = Store(url, readonly=True)
    try:
        return store.campaign("quad") is not None
    finally:
        store.close()


def test_an_unknown_answer_then_no_more_input_is_one_error_and_nothing_deleted(url: str) -> None:
    """Before (``echo maybe | atlas delete quad``): ``Error: invalid input``, the question
    again, then the closed input's error."""
    result = delete(url, "maybe\n")
    assert result.exit_code == 2, result.output
    assert "Error: invalid input" not in result.output
    assert result.stderr.strip().splitlines() == [HINT, NO_ANSWER]
    assert result.stdout.count("delete campaign 'quad' and its 4 evaluations? [y/N]: ") == 2
    assert kept(url)


def test_an_unknown_answer_is_asked_again_and_the_next_one_counts(url: str) -> None:
    result = delete(url, "maybe\nYes\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines() == [HINT]
    assert "deleted campaign quad: 4 evaluations" in result.stdout
    assert not kept(url)


@pytest.mark.parametrize("answer", ["\n", "n\n", "NO\n"])
def test_no_or_just_enter_keeps_the_campaign(url: str, answer: str) -> None:
    result = delete(url, answer)
    assert result.exit_code == 1 and result.stderr.strip() == "nothing deleted: campaign quad is kept"
    assert kept(url)


def test_no_input_at_all_is_one_error(url: str) -> None:
    result = delete(url, "")
    assert result.exit_code == 2 and result.stderr.strip().splitlines() == [NO_ANSWER]
    assert kept(url)
