"""One rule for "is this host this machine?" (:mod:`entropy_atlas.loopback`), shared by the
dashboard's bind warning and the LLM proposer's unset-key warning.

The two had their own name sets: the LLM warning took ``app.localhost`` as loopback but warned
for ``localhost.localdomain`` and ``ip6-localhost``; the dashboard warned "anyone who can reach
this address can read the archive" for ``app.localhost``, ``ip6-loopback`` and ``LOCALHOST.``.
"""

from __future__ import annotations

import pytest

from dashboard.cli import is_loopback as dashboard_is_loopback
from entropy_atlas.loopback import is_loopback_host
from search.proposers.llm_key import is_loopback as llm_is_loopback
from search.proposers.llm_key import key_warning

#: Hosts that are this machine, each as a URL puts it where that differs.
LOOPBACK = ["127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1",
            "localhost", "LOCALHOST", "localhost.", "app.localhost", "a.b.LocalHost.", "localhost.localdomain",
            "LOCALHOST.LOCALDOMAIN", "ip6-localhost", "ip6-loopback", "IP6-Loopback."]
#: Hosts that are not (or that are no host at all).
NOT_LOOPBACK = ["0.0.0.0", "::", "[::]", "192.168.1.10", "10.0.0.5", "::2", "::ffff:10.0.0.1", "example.org",
                "localhost.example.org", "mylocalhost", "localhostx", "notlocalhost.localdomain", "ip6-localnet",
                "a..localhost", ".localhost", "localhost..", "[localhost]", "[127.0.0.1]", "[::1", "::1]", "",
                " localhost"]


def url_host(host: str) -> str:
    """``host`` as it stands in a URL's authority (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


@pytest.mark.parametrize("host", LOOPBACK)
def test_every_loopback_name_and_address_is_loopback_for_both_callers(host: str) -> None:
    assert is_loopback_host(host)
    assert dashboard_is_loopback(host)
    assert llm_is_loopback(f"http://{url_host(host)}:8000/v1")


@pytest.mark.parametrize("host", NOT_LOOPBACK)
def test_other_hosts_are_not_loopback_for_either_caller(host: str) -> None:
    assert not is_loopback_host(host)
    assert not dashboard_is_loopback(host)
    if host.strip() and "[" not in host and "]" not in host and " " not in host:
        assert not llm_is_loopback(f"http://{url_host(host)}:8000/v1")


def test_the_llm_key_is_not_asked_of_a_server_on_any_loopback_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """``localhost.localdomain`` and ``ip6-localhost`` had the "no key" warning; a hosted name still has it."""
    monkeypatch.delenv("ATLAS_TEST_UNSET_KEY", raising=False)
    options = {"backend": "openai", "api_key_env": "ATLAS_TEST_UNSET_KEY"}
    for host in ("localhost.localdomain", "ip6-localhost", "ip6-loopback", "app.localhost", "[::1]"):
        assert key_warning({**options, "base_url": f"http://{host}:8000/v1"}, "search.options") is None
    warned = key_warning({**options, "base_url": "http://localhost.example.org:8000/v1"}, "search.options")
    assert warned is not None and warned.startswith("search.options.api_key_env: the environment variable")


def test_no_url_or_one_that_does_not_parse_is_not_loopback() -> None:
    assert not llm_is_loopback(None) and not llm_is_loopback("")
    assert not llm_is_loopback("http://[::1/v1")  # urlsplit's ValueError
    assert not llm_is_loopback("/v1")  # no host
    assert not is_loopback_host(None)  # type: ignore[arg-type]
