"""``archive.redact``: secrets never leave the archive in a shown or exported spec."""

from __future__ import annotations

import copy

import pytest

from archive.redact import MASK, is_secret_key, redact, redact_url


@pytest.mark.parametrize("key", ["api_key", "API_KEY", "apiKey", "APIKey", "X-Api-Key", "openai_api_key", "hf_token",
                                 "token", "password", "db_password", "passwd", "secret", "client_secret",
                                 "clientSecret", "secret_access_key", "credentials", "Authorization"])
def test_secret_keys(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["api_key_env", "API_KEY_ENV", "max_tokens", "token_budget", "key_file", "monkey",
                                 "keyboard", "secretary", "top_k", "model", "base_url", 3])
def test_keys_that_are_not_secret(key: object) -> None:
    assert not is_secret_key(key)


def test_values_of_secret_keys_are_masked_everywhere_and_the_rest_kept() -> None:
    spec = {
        "name": "llm-run",
        "search": {"algorithm": "portfolio", "budget": 10, "options": {"members": {"llm": {
            "base_url": "http://127.0.0.1:8000/v1", "model": "m", "api_key": "sk-live-123",
            "api_key_env": "OPENAI_API_KEY", "max_tokens": 2048}}}},
        "evaluator": {"kind": "python", "config": {"Password": 1234, "token": None, "use_secret": True,
                                                   "secrets": {"a": "x", "b": ["y", 2, False]}}},
    }
    before = copy.deepcopy(spec)
    out = redact(spec)
    llm = out["search"]["options"]["members"]["llm"]
    assert llm == {"base_url": "http://127.0.0.1:8000/v1", "model": "m", "api_key": MASK,
                   "api_key_env": "OPENAI_API_KEY", "max_tokens": 2048}
    config = out["evaluator"]["config"]
    assert config["Password"] == MASK and config["token"] is None and config["use_secret"] is True
    assert config["secrets"] == {"a": MASK, "b": [MASK, MASK, False]}
    assert out["name"] == "llm-run" and out["search"]["budget"] == 10
    assert spec == before  # a copy: the input is untouched
    assert out["search"] is not spec["search"]
    assert "sk-live-123" not in repr(out) and "1234" not in repr(out)


@pytest.mark.parametrize("text,shown", [
    ("postgresql://u:hunter2@h/db", "postgresql://u:***@h/db"),
    ("postgresql+psycopg://atlas:p%40ss@db.local:5432/atlas?sslmode=require",
     "postgresql+psycopg://atlas:***@db.local:5432/atlas?sslmode=require"),
    ("redis://:pw@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://u:a/b@h/db", "postgresql://u:***@h/db"),
    ("clone https://bot:tok@git.example/x.git then go", "clone https://bot:***@git.example/x.git then go"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("no url here: a:b@c", "no url here: a:b@c"),
])
def test_url_passwords_are_masked(text: str, shown: str) -> None:
    assert redact_url(text) == shown
    assert redact({"storage": text, "list": [text]}) == {"storage": shown, "list": [shown]}
