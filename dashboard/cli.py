"""Serve the dashboard over a storage until interrupted: :func:`serve`, the one entry of
``atlas dashboard`` and ``python -m dashboard``.

The storage is checked and the port bound *before* the server starts, so a storage that
cannot be reached or a port that is taken is a clear error, not a traceback half-way
through start-up.

The server answers only requests whose ``Host`` header names the address it serves
(DNS-rebinding protection, see :func:`default_allowed_hosts`); ``allowed_hosts`` widens
or replaces that list.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Sequence
from typing import TextIO

import uvicorn

from archive.engine import default_storage
from dashboard.app import create_app
from dashboard.options import DashboardError, allowed_hosts, check_poll
from entropy_atlas.loopback import is_loopback_host

__all__ = ["DashboardError", "bind", "default_allowed_hosts", "make_server", "serve", "url_of"]

#: Whether a ``--host`` only answers this machine (no warning then): the project's one rule,
#: :func:`entropy_atlas.loopback.is_loopback_host` (loopback addresses, ``localhost`` and names
#: under it, ``localhost.localdomain``, ``ip6-localhost``, ``ip6-loopback``).
is_loopback = is_loopback_host
#: What a browser on this machine puts in ``Host`` for a loopback address.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


def host_header_name(host: str) -> str:
    """``host`` as a ``Host`` header names it: IPv6 addresses in brackets, names lower-case."""
    bare = host.strip("[]")
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        return host.lower()
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def _machine_names() -> list[str]:
    """This machine's host name, fully qualified name and the addresses they resolve to."""
    names = [socket.gethostname(), socket.getfqdn()]
    for name in list(names):
        try:
            names += [info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)]
        except OSError:
            continue
    return names


def default_allowed_hosts(host: str) -> list[str]:
    """The ``Host`` names a dashboard bound to ``host`` answers, every other refused (400).

    Always the loopback names (``127.0.0.1``, ``localhost``, ``[::1]``) and ``host``
    itself; for a wildcard address (``0.0.0.0``, ``::``) also this machine's host name,
    fully qualified name and their addresses. A name the machine is reached by that is
    none of these (a DNS alias, a proxy's name) has to be allowed explicitly.
    """
    names = [*LOOPBACK_HOSTS]
    if host.strip() in WILDCARD_HOSTS:
        names += _machine_names()
    else:
        names.append(host)
    return list(dict.fromkeys(host_header_name(n) for n in names if n))


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port; past 65535 is
    refused, where the resolver would wrap it round to another port)."""
    if not 0 <= port <= 65535:
        raise DashboardError(f"cannot serve the dashboard on port {port}: a port is 1 to 65535 (0: any free port)")
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
                log_level: str = "warning", allowed_hosts: Sequence[str] | None = None
                ) -> tuple[uvicorn.Server, socket.socket]:
    """The app over ``storage`` and a uvicorn server bound to ``host:port``, not yet running.

    The app answers only requests whose ``Host`` is one of ``allowed_hosts`` (default:
    :func:`default_allowed_hosts` of ``host``; ``["*"]`` turns the check off). Run it with
    ``server.run(sockets=[sock])``; stop it with ``server.should_exit = True``. Raises
    :class:`~archive.errors.StorageError` (storage) or :class:`DashboardError` (port).
    """
    hosts = list(allowed_hosts) if allowed_hosts is not None else default_allowed_hosts(host)
    app = create_app(storage, poll_s=poll_s, allowed_hosts=hosts)
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


def serve(storage: str | None = None, host: str = "127.0.0.1", port: int = 8787, *, poll_s: float = 2.0,
          allow_hosts: Sequence[str] = (), log_level: str = "warning", out: TextIO | None = None) -> None:
    """Serve the read-only dashboard over ``storage`` (default: ``$ATLAS_STORAGE`` or
    ``sqlite:///atlas.db``) on ``host:port`` until Ctrl+C, which returns normally.

    It binds 127.0.0.1 unless told otherwise; the app has no authentication, so another
    host is served only when asked for, with a warning. Requests are answered only for the
    ``Host`` names of :func:`default_allowed_hosts` and ``allow_hosts``. Raises, before
    serving: :class:`DashboardError` for a ``poll_s`` or an ``allow_hosts`` name that cannot
    work (:mod:`dashboard.options`; checked first, before the storage is opened) or an
    address that cannot be bound; :class:`~archive.errors.StorageError` when the storage
    cannot be reached or holds no archive.
    """
    out = out or sys.stderr
    poll_s = check_poll(poll_s)
    hosts = list(dict.fromkeys([*default_allowed_hosts(host), *allowed_hosts(allow_hosts)]))
    try:
        server, sock = make_server(storage or default_storage(), host, port, poll_s=poll_s, log_level=log_level,
                                   allowed_hosts=hosts)
        # The address bound, not the name asked for: a name that resolved elsewhere is served there.
        if not is_loopback(str(sock.getsockname()[0])):
            print(f"warning: serving on {host}: anyone who can reach this address can read the archive "
                  f"(the dashboard has no authentication; it never writes); answering Host names: "
                  f"{', '.join(hosts)}", file=out)
        print(f"Entropy Atlas dashboard on {url_of(sock)} (read-only; Ctrl+C stops it)", file=out, flush=True)
        try:
            server.run(sockets=[sock])
        finally:
            sock.close()
    except KeyboardInterrupt:
        return
