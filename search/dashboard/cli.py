"""``atlas dashboard``: serve the dashboard over a storage until interrupted.

The storage is checked and the port bound *before* the server starts, so a storage that
cannot be reached or a port that is taken is a clear error, not a traceback half-way
through start-up.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from typing import TextIO

import uvicorn

from entropy_atlas.errors import AtlasError
from search.dashboard.app import create_app

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


class DashboardError(AtlasError, ValueError):
    """A problem starting the dashboard that the user can fix (e.g. the port is taken)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only answers this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DashboardError(f"cannot bind the dashboard to {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = "the port is already in use" if exc.errno in (98, 48, 10048) else exc.strerror
        raise DashboardError(f"cannot serve the dashboard on {host}:{port}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def make_server(storage: str, host: str = "127.0.0.1", port: int = 8787, *, poll_s: float = 2.0,
                log_level: str = "warning") -> tuple[uvicorn.Server, socket.socket]:
    """The app over ``storage`` and a uvicorn server bound to ``host:port``, not yet running.

    Run it with ``server.run(sockets=[sock])``; stop it with ``server.should_exit = True``.
    Raises :class:`~archive.store.StorageError` (storage) or :class:`DashboardError` (port).
    """
    app = create_app(storage, poll_s=poll_s)
    sock = bind(host, port)
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=3,
                            lifespan="on", server_header=False)
    return uvicorn.Server(config), sock


def url_of(sock: socket.socket) -> str:
    """The dashboard's address for a bound socket."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        shown = socket.gethostname()
    return f"http://{shown}:{port}/"


def dashboard(storage: str, host: str = "127.0.0.1", port: int = 8787, *, poll_s: float = 2.0,
              log_level: str = "warning", out: TextIO | None = None) -> None:
    """Serve the read-only dashboard over ``storage`` on ``host:port`` until Ctrl+C.

    It binds 127.0.0.1 unless told otherwise; the app has no authentication, so another
    host is served only when asked for, with a warning. Raises
    :class:`~archive.store.StorageError` when the storage cannot be reached or holds no
    archive, and :class:`DashboardError` when the address cannot be bound, before serving.
    """
    out = out or sys.stderr
    server, sock = make_server(storage, host, port, poll_s=poll_s, log_level=log_level)
    if not is_loopback(host):
        print(f"warning: serving on {host}: anyone who can reach this address can read the archive "
              f"(the dashboard has no authentication; it never writes)", file=out)
    print(f"Entropy Atlas dashboard on {url_of(sock)} (read-only; Ctrl+C stops it)", file=out, flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
