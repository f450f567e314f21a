"""``atlas --help`` and ``atlas COMMAND --help`` read as help for users: no docstring markup
(````x````, ``:func:``), no flag shown as taking a value (``--json <bool>``), and the text
wrapped by the terminal, never at the docstring's own line breaks (search/cli_help.py)."""

from __future__ import annotations

import inspect
import itertools
import re

import pytest
import typer
from typer import rich_utils
from typer.testing import CliRunner

from search import cli as cli_module

MARKUP = ("``", ":func:", ":class:", ":meth:", ":mod:", ":attr:", "<bool>")
WIDE = 2000  # columns where no help text needs wrapping: every break in it came from the source
COMMANDS = sorted(typer.main.get_command(cli_module.app).commands)  # type: ignore[attr-defined]


def _help(args: list[str], columns: int, monkeypatch: pytest.MonkeyPatch) -> str:
    """``atlas ARGS --help`` as a terminal ``columns`` wide shows it; it exits 0."""
    monkeypatch.setattr(rich_utils, "MAX_WIDTH", columns)  # over $TERMINAL_WIDTH, read at import
    result = CliRunner().invoke(cli_module.app, [*args, "--help"], env={"COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result.output


def _paragraphs(command: str) -> list[str]:
    """The paragraphs of ``command``'s help a user reads (its docstring up to typer's ``\\f``
    cut), each as one line of single-spaced words."""
    click_command = typer.main.get_command(cli_module.app).commands[command]  # type: ignore[attr-defined]
    text = inspect.cleandoc(click_command.help or "").partition("\f")[0]
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


def _one_line(paragraph: str, output: str) -> bool:
    return any(paragraph in " ".join(line.split()) for line in output.splitlines())


def test_every_registered_command_is_checked() -> None:
    """The commands checked are the app's: each one registered, none missed."""
    assert len(COMMANDS) == len(cli_module.app.registered_commands) >= 14
    assert {"run", "status", "law", "delete", "map", "dashboard"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_shows_no_markup_and_no_typed_flags(command: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    """At 200 columns a command's help shows no Sphinx/rst markup and no ``<bool>``."""
    output = _help([] if command is None else [command], 200, monkeypatch)
    found = [m for m in MARKUP if m in output]
    assert not found, f"{found} in `atlas {command or ''} --help`:\n{output}"


@pytest.mark.parametrize("command", COMMANDS)
def test_help_paragraphs_are_not_cut_at_source_newlines(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the terminal is wide enough, each paragraph of a command's description is one
    line, on its own page and (its first) in ``atlas --help``'s list of commands."""
    paragraphs = _paragraphs(command)
    assert paragraphs, f"{command} has no help"
    page = _help([command], WIDE, monkeypatch)
    cut = [p for p in paragraphs if not _one_line(p, page)]
    assert not cut, f"cut across lines in `atlas {command} --help`: {cut}\n{page}"
    listing = _help([], WIDE, monkeypatch)
    assert _one_line(paragraphs[0], listing), f"{command}'s summary cut in `atlas --help`:\n{listing}"


@pytest.mark.parametrize("command", ["status", "delete", "logs"])
def test_flags_take_no_value(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag's row names the flag and its help, with no type between them, as it takes none."""
    output = _help([command], 200, monkeypatch)
    flag = {"status": "--json", "delete": "--yes", "logs": "--follow"}[command]
    row = next(line for line in output.splitlines() if line.strip(" │").startswith(flag))
    assert re.search(re.escape(flag) + r"(\s+-\w)?\s+[a-z]", row), row


def test_help_wraps_at_the_terminal_not_mid_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    """At 200 columns no description line ends mid-sentence and continues lowercase on the
    next where the first had room for the next word (a break the terminal did not need)."""
    for command in [None, *COMMANDS]:
        lines = [line.strip(" │") for line in _help([] if command is None else [command], 200,
                                                   monkeypatch).splitlines()]
        for line, after in itertools.pairwise(lines):
            words = after.split()
            if not line or not words or not words[0][0].islower() or line[-1] in ".;:,)":
                continue
            assert len(line) + 1 + len(words[0]) > 190, f"`atlas {command or ''} --help` breaks early:\n{line}\n{after}"
