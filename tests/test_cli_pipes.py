"""The read commands' output in shell pipelines and odd terminals, in subprocesses: a reader
that closed the pipe before the command wrote (141, as coreutils' commands killed by
SIGPIPE), standard output on a full device (one ``error:`` line, exit 2), a locale whose
encoding lacks the campaign's text (escaped; JSON stays JSON), a 20-column console (no
table cut)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from search import api
from search import cli as cli_module
from tests.conftest import quadratic_spec

ATLAS = [sys.executable, "-m", "search.cli"]
NAME = "pipes"
CHOICES = ["café", "日本語", "naïve—x"]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A finished campaign of 12 evaluations whose objective and a categorical parameter's
    choices are not ASCII."""
    spec = quadratic_spec(name=NAME, objective__name="scöre", search__budget=12, search__batch_size=4,
                          search__max_in_flight=4)
    spec["space"]["mot"] = {"type": "categorical", "choices": CHOICES}
    url = f"sqlite:///{tmp_path_factory.mktemp('pipes') / 'a.db'}"
    api.run(spec, storage=url, executor="inline")
    return url


def atlas(*args: str, stdout: int, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ATLAS, *args], stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120,
                          env=env or dict(os.environ))


READS = [
    ("elites", NAME),
    ("elites", NAME, "--format", "json"),
    ("elites", NAME, "--format", "csv"),
    ("status",),
    ("status", NAME, "--json"),
    ("failures", NAME, "--format", "json"),
    ("law", NAME, "--json"),
]


@pytest.mark.parametrize("args", [*READS, ("export", NAME, "--out", "{tmp}/out.csv")], ids=" ".join)
def test_a_reader_that_closed_the_pipe_ends_the_command_with_141_and_no_traceback(
        storage: str, tmp_path: Path, args: tuple[str, ...]) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the command writes a byte
    try:
        done = atlas(*[a.format(tmp=tmp_path) for a in args], "--storage", storage, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert all(line.startswith("warning:") for line in done.stderr.splitlines()), done.stderr  # law warns


@pytest.mark.parametrize("args", READS[:2] + READS[4:5], ids=" ".join)
def test_standard_output_on_a_full_device_is_one_error_line_and_exit_2(storage: str, args: tuple[str, ...]) -> None:
    with open("/dev/full", "w") as full:
        done = atlas(*args, "--storage", storage, stdout=full.fileno())
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: cannot write standard output (No space left on device): the output "
                                        "is cut short; send it where it can be written"]


def ascii_locale() -> dict[str, str]:
    """The environment of a terminal whose encoding is ASCII: the C locale, with neither of
    Python's ways round it (UTF-8 mode, locale coercion), no PYTHONIOENCODING."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONIOENCODING", "LANG", "LANGUAGE")}
    return {**env, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}


def test_a_locale_that_cannot_encode_the_campaigns_text_escapes_it(storage: str) -> None:
    table = atlas("elites", NAME, "--storage", storage, stdout=subprocess.PIPE, env=ascii_locale())
    assert table.returncode == 0, table.stderr
    assert "\\u65e5\\u672c\\u8a9e" in table.stdout or "na\\xefve\\u2014x" in table.stdout
    status = atlas("status", NAME, "--storage", storage, stdout=subprocess.PIPE, env=ascii_locale())
    assert status.returncode == 0 and "fewer than 20" in status.stdout, status.stderr


def test_json_stays_valid_json_in_a_locale_that_cannot_encode_the_campaigns_text(storage: str) -> None:
    done = atlas("law", NAME, "--json", "--storage", storage, stdout=subprocess.PIPE, env=ascii_locale())
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["objective"] == "scöre"
    elites = atlas("elites", NAME, "--format", "json", "--storage", storage, stdout=subprocess.PIPE,
                   env=ascii_locale())
    assert {e["params"]["mot"] for e in json.loads(elites.stdout)} <= set(CHOICES)


@pytest.mark.parametrize(("args", "whole"), [(("status",), f"{NAME}  finished  12/12"),
                                             (("status", NAME), "map-elites"), (("law", NAME), "evaluations")],
                         ids=["status", "status NAME", "law"])
def test_a_20_column_console_cuts_no_table(storage: str, args: tuple[str, ...], whole: str) -> None:
    out = CliRunner().invoke(cli_module.app, [*args, "--storage", storage], env={"COLUMNS": "20"},
                             catch_exceptions=False).stdout
    assert "…" not in out and whole in out, out
