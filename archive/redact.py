"""Secrets out of what is shown or written: ``redact(spec)`` before a spec leaves the archive.

A campaign spec is stored as given, and the dashboard and the exports show it. Two kinds
of value in it are secrets, and :func:`redact` replaces them in a deep copy:

- the value of a **secret key**: a mapping key whose *last word* is ``key``, ``apikey``,
  ``token``, ``password``, ``passwd``, ``pwd``, ``secret``, ``secrets``, ``credential``,
  ``credentials`` or ``authorization`` (case-insensitive; words are split at ``_``,
  ``-``, ``.``, spaces and camelCase, so ``api_key``, ``apiKey``, ``X-Api-Key``,
  ``hf_token``, ``db_password``, ``client_secret`` are secret keys). Every string or
  number under such a key becomes ``"***"``; ``None`` and booleans stay (they hold no
  secret), and nested mappings and lists keep their shape.

  A key whose last word is another word is not secret, even when an earlier word is:
  ``api_key_env`` (it holds the *name* of a variable, not the key), ``key_file``,
  ``max_tokens``, ``token_budget``.
- the **password of a URL**, anywhere in any string: ``postgresql://u:pw@h/db`` becomes
  ``postgresql://u:***@h/db`` (the user and the rest are kept). Everything between the
  ``:`` after the user and the next ``@`` is masked, so a password with an unescaped
  ``/`` is masked whole; a URL with a port and an ``@`` in its path is masked too much
  rather than too little.

Mapping keys themselves are never changed.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

MASK = "***"
SECRET_WORDS = frozenset({"key", "apikey", "token", "password", "passwd", "pwd", "secret", "secrets",
                          "credential", "credentials", "authorization"})
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s]*:)(?P<password>[^@\s]+)(?=@)")


def key_words(key: str) -> list[str]:
    """The lower-case words of a mapping key: split at anything but letters, and at camelCase."""
    return [w.lower() for w in _WORD.findall(key)]


def is_secret_key(key: Any) -> bool:
    """Whether ``key``'s value is a secret: its last word is one of :data:`SECRET_WORDS`."""
    if not isinstance(key, str):
        return False
    words = key_words(key)
    return bool(words) and words[-1] in SECRET_WORDS


def redact_url(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` URL in it masked."""
    if "://" not in text:
        return text
    return _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)


def _masked(value: Any) -> Any:
    """Everything under a secret key: strings and numbers masked, containers kept in shape."""
    if isinstance(value, Mapping):
        return {k: _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return MASK


def redact(value: Any, secret_keys: bool = True) -> Any:
    """A deep copy of ``value`` (a spec, or any JSON-like value) with its secrets masked:
    the values of secret keys (unless ``secret_keys`` is False: keys there are names, not
    credentials), and the passwords of URLs (see the module docstring)."""
    if isinstance(value, Mapping):
        return {k: _masked(v) if secret_keys and is_secret_key(k) else redact(v, secret_keys)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secret_keys) for v in value]
    if isinstance(value, str):
        return redact_url(value)
    return copy.deepcopy(value)


def redact_spec(spec: Any) -> Any:
    """:func:`redact` of a campaign spec, where the keys of ``space`` and of each of
    ``search.initial_points`` are parameter names, not credentials: a parameter called
    ``pad_token`` or ``sort_key`` keeps its bounds, choices and initial values (masked,
    the exported spec could not be run again). URLs in them still lose their passwords."""
    out = redact(spec)
    if not isinstance(spec, Mapping) or not isinstance(out, dict):
        return out
    if "space" in spec:
        out["space"] = redact(spec["space"], secret_keys=False)
    search = spec.get("search")
    if isinstance(search, Mapping) and "initial_points" in search and isinstance(out.get("search"), dict):
        out["search"]["initial_points"] = redact(search["initial_points"], secret_keys=False)
    return out


__all__ = ["MASK", "SECRET_WORDS", "is_secret_key", "redact", "redact_spec", "redact_url"]
