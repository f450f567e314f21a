"""Four things the command line showed wrong, each fixed:

1. ``atlas law NAME --by PARAM`` laid its table out at its full width wherever a word was
   long (a long measure's name in a note): 294-character lines at a 100-column console;
2. on a terminal, a warning printed while ``atlas run``'s start-up spinner turned was glued
   to the spinner's line;
3. off a terminal (``atlas run … > run.log``) nothing was written while the run started
   (Ray's start, the evaluators' setup: 10–25 s);
4. ``atlas logs`` read ``$ATLAS_STORAGE`` raw: an error about its URL did not name the
   variable, as every other command's does.
"""

from __future__ import annotations

import io
import math
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from search import api, cli, consoles, jobs
from search.consoles import _Console
from tests.conftest import quadratic_spec

LONG_MEASURE = "mean_token_entropy_over_all_generated_continuations_nats"
FLAT = "flat_sampler_with_a_rather_long_name"


def regimes(params: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """A ``kind: python`` target: two samplers on two laws of R = −a·exp(H) + b, and a third
    whose every point is the same (H = 0, R = 1): a group the law cannot be fitted to."""
    t, sampler = float(params["t"]), str(params["sampler"])
    if sampler == FLAT:
        return {"objective": 1.0, "measures": {LONG_MEASURE: 0.0}}
    a, b, h = (0.3, 1.3, t) if sampler == "good" else (0.05, 0.7, 0.1 + t)
    return {"objective": -a * math.exp(h) + b + 0.005 * math.sin(41.0 * t), "measures": {LONG_MEASURE: h}}


def law_campaign(url: str) -> None:
    api.run({
        "name": "wide",
        "evaluator": {"kind": "python", "target": "tests.test_cli_narrow_and_startup:regimes"},
        "space": {"sampler": {"type": "categorical", "choices": ["good", "capped", FLAT]},
                  "t": {"type": "float", "low": 0.0, "high": 1.5}},
        "objective": {"name": "accuracy", "direction": "maximize"},
        "measures": [{"name": LONG_MEASURE, "low": 0.0, "high": 1.6, "bins": 8}],
        "search": {"algorithm": "random", "budget": 60, "batch_size": 10, "max_in_flight": 10, "seed": 0},
    }, storage=url, executor="inline")


# --------------------------------------------------------------------------- 1. atlas law --by's width
def test_the_law_by_table_fits_the_console_and_names_what_it_leaves_out(sqlite_url: str,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    law_campaign(sqlite_url)
    monkeypatch.delenv("COLUMNS", raising=False)
    for width in (100, 80, None):  # None: off a terminal with no COLUMNS, rich's 80
        monkeypatch.setattr(cli.console, "_width", width)
        shown = CliRunner().invoke(cli.app, ["law", "wide", "--storage", sqlite_url, "--by", "sampler"],
                                   catch_exceptions=False)
        assert shown.exit_code == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert max(map(len, lines)) <= (width or 80), shown.stdout
        text = " ".join(shown.stdout.split())
        assert "good" in text and "capped" in text and "all (ungrouped)" in text
        assert f"not shown at {width or 80} columns: " in text and "(see --json)" in text
        at = next(line for line in lines if line.startswith("sampler")).index("note")
        note = f"every point has the same {LONG_MEASURE} (0) and the same accuracy (1): there is nothing to fit"
        assert "".join(note.split()) in "".join("".join(line[at:] for line in lines).split())  # folded, whole


def test_a_wide_console_shows_every_column_of_the_law_by_table(monkeypatch: pytest.MonkeyPatch) -> None:
    from search.cli_tables import law_groups_table

    fit = SimpleNamespace(a=0.3, b=1.3, ceiling=1.0, ceiling_ci=(0.99, 1.01), r2=0.99, n=30, bound="ceiling")
    reading = SimpleNamespace(mode="cross-configuration", by="sampler", objective="accuracy", measure="h",
                              groups=[SimpleNamespace(label="good", fit=fit, n=30, reason=None)], fit=fit,
                              reason=None)
    monkeypatch.setattr(cli.console, "_width", 200)
    table = law_groups_table("c", reading)
    assert [str(c.header) for c in table.columns] == ["sampler", "a", "b", "ceiling −a + b", "95% CI", "R²",
                                                      "n (evaluations)", "note"]
    assert table.caption is None
    shown = {}
    for width in (80, 75, 70, 60):  # b goes first, then a, then the 95% CI; at 60 two headers take two lines
        monkeypatch.setattr(cli.console, "_width", width)
        narrow = law_groups_table("c", reading)
        shown[width] = [str(c.header) for c in narrow.columns]
        left_out = [c for c in ("a", "b", "95% CI") if c not in shown[width]]
        assert narrow.caption == f"not shown at {width} columns: {', '.join(left_out)} (see --json)"
    assert shown == {80: ["sampler", "a", "ceiling −a + b", "95% CI", "R²", "n (evaluations)", "note"],
                     75: ["sampler", "ceiling −a + b", "95% CI", "R²", "n (evaluations)", "note"],
                     70: ["sampler", "ceiling −a + b", "R²", "n (evaluations)", "note"],
                     60: ["sampler", "ceiling\n−a + b", "R²", "n\n(evaluations)", "note"]}


# --------------------------------------------------------------------------- 2. a warning beside the spinner
def terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """``console`` and ``err`` as one terminal (a StringIO both write to, forced to be a terminal)."""
    screen = io.StringIO()
    out = _Console(file=screen, force_terminal=True, width=100, color_system=None)
    error = _Console(file=screen, stderr=True, force_terminal=True, width=100, color_system=None)
    for module in (consoles, cli):
        monkeypatch.setattr(module, "console", out)
        monkeypatch.setattr(module, "err", error)
    return screen


def screen_lines(screen: io.StringIO) -> list[str]:
    """What the terminal showed, line by line, its cursor controls dropped (a ``\\r`` starts a line)."""
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
    return re.split(r"[\r\n]", text)


def test_a_warning_while_the_spinner_turns_is_a_line_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``⠋ starting: the storage, the proposer, the workers and their setupwarning: …``."""
    screen = terminal(monkeypatch)
    with cli._ProgressView(10) as view:
        view.starting.update(spinner="dots")  # drawn now, not at the spinner thread's next turn
        cli._warn("the file has something to say")
    lines = screen_lines(screen)
    assert "warning: the file has something to say" in lines, lines
    assert any(line.endswith("starting: the storage, the proposer, the workers and their setup") for line in lines)


def test_a_warning_with_no_live_display_or_off_the_terminal_still_goes_to_standard_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    screen = terminal(monkeypatch)
    cli._warn("no spinner")
    assert screen.getvalue() == "warning: no spinner\n"
    out, elsewhere = io.StringIO(), io.StringIO()
    monkeypatch.setattr(consoles, "err", _Console(file=elsewhere, stderr=True, width=100))  # standard error a file
    monkeypatch.setattr(cli, "err", consoles.err)
    monkeypatch.setattr(cli.console, "file", out)
    with cli._ProgressView(10):
        cli._warn("spinner on the terminal, standard error a file")
    assert elsewhere.getvalue() == "warning: spinner on the terminal, standard error a file\n"
    assert "spinner on the terminal" not in out.getvalue()


# --------------------------------------------------------------------------- 3. a run's start in a log
def test_a_run_off_a_terminal_says_it_is_starting(tmp_path: Path) -> None:
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=4, search__batch_size=2)))
    done = CliRunner().invoke(cli.app, ["run", str(spec), "--executor", "inline", "--storage",
                                        f"sqlite:///{tmp_path / 'a.db'}", "--map", str(tmp_path / "m.png")],
                              catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "starting: the storage, the proposer, the workers and their setup", done.stdout
    assert any(line.startswith("quad: 4 evaluations") for line in lines[1:])


# --------------------------------------------------------------------------- 4. atlas logs and ATLAS_STORAGE
@pytest.fixture
def job_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """One job of campaign ``sub``, that names no storage (submitted before jobs named one)."""
    job = SimpleNamespace(metadata={jobs.METADATA_KEY: "sub"}, submission_id="job-1", start_time=1)
    fake = SimpleNamespace(list_jobs=lambda: [job], get_job_logs=lambda job_id: f"the log of {job_id}\n")
    monkeypatch.setattr(jobs, "_client", lambda address: fake)


def logs(*args: str, env: dict[str, str | None]) -> Any:
    return CliRunner().invoke(cli.app, ["logs", "sub", "--address", "http://127.0.0.1:8265", *args], env=env,
                              catch_exceptions=False)


@pytest.mark.usefixtures("job_server")
def test_atlas_logs_names_atlas_storage_in_an_error_about_its_url() -> None:
    """Before: ``error: unsupported storage 'sqlit' in sqlit:///x; …``, the variable that held it out of sight."""
    bad = logs(env={"ATLAS_STORAGE": "sqlit:///x"})
    assert bad.exit_code == 2 and bad.stdout == ""
    assert bad.stderr == ("error: ATLAS_STORAGE=sqlit:///x: unsupported storage 'sqlit' in sqlit:///x; "
                          "did you mean sqlite:///x?\n")
    typed = logs("--storage", "sqlit:///y", env={"ATLAS_STORAGE": "sqlite:///x.db"})
    assert typed.exit_code == 2 and typed.stderr.startswith("error: unsupported storage 'sqlit' in sqlit:///y")
    empty = logs("--storage", "", env={"ATLAS_STORAGE": None})  # had meant: any storage, without a word
    assert empty.exit_code == 2 and empty.stderr.startswith("error: --storage is empty: give a storage URL")
    shown = logs(env={"ATLAS_STORAGE": "sqlite:///x.db"})
    assert shown.exit_code == 0 and shown.stdout == "the log of job-1\n", shown.stderr
    assert logs(env={"ATLAS_STORAGE": ""}).stdout == "the log of job-1\n"  # set but empty: unset
