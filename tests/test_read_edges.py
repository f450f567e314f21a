"""The read side at its edges: the Python API answers as the command line does (limits,
statuses, names, output paths), usage errors are one line, and a killed scheduler's
campaign reads as interrupted at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import archive
from archive.law import LawFitError
from entropy_atlas.errors import OutputPathError
from search import api
from tests.conftest import quadratic_spec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def campaign_url(storage_url: str) -> str:
    spec = quadratic_spec(search__budget=8, search__fail_fast=0)
    spec["evaluator"]["target"] = "tests.support.evaluators:flaky"
    api.run(spec, storage=storage_url, executor="inline")
    return storage_url


def test_limits_read_alike_on_both_storages(campaign_url: str) -> None:
    """A negative limit: all rows on SQLite (``LIMIT -1``) and an error on PostgreSQL
    before; one past 64 bits: an overflow before. Now refused, and all, on both."""
    with archive.open(campaign_url) as handle:
        camp = handle.campaign("quad")
        for call in (lambda: camp.failed_evaluations(limit=-1), lambda: camp.failure_summary(limit=-1),
                     lambda: camp.elites(top=-1)):
            with pytest.raises(ValueError, match="must be >= 0"):
                call()
        assert len(camp.elites(top=2**63)) == len(camp.elites())
        assert len(camp.failed_evaluations(limit=2**64)) == len(camp.failed_evaluations())
        with pytest.raises(ValueError, match="status: must be one of pending, running, done, failed"):
            camp.evaluations(status="bogus")
        for name in ("a\x00b", "a\udcffb"):
            with pytest.raises(archive.CampaignNotFound):
                handle.campaign(name)


def test_the_api_checks_output_paths_as_the_command_line_does(campaign_url: str, tmp_path: Path) -> None:
    with archive.open(campaign_url) as handle:
        camp = handle.campaign("quad")
        with pytest.raises(OutputPathError, match="is a directory"):
            camp.map(tmp_path)
        with pytest.raises(OutputPathError, match=r"must end in \.png, \.svg, \.pdf"):
            camp.front(tmp_path / "x.txt")
        with pytest.raises(OutputPathError, match=r"must end in \.png, \.svg, \.pdf"):
            camp.map(tmp_path / "x.jpg")
        with pytest.raises(OutputPathError, match="is a directory"):
            camp.export(tmp_path)
    assert not list(tmp_path.glob("x.*")) and not Path(f"{tmp_path}.png").exists()  # nothing written


def test_an_empty_law_measure_is_refused(campaign_url: str) -> None:
    with archive.open(campaign_url) as handle, pytest.raises(LawFitError, match=r"^measure \(--measure\) is empty"):
        handle.campaign("quad").law("", "cross-configuration")


@pytest.mark.parametrize("args, message", [
    (["failures", "quad", "--limit", "abc"], "Invalid value for '--limit'"),
    (["status", "-x"], "No such option: -x"),
    (["bogus"], "No such command 'bogus'"),
])
def test_usage_errors_are_one_line(args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "search.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and message in lines[0] and "--help` lists what it takes" in lines[0]


def test_a_killed_schedulers_campaign_reads_interrupted_at_once(sqlite_url: str) -> None:
    """Its lease is unexpired for up to a TTL, but its process on this host is gone."""
    from archive import queries
    from dashboard.data import CampaignInfo

    api.run(quadratic_spec(search__budget=4), storage=sqlite_url, executor="inline")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket
    import time

    from archive.store import Store

    store = Store(sqlite_url)
    try:
        record = store.require_campaign("quad")
        holder = f"{socket.gethostname()}:{dead.pid}:deadbeef"
        store.update_campaign(record.id, status="running", lease_holder=holder, lease_expires=time.time() + 600)
        info = CampaignInfo.of(queries.campaign_row(store, "quad"))
        assert info.status == "running" and info.state == "interrupted"
    finally:
        store.close()
