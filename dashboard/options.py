"""The dashboard's options, checked before anything is opened or bound: ``--poll`` and
``--allow-host``. A value that cannot work is a :class:`DashboardError` (one ``error:``
line, exit code 2, from ``atlas dashboard`` and ``python -m dashboard`` alike), never a
page that fails later or a traceback half-way through start-up.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable

from entropy_atlas.errors import AtlasError

#: The shortest polling interval: a page checks a running campaign at most ten times a second.
MIN_POLL_S = 0.1
#: The longest: a day. A page waits 5 × ``--poll`` once its campaign stops, and a browser's
#: ``setTimeout`` fires *at once* past 2**31 - 1 ms (24.8 days), so a day keeps both in range.
MAX_POLL_S = 86_400.0
#: A host name as a ``Host`` header carries it (after IDNA): labels of letters, digits, ``-`` and ``_``.
HOST_NAME = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*\.?$")
PORT = re.compile(r"^(?P<host>.*?):(?P<port>\d{1,5})$")


class DashboardError(AtlasError, ValueError):
    """A problem starting the dashboard that the user can fix (e.g. the port is taken)."""


def check_poll(poll_s: float) -> float:
    """``--poll``: a finite number of seconds from :data:`MIN_POLL_S` to :data:`MAX_POLL_S`.

    NaN or an infinity would make every page fail (JSON has neither); 0 or less, or past what
    a browser's timer holds, would make the pages poll without pause."""
    try:
        value = float(poll_s)
    except (TypeError, ValueError):
        raise DashboardError(f"--poll must be a number of seconds, not {poll_s!r}") from None
    if not math.isfinite(value) or not MIN_POLL_S <= value <= MAX_POLL_S:
        raise DashboardError(f"--poll must be a number of seconds from {MIN_POLL_S:g} to {MAX_POLL_S:g} "
                             f"(one day), not {value:g}")
    return value


def _ip_literal(text: str) -> str | None:
    """``text`` as a ``Host`` header names an IP address (IPv6 in brackets), or ``None``."""
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
    if address.version == 6 and "%" in text:
        return None  # a zone id never appears in a Host header
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def _without_port(text: str) -> str:
    """``text`` less a trailing ``:PORT`` (``name:8787``, ``[::1]:8787``); a bare IPv6
    address keeps its colons."""
    if text.startswith("[") and "]:" in text:
        return text[:text.index("]:") + 1]
    match = PORT.match(text)
    if match and ":" not in match["host"]:
        return match["host"]
    return text


def _idna(name: str, given: str) -> str:
    """``name`` as a browser sends it: lower case, non-ASCII labels in IDNA (``xn--…``)."""
    try:
        return name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise DashboardError(f"--allow-host {given!r} is not a host name") from None


def allowed_host(given: str) -> str:
    """One ``--allow-host`` as the ``Host`` check compares it.

    Rules: a host name, an IP address (IPv6 with or without brackets), ``*.DOMAIN`` (the
    domain's hosts) or ``*`` (any host). A port is dropped (the check never compares ports:
    ``name:8787`` is ``name``). Refused: an empty name, a URL (a scheme, a path, a user),
    a wildcard anywhere but a leading ``*.``, and any character a host name cannot hold."""
    text = given.strip()
    if not text:
        raise DashboardError("--allow-host needs a host name (got an empty one)")
    if "://" in text or any(c in text for c in "/?#@ \\"):
        raise DashboardError(f"--allow-host {given!r}: give the host name alone, without a scheme, user or path "
                             f"(e.g. atlas.example.org)")
    if text == "*":
        return text
    text = _without_port(text)
    literal = _ip_literal(text)
    if literal is not None:
        return literal
    wildcard = text.startswith("*.")
    name = text[2:] if wildcard else text
    if "*" in name:
        raise DashboardError(f"--allow-host {given!r}: a wildcard is '*' (any host) or '*.DOMAIN' at the start "
                             f"(e.g. *.example.org)")
    name = _idna(name, given)
    if not HOST_NAME.match(name) or len(name) > 253:
        raise DashboardError(f"--allow-host {given!r} is not a host name")
    return f"*.{name}" if wildcard else name


def allowed_hosts(given: Iterable[str]) -> list[str]:
    """Each of ``given`` by :func:`allowed_host`, in order, without repeats."""
    return list(dict.fromkeys(allowed_host(name) for name in given))


def check_host_patterns(patterns: Iterable[str]) -> list[str]:
    """``patterns`` for the app's ``Host`` check, refused (:class:`DashboardError`) where a
    wildcard is anywhere but a whole ``*`` or a leading ``*.``: Starlette would fail on them
    only once the server starts, with an ``AssertionError``."""
    out = list(patterns)
    for pattern in out:
        if "*" in pattern[1:] or (pattern.startswith("*") and pattern != "*" and not pattern.startswith("*.")):
            raise DashboardError(f"allowed host {pattern!r}: a wildcard is '*' (any host) or '*.DOMAIN' at the start")
    return out
