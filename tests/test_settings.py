"""Settings from the environment: a malformed one is one ``error:`` line naming the
variable, read before anything is written (it was a traceback at import, or a lease of
0 s that any other scheduler could take over at once)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from entropy_atlas import settings
from search.cli import app
from tests.conftest import quadratic_spec


@pytest.mark.parametrize(("name", "value", "message"), [
    ("ATLAS_LEASE_TTL", "abc", "ATLAS_LEASE_TTL='abc': must be a number of seconds > 0"),
    ("ATLAS_LEASE_TTL", "0", "ATLAS_LEASE_TTL=0: must be a finite number of seconds > 0"),
    ("ATLAS_LEASE_TTL", "nan", "ATLAS_LEASE_TTL=nan: must be a finite number of seconds > 0"),
    ("ATLAS_DB_RETRY_S", "-5", "ATLAS_DB_RETRY_S=-5: must be a finite number of seconds >= 0"),
    ("ATLAS_DB_RETRY_S", "inf", "ATLAS_DB_RETRY_S=inf: must be a finite number of seconds >= 0"),
])
def test_a_malformed_setting_is_one_line_and_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 name: str, value: str, message: str) -> None:
    monkeypatch.setenv(name, value)
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=30)))
    db = tmp_path / "atlas.db"
    result = CliRunner().invoke(app, ["run", str(spec), "--storage", f"sqlite:///{db}", "--executor", "inline"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert not db.exists()


def test_the_settings_and_their_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ATLAS_LEASE_TTL", raising=False)
    monkeypatch.setenv("ATLAS_DB_RETRY_S", " ")
    assert (settings.lease_ttl_s(), settings.db_retry_s()) == (30.0, 120.0)
    monkeypatch.setenv("ATLAS_LEASE_TTL", "2.5")
    monkeypatch.setenv("ATLAS_DB_RETRY_S", "0")
    assert (settings.lease_ttl_s(), settings.db_retry_s()) == (2.5, 0.0)
