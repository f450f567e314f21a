"""Whether the key an ``openai`` LLM proposer names is there, said when the campaign is checked.

Rules:

- ``api_key_env`` names the environment variable that holds the key. Where it is unset or
  empty, the client sends a placeholder key, which a hosted endpoint refuses (401) on
  every call: the campaign's evaluations all come from the fallback. So :func:`key_warning`
  gives one ``warning:`` line naming the variable when the spec is checked (``atlas run``
  prints the spec's warnings before anything is written); it does not refuse the run, as
  the user may mean it.
- Not for a loopback ``base_url`` (:mod:`entropy_atlas.loopback`: ``localhost`` and names
  under it, ``localhost.localdomain``, ``ip6-localhost``, ``127.0.0.0/8``, ``::1``): a local
  server (vLLM, Ollama, llama.cpp) usually takes no key, and the example campaign names
  ``OPENAI_API_KEY`` for those who point it elsewhere. Any other host, and no ``base_url``
  (the client's default, a hosted API), is warned about.
- Not for ``backend: hf`` (no key), nor when ``api_key_env`` is not a non-empty string
  (the option's own check refuses that).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from archive.redact import redact_url
from entropy_atlas.loopback import is_loopback_host


def is_loopback(base_url: str | None) -> bool:
    """Whether ``base_url``'s host is this machine (:func:`entropy_atlas.loopback.is_loopback_host`:
    a loopback address, ``localhost`` or a name under it, ``localhost.localdomain``,
    ``ip6-localhost``, ``ip6-loopback``); False for no URL, another host or one that does not parse."""
    if not base_url:
        return False
    try:
        host = urlsplit(base_url).hostname
    except ValueError:
        return False
    return host is not None and is_loopback_host(host)


def key_warning(options: Mapping[str, Any], path: str) -> str | None:
    """``PATH.api_key_env: VAR is not set …`` where the options name a key variable that is
    unset or empty in this environment and the endpoint is not on loopback; else None."""
    var = options.get("api_key_env")
    base_url = options.get("base_url")
    if options.get("backend", "openai") != "openai" or not isinstance(var, str) or not var:
        return None
    if os.environ.get(var) or (isinstance(base_url, str) and is_loopback(base_url)):
        return None
    where = redact_url(base_url) if isinstance(base_url, str) and base_url else "the OpenAI client's default endpoint"
    return (f"{path}.api_key_env: the environment variable {var} is not set (or empty), so the requests to {where} "
            f"carry no key and a server that needs one refuses each of them; set {var}, or remove api_key_env "
            f"for a server that takes no key")
