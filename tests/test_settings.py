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


TTL_RANGE = ("must be from 1 to 86400 seconds (the lease is renewed every third of it, and outlives a crashed "
             "scheduler that long)")
LOCK_RANGE = "must be from 0.001 to 86400 seconds (PostgreSQL's lock timeout, in whole milliseconds)"


@pytest.mark.parametrize(("name", "value", "message"), [
    ("ATLAS_LEASE_TTL", "1e9", f"ATLAS_LEASE_TTL=1e9: {TTL_RANGE}"),
    ("ATLAS_LEASE_TTL", "0.001", f"ATLAS_LEASE_TTL=0.001: {TTL_RANGE}"),
    ("ATLAS_DB_LOCK_TIMEOUT_S", "abc", "ATLAS_DB_LOCK_TIMEOUT_S='abc': must be a number of seconds > 0"),
    ("ATLAS_DB_LOCK_TIMEOUT_S", "0", "ATLAS_DB_LOCK_TIMEOUT_S=0: must be a finite number of seconds > 0"),
    ("ATLAS_DB_LOCK_TIMEOUT_S", "-1", "ATLAS_DB_LOCK_TIMEOUT_S=-1: must be a finite number of seconds > 0"),
    ("ATLAS_DB_LOCK_TIMEOUT_S", "0.0004", f"ATLAS_DB_LOCK_TIMEOUT_S=0.0004: {LOCK_RANGE}"),
    ("ATLAS_DB_LOCK_TIMEOUT_S", "1e9", f"ATLAS_DB_LOCK_TIMEOUT_S=1e9: {LOCK_RANGE}"),
])
def test_a_setting_out_of_range_is_refused_on_sqlite_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    """Before: ``ATLAS_LEASE_TTL=1e9`` (a lease of 31 years: a crashed run's campaign locked
    to every other host that long) or ``0.001`` (renewed every third of a millisecond), and a
    malformed ``ATLAS_DB_LOCK_TIMEOUT_S`` (refused on PostgreSQL), were taken by `atlas run`
    on SQLite without a word, exit 0."""
    monkeypatch.setenv(name, value)
    spec = tmp_path / "c.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__budget=6)))
    db = tmp_path / "atlas.db"
    result = CliRunner().invoke(app, ["run", str(spec), "--storage", f"sqlite:///{db}", "--executor", "inline",
                                      "--map", str(tmp_path / "m.png")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


@pytest.mark.parametrize("url", ["sqlite:///{tmp}/atlas.db", "postgresql+psycopg://u@127.0.0.1:1/atlas"])
def test_a_malformed_lock_timeout_is_refused_alike_on_every_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    url: str) -> None:
    """Read by every engine as it is made, before a SQLite file is created or a server
    is tried (port 1: nothing listens there)."""
    from archive.store import Store
    from entropy_atlas.settings import SettingError

    monkeypatch.setenv("ATLAS_DB_LOCK_TIMEOUT_S", "abc")
    for readonly in (False, True):
        with pytest.raises(SettingError, match=r"^ATLAS_DB_LOCK_TIMEOUT_S='abc': must be a number of seconds > 0$"):
            Store(url.format(tmp=tmp_path), readonly=readonly)
    assert list(tmp_path.iterdir()) == []


def test_the_ranges_bounds_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    for ttl in ("1", "86400"):
        monkeypatch.setenv("ATLAS_LEASE_TTL", ttl)
        assert settings.lease_ttl_s() == float(ttl)
    for timeout in ("0.001", "0.3", "86400"):
        monkeypatch.setenv("ATLAS_DB_LOCK_TIMEOUT_S", timeout)
        assert settings.db_lock_timeout_s() == float(timeout)
