"""Resuming after a fail-fast stop, and budgets refused naming what the user typed.

A fail-fast stop that had used the whole budget was "resumed" into a 12/12 bar, exit 0 and
status ``finished``, nothing retried; a budget below what a campaign has named the file
or the stored spec, never the ``--budget`` that was typed, and gave no way on.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from archive.store import Store
from search.cli import app
from tests.conftest import quadratic_spec
from tests.support.evaluators import quadratic

BROKEN = "ATLAS_TEST_RESUME_BROKEN"


def flaky(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """The quadratic evaluator, or an error while ``ATLAS_TEST_RESUME_BROKEN`` is set (the
    inline executor evaluates in this process): "fixing" it leaves the spec as it was."""
    if os.environ.get(BROKEN):
        raise RuntimeError("broken evaluator")
    return quadratic(params, ctx)


@pytest.fixture(autouse=True)
def maps_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The maps a run draws by default go under the test's folder, not the checkout's."""
    import archive.figures

    monkeypatch.setattr(archive.figures, "MAPS_DIR", tmp_path / "atlas-maps")


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def one_error(result: Any) -> str:
    """Exit 2 and exactly one ``error:`` line on stderr, beside the file's ``warning:`` lines
    (no traceback, no bar)."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output and "evaluating" not in result.output
    return lines[0]


def campaign(db: Path) -> tuple[str, int, int, int, int]:
    """(status, rows, done, failed, most attempts) of campaign ``quad``."""
    with sqlite3.connect(db) as conn:
        status = conn.execute("SELECT status FROM campaigns WHERE name = 'quad'").fetchone()[0]
        rows = conn.execute("SELECT count(*), sum(status = 'done'), sum(status = 'failed'), max(attempts) "
                            "FROM evaluations").fetchone()
    return (status, *rows)


def failed_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, budget: int) -> tuple[Path, list[str]]:
    """A campaign of ``budget`` stopped by fail-fast (10) with the broken evaluator, which is
    then fixed; returns the file and the options that reach its storage, inline."""
    db = tmp_path / "atlas.db"
    spec = quadratic_spec(search__budget=budget, search__batch_size=4, search__max_in_flight=4,
                          search__fail_fast=10, evaluator={"kind": "python", "target": f"{__name__}:flaky"})
    path = tmp_path / "flaky.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    where = ["--storage", f"sqlite:///{db}", "--executor", "inline"]
    monkeypatch.setenv(BROKEN, "1")
    stopped = invoke("run", str(path), *where)
    assert stopped.exit_code == 2 and "the first 12 evaluations all failed" in stopped.stderr, stopped.output
    monkeypatch.delenv(BROKEN)
    return path, where


def test_a_fail_fast_stop_that_spent_the_budget_is_not_resumed_into_finished(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`atlas resume` (and the same file run again) after the evaluator is fixed says the
    budget is spent and how to run more, exit 2, the campaign still `failed`; the budget
    it names then runs the evaluations the failed ones took."""
    path, where = failed_fast(tmp_path, monkeypatch, budget=12)
    db = tmp_path / "atlas.db"
    assert campaign(db) == ("failed", 12, 0, 12, 1)
    expected = ("error: campaign 'quad' failed with its budget of 12 spent (12 of its 12 evaluations failed): "
                f"nothing is left to run; to try again, raise the budget: `atlas resume quad {shlex.join(where)} "
                "--budget 24` runs 12 more")
    assert one_error(invoke("resume", "quad", *where)) == expected
    assert one_error(invoke("run", str(path), *where)) == expected
    assert campaign(db) == ("failed", 12, 0, 12, 1)  # nothing retried, nothing marked finished
    raised = invoke("resume", "quad", "--budget", "24", *where)
    assert raised.exit_code == 0, raised.output
    assert "quad: 24 evaluations (12 failed)" in " ".join(raised.stdout.split())
    assert campaign(db) == ("finished", 24, 12, 12, 1)


def test_a_fail_fast_stop_with_budget_left_is_tried_again_by_resume(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/campaigns.md: `atlas resume NAME` tries again once the evaluator is fixed."""
    _, where = failed_fast(tmp_path, monkeypatch, budget=20)
    assert campaign(tmp_path / "atlas.db") == ("failed", 12, 0, 12, 1)
    result = invoke("resume", "quad", *where)
    assert result.exit_code == 0, result.output
    assert campaign(tmp_path / "atlas.db") == ("finished", 20, 8, 12, 1)


def test_the_python_api_refuses_a_spent_failed_campaign_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from search import api
    from search.campaigns import BudgetSpent

    path, _ = failed_fast(tmp_path, monkeypatch, budget=12)
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    with pytest.raises(BudgetSpent, match=r"budget of 12 spent"):
        api.resume("quad", storage=url, executor="inline")
    with pytest.raises(BudgetSpent, match=r"`api\.resume\('quad', budget=24, …\)`"):
        api.run(path, storage=url, executor="inline")
    store = Store(url, readonly=True)
    try:
        assert store.require_campaign("quad").status == "failed"
    finally:
        store.close()


@pytest.mark.parametrize(("args", "source"), [
    (("run", "{file}"), "{file}"),
    (("run", "{file}", "--budget", "7"), "{file} with --budget 7"),
    (("resume", "quad", "--budget", "7"), "stored spec of quad with --budget 7"),
])
def test_a_budget_below_what_the_campaign_has_names_what_was_typed_and_the_way_on(
        tmp_path: Path, args: tuple[str, ...], source: str) -> None:
    """After `atlas resume quad --budget 12`, the file (budget 8) run again was refused as
    `c.yaml: search.budget: 8 is below the 12 evaluations …` with no way on, and a lower
    `--budget` was blamed on the file or on the stored spec."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(quadratic_spec(search__budget=8, search__batch_size=4), sort_keys=False))
    where = ["--storage", f"sqlite:///{tmp_path / 'atlas.db'}", "--executor", "inline"]
    assert invoke("run", str(path), *where).exit_code == 0
    assert invoke("resume", "quad", "--budget", "12", *where).exit_code == 0
    typed = [a.format(file=path) for a in args]
    budget = typed[-1] if "--budget" in typed else "8"
    assert one_error(invoke(*typed, *where)) == (
        f"error: {source.format(file=path)}: search.budget: {budget} is below the 12 evaluations campaign 'quad' "
        f"already has; continue it with `atlas resume quad {shlex.join(where)}` (its budget is 12), or run more with "
        "a --budget above 12")
    assert campaign(tmp_path / "atlas.db") == ("finished", 12, 12, 0, 1)


def test_a_budget_that_lowers_the_stored_one_is_said(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`atlas resume quad --budget 30` of a campaign stopped at 8 of 40 lowered its budget
    to 30 without a word (the option's help said "raise the budget")."""
    from search import api

    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    where = ["--storage", url, "--executor", "inline"]

    def stop_at_eight(stats: Any) -> None:
        if stats.finished >= 8:
            raise RuntimeError("stopped by the test")

    spec = quadratic_spec(search__budget=40, search__batch_size=4, search__max_in_flight=4,
                          evaluator={"kind": "python", "target": "tests.support.evaluators:slow_quadratic"})
    monkeypatch.setenv("ATLAS_TEST_SLEEP", "0.05")  # progress is reported every 0.3 s at most
    with pytest.raises(RuntimeError, match="stopped by the test"):
        api.run(spec, storage=url, executor="inline", progress=stop_at_eight)
    created = campaign(tmp_path / "atlas.db")[1]
    assert created < 30
    lowered = invoke("resume", "quad", "--budget", "30", *where)
    assert lowered.exit_code == 0, lowered.output
    assert lowered.stderr.splitlines() == [
        "warning: --budget 30 lowers campaign quad's budget from 40: it stops at 30 evaluations"]
    assert campaign(tmp_path / "atlas.db")[:2] == ("finished", 30)
    raised = invoke("resume", "quad", "--budget", "36", *where)
    assert raised.exit_code == 0 and raised.stderr == ""  # a raise says nothing
    refused = invoke("resume", "quad", "--budget", "32", *where)  # below what it has: refused, alone
    assert "is below the 36 evaluations" in one_error(refused) and "warning" not in refused.stderr
