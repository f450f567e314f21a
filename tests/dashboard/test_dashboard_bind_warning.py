"""The dashboard's "anyone who can reach this address" warning follows the address the
socket bound, not the ``--host`` name: a name that resolves to this machine is served on
loopback (no warning), a wildcard is served to every interface (a warning)."""

from __future__ import annotations

import io
import socket

import pytest
import uvicorn

from dashboard.cli import serve


def can_resolve_to_loopback(name: str) -> bool:
    try:
        return socket.getaddrinfo(name, 0)[0][4][0] == "127.0.0.1"
    except OSError:
        return False


def served_warning(monkeypatch: pytest.MonkeyPatch, dash_url: str, host: str) -> str:
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    out = io.StringIO()
    serve(dash_url, host, 0, out=out)
    return out.getvalue()


def test_a_wildcard_bind_warns(monkeypatch: pytest.MonkeyPatch, dash_url: str) -> None:
    text = served_warning(monkeypatch, dash_url, "0.0.0.0")
    assert "warning: serving on 0.0.0.0: anyone who can reach this address can read the archive" in text


def test_a_name_bound_on_loopback_does_not_warn(monkeypatch: pytest.MonkeyPatch, dash_url: str) -> None:
    if not can_resolve_to_loopback("localhost"):
        pytest.skip("localhost does not resolve to 127.0.0.1 here")
    monkeypatch.setattr("dashboard.cli.is_loopback", lambda host: host == "127.0.0.1")
    text = served_warning(monkeypatch, dash_url, "localhost")
    assert "warning" not in text and "Entropy Atlas dashboard on" in text
