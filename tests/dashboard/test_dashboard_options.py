"""``--poll`` and ``--allow-host`` are checked before anything is opened or bound
(:mod:`dashboard.options`): a value that cannot work is one ``error:`` line and exit code 2
from both launchers, never pages that fail later, a page that polls without pause, or a
Starlette traceback after the address was announced."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard import create_app
from dashboard.cli import serve
from dashboard.options import MAX_POLL_S, DashboardError, allowed_host, allowed_hosts, check_poll
from tests.dashboard.test_dashboard_cli import LAUNCHERS, start, stop

SET_TIMEOUT_MAX_S = (2**31 - 1) / 1000  # past this a browser's setTimeout fires at once


@pytest.mark.parametrize("poll", [math.nan, math.inf, -math.inf, -1.0, 0.0, 0.01, 86_401.0, 2_147_484.0, 1e300])
def test_a_poll_that_cannot_work_is_refused(poll: float) -> None:
    with pytest.raises(DashboardError, match=r"^--poll must be a number of seconds from 0\.1 to 86400"):
        check_poll(poll)


@pytest.mark.parametrize("poll", [0.1, 0.5, 2, 60, MAX_POLL_S])
def test_a_poll_in_range_is_kept(poll: float) -> None:
    assert check_poll(poll) == poll
    assert 5 * MAX_POLL_S * 1000 <= SET_TIMEOUT_MAX_S * 1000  # the slow poll (5 x) fits a browser's timer too


def test_the_app_factory_refuses_a_poll_that_would_break_its_pages(dash_url: str) -> None:
    """``nan`` made every HTML page a 500 (JSON has no NaN)."""
    for poll in (math.nan, -1.0):
        with pytest.raises(DashboardError):
            create_app(dash_url, poll_s=poll)


@pytest.mark.parametrize(("given", "kept"), [
    ("myhost:18788", "myhost"), ("MyHost", "myhost"), (" atlas.example.org ", "atlas.example.org"),
    ("*.example.org", "*.example.org"), ("*", "*"), ("fe80::1", "[fe80::1]"), ("[::1]:8787", "[::1]"),
    ("10.0.0.1:80", "10.0.0.1"), ("bücher.example", "xn--bcher-kva.example"),
    ("atlas.example.org.", "atlas.example.org."),
])
def test_an_allowed_host_is_normalised(given: str, kept: str) -> None:
    assert allowed_host(given) == kept


@pytest.mark.parametrize("given", ["", "  ", "a*b", "*foo", "foo*", "*.*.example.org", "http://myhost",
                                   "myhost/path", "user@myhost", "my host", "myhost:port", "exa$mple", "-.-..",
                                   "fe80::1%eth0"])
def test_an_allowed_host_that_never_matches_is_refused(given: str) -> None:
    with pytest.raises(DashboardError, match=r"^--allow-host"):
        allowed_host(given)


def test_a_name_with_a_port_answers_requests_for_that_name(dash_url: str) -> None:
    """``--allow-host myhost:18788`` had been kept as is, and never matched (the check drops the port)."""
    hosts = allowed_hosts(["myhost:18788", "myhost"])
    assert hosts == ["myhost"]
    with TestClient(create_app(dash_url, allowed_hosts=hosts), base_url="http://myhost:18788") as c:
        assert c.get("/api/health").status_code == 200


def test_bad_options_are_refused_before_the_storage_is_opened(tmp_path: Path) -> None:
    missing = f"sqlite:///{tmp_path / 'missing.db'}"  # would be a StorageError, were it opened first
    with pytest.raises(DashboardError, match="--poll"):
        serve(missing, port=0, poll_s=math.nan)
    with pytest.raises(DashboardError, match="--allow-host"):
        serve(missing, port=0, allow_hosts=["*foo"])


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
@pytest.mark.parametrize(("option", "value", "says"), [
    ("--poll", "nan", "error: --poll must be a number of seconds from 0.1 to 86400 (one day), not nan"),
    ("--allow-host", "a*b", "error: --allow-host 'a*b': a wildcard is '*' (any host) or '*.DOMAIN' at the start"),
])
def test_a_bad_option_is_one_error_line_and_exit_2(dash_url: str, launcher: str, option: str, value: str,
                                                    says: str) -> None:
    proc = start(launcher, "--storage", dash_url, "--port", "0", option, value)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        stop(proc)
    assert proc.returncode == 2, err
    assert err.strip().splitlines() == [err.strip()] and err.startswith(says), err
    assert "Traceback" not in err and "dashboard on" not in err
