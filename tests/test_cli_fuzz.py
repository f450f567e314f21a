"""Fuzzing `atlas run` with malformed campaign files: every one is refused with one-line
``error:`` messages and exit code 2, and no campaign row is ever written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from search.api import check_evaluator
from search.cli import app
from search.spec import SpecError, load_yaml, parse_spec
from tests.conftest import quadratic_spec
from tests.support.spec_mutations import mutations

BASE = quadratic_spec(search__budget=20)
runner = CliRunner()

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.lists(st.integers(-5, 5), max_size=3),
    st.dictionaries(st.sampled_from(["bogus", "low", "kind", "x"]), st.integers(-3, 3), max_size=2),
    st.sampled_from(["benchmrk", "tests.support.evaluators:nope", "nope:fn", "cvt", "grid", "1e12", ".inf"]),
)
TEXT_DAMAGE = st.sampled_from([
    "", "name: a\nname: b\n", "a: &x [1]\nb: *x\n", ":\n  - [", "\t\x00", "- just\n- a list\n",
    "budget: .nan\n", "search: {budget: .inf}\n",
])


@st.composite
def malformed(draw: st.DrawFn) -> str:
    """A campaign file's text: the base spec with 1–3 values replaced or removed, then maybe
    text-level damage (duplicate keys, aliases, broken YAML, non-finite numbers)."""
    text = yaml.safe_dump(draw(mutations(BASE, LEAVES)), sort_keys=False)
    if draw(st.integers(0, 4)) == 0:
        text = draw(TEXT_DAMAGE) + text
    return text


def is_valid(text: str) -> bool:
    """Whether ``atlas run`` takes the file: read as it reads it (YAML 1.2 numbers, so
    ``1e12`` is a number), then checked."""
    try:
        spec = parse_spec(load_yaml(text))
        check_evaluator(spec)
    except SpecError:
        return False
    except yaml.YAMLError:
        return False
    return True


def test_malformed_campaign_files_are_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "atlas.db"
    seen = {"n": 0}

    @given(malformed())
    @settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                      HealthCheck.function_scoped_fixture])
    def check(text: str) -> None:
        try:
            valid = is_valid(text)
        except Exception:  # the loader must turn everything into a SpecError; the CLI run below says how
            valid = False
        assume(not valid)
        path = tmp_path / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        result = runner.invoke(app, ["run", str(path), "--storage", f"sqlite:///{db}", "--executor", "inline",
                                     "--map", str(tmp_path / "m.png")])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code == 2, (text, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines and all(line.startswith(("error:", "warning:")) for line in lines), result.stderr
        seen["n"] += 1

    check()
    assert seen["n"] >= 400  # almost every example is malformed
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM campaigns").fetchone()[0] == 0
