"""Whether a host names this machine: the one rule for the dashboard's bind warning
(``atlas dashboard --host``) and the LLM proposer's unset-key warning (a ``base_url`` on
loopback). Standard library only.

The rule (:func:`is_loopback_host`), on the host as written (no DNS asked):

- an IP literal that is a loopback address: ``127.0.0.0/8``, ``::1`` (bracketed as in a
  URL, ``[::1]``, too), and an IPv4-mapped ``::ffff:127.x.y.z`` (judged as its IPv4 address,
  so the answer does not hang on the Python version);
- ``localhost`` and any name under it (``app.localhost``: RFC 6761 reserves them for
  loopback), and the names Linux distributions give loopback in ``/etc/hosts``:
  ``localhost.localdomain``, ``ip6-localhost``, ``ip6-loopback``;
- names case-insensitive, one trailing dot (the DNS root) allowed: ``LOCALHOST.`` is loopback;
- anything else is not: another name or address, a wildcard (``0.0.0.0``, ``::``), an empty
  label (``a..localhost``), brackets round a name (``[localhost]``) or unmatched (``[::1``).
"""

from __future__ import annotations

import ipaddress

__all__ = ["LOOPBACK_NAMES", "is_loopback_host"]

#: The names that are loopback besides ``localhost``'s subdomains.
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an IP literal, not a URL) names this machine, by the
    module's rule; False for anything else, a non-str included."""
    if not isinstance(host, str) or not host:
        return False
    bracketed = host.startswith("[") and host.endswith("]")
    bare = host[1:-1] if bracketed else host
    try:
        address = ipaddress.ip_address(bare)
    except ValueError:
        if bracketed or "[" in host or "]" in host:  # brackets hold an IPv6 address, nothing else
            return False
        return _is_loopback_name(host)
    if bracketed and address.version != 6:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_loopback_name(host: str) -> bool:
    """``localhost``, a name under it or one of :data:`LOOPBACK_NAMES`, case-insensitive,
    with at most one trailing dot; an IPv4 literal with a trailing dot (``127.0.0.1.``) too."""
    name = host.lower()
    name = name[:-1] if name.endswith(".") else name
    labels = name.split(".")
    if not all(labels):
        return False
    if name in LOOPBACK_NAMES or labels[-1] == "localhost":
        return True
    try:
        return ipaddress.IPv4Address(name).is_loopback
    except ValueError:
        return False
