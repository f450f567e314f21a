"""What a user met walking the ``llm`` proposer through against a fake OpenAI-compatible server:

1. a server that accepts the connection and never answers stalled the campaign (every ask
   ``max_retries`` + 1 timeouts and their backoff, no warning): it is now unreachable, as a
   refused connection is (said once, the fallback fills the asks, one-attempt tries later),
   and a call makes at most two attempts that time out;
2. the "model calls" table counted replies that gave nothing usable as answered, failed 0,
   latest error —: it now has an ``unusable`` column and the latest such reason;
3. a 200 whose body is not JSON read ``AttributeError: 'str' object has no attribute
   'choices'``: it now says what the body is;
4. ``api_key_env`` naming an unset variable was silent: it is now a warning of the spec's
   check, before anything is written (not for a loopback ``base_url``).
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import archive
from search import api
from search import cli as cli_module
from search.proposers import build_proposer
from search.proposers.llm import LlmProposer
from search.proposers.llm_backends import BackendError, OpenAIBackend, Unreachable
from search.spec import parse_spec, spec_warnings
from tests.conftest import quadratic_spec
from tests.support.chat_server import ChatServer
from tests.support.loopback import LoopbackServer
from tests.test_llm import llm_context, llm_warnings

HI = [{"role": "user", "content": "reply with exactly 2 configurations"}]


def grid_reply(messages: list[dict[str, str]]) -> str:
    """As many distinct in-bounds candidates as the prompt asks for."""
    n = int(re.search(r"exactly (\d+)", messages[-1]["content"]).group(1))
    rng = np.random.default_rng(abs(hash(messages[-1]["content"])) % 2**32)
    return json.dumps([{"a": round(float(a), 4), "b": round(float(b), 4)} for a, b in rng.random((n, 2))])


class SilentServer(LoopbackServer):
    """A loopback server that accepts every connection and never answers (nor closes it);
    ``accepted`` counts the connections, each one an attempt of the client."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[socket.socket] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def accepted(self) -> int:
        return len(self.held)

    def handle(self, conn: socket.socket) -> None:
        self.held.append(conn)

    def close(self) -> None:
        super().close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    with SilentServer() as server:
        yield server


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The proposer's clock, for when an unreachable server is tried again: set by the test."""
    now = [0.0]
    monkeypatch.setattr(LlmProposer, "clock", staticmethod(lambda: now[0]))
    return now


def atlas(*args: str) -> Any:
    return CliRunner().invoke(cli_module.app, list(args), catch_exceptions=False)


# -- 1. a server that accepts and never answers ------------------------------------------
def test_a_silent_server_is_unreachable_said_once_and_the_run_finishes_from_the_fallback(
        sqlite_url: str, silent: SilentServer, frozen_clock: list[float], caplog: pytest.LogCaptureFixture) -> None:
    """max_retries 4: before, each of the four asks made five attempts of timeout_s (20
    connections) and no warning was said; now the first call makes two (a timeout is retried
    once), the other asks are filled by the fallback without a request, and it is said once."""
    caplog.set_level(logging.WARNING, logger="entropy_atlas.llm")
    options = {"base_url": silent.url, "model": "test-model", "timeout_s": 0.5, "max_retries": 4, "backoff_s": 0}
    spec = quadratic_spec(search__algorithm="llm", search__budget=16, search__batch_size=4,
                          search__max_in_flight=4, search__options=options)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 16
    assert silent.accepted == 2
    (warning,) = llm_warnings(caplog)
    assert warning.startswith(f"the LLM server at {silent.url} (model test-model) cannot be reached "
                              f"(no complete reply within timeout_s (0.5 s)); the llm proposer's batches are "
                              f"filled by its fallback")
    camp = archive.open(sqlite_url).campaign("quad")
    assert {r["proposer"] for r in camp.evaluations()} == {"llm-fallback"}
    (call,) = camp.store.calls(camp.record.id)
    assert call["status"] == "error"
    assert call["error"] == "no answer after 2 attempts: no complete reply within timeout_s (0.5 s)"
    status = json.loads(atlas("status", "quad", "--storage", sqlite_url, "--json").stdout)
    (row,) = status["model_calls"]
    assert (row["calls"], row["failed"], row["not_asked"]) == (1, 1, 3)


def test_a_silent_server_is_tried_again_with_one_attempt_then_used_once_it_answers(
        silent: SilentServer, frozen_clock: list[float]) -> None:
    """Tried again 30 s after the failed call (one attempt), then 60 s after that; once it
    answers, asked on every ask again."""
    proposer = build_proposer("llm", llm_context({"base_url": silent.url, "model": "m", "timeout_s": 0.5,
                                                  "max_retries": 4, "backoff_s": 0}))

    def ask_at(t: float) -> int:
        """Ask at time ``t``; the connections it made."""
        frozen_clock[0] = t
        before = silent.accepted
        assert len(proposer.ask(4)) == 4
        return silent.accepted - before

    assert [ask_at(t) for t in (0, 29, 30, 89, 90)] == [2, 0, 1, 0, 1]
    assert proposer.discarded["server unreachable"] == 2
    with ChatServer(grid_reply) as server:
        proposer.backend().client_options["base_url"] = server.url  # it answers now
        frozen_clock[0] = 209
        assert {p.proposer for p in proposer.ask(4)} == {"llm-fallback"}  # still waited for
        frozen_clock[0] = 210
        assert {p.proposer for p in proposer.ask(4)} == {"llm"}
        frozen_clock[0] = 211
        assert {p.proposer for p in proposer.ask(4)} == {"llm"}
        assert len(server.requests) == 2


def test_a_slow_server_that_answers_the_retry_is_used() -> None:
    """A first attempt past timeout_s, then an answer: the call succeeds on its second
    attempt (a timeout is retried once), it is not unreachable."""
    with ChatServer(grid_reply) as server:
        server.script = [("sleep", 1.5)]
        backend = OpenAIBackend(server.url, "m", None, 1.0, 4, 0.7, 100, backoff_s=0)
        done = backend.complete(HI)
        assert done.attempts == 2 and done.text
        assert len(server.requests) == 2


def test_two_timeouts_end_a_call_whatever_max_retries_allows() -> None:
    """A server that answers only after timeout_s: two attempts, then Unreachable naming the
    deadline; a 5xx between them is retried as before and makes the call an answered one."""
    with ChatServer(grid_reply) as server:
        server.script = [("sleep", 1.5)] * 3
        backend = OpenAIBackend(server.url, "m", None, 1.0, 4, 0.7, 100, backoff_s=0)
        with pytest.raises(Unreachable) as caught:
            backend.complete(HI)
        assert caught.value.reason == "no complete reply within timeout_s (1 s)"
        assert str(caught.value) == "no answer after 2 attempts: no complete reply within timeout_s (1 s)"
        assert len(server.requests) == 2
    with ChatServer(grid_reply) as server:
        server.script = [("sleep", 1.5), ("status", 503), ("sleep", 1.5), ("sleep", 1.5)]
        backend = OpenAIBackend(server.url, "m", None, 1.0, 4, 0.7, 100, backoff_s=0)
        with pytest.raises(BackendError) as caught:
            backend.complete(HI)
        assert not isinstance(caught.value, Unreachable)  # the 503 was an answer
        assert "no answer after 3 attempts" in str(caught.value)


# -- 2. answered, but nothing usable --------------------------------------------------------
def completion_body(content: Any) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "test-model",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}]}).encode()


def test_status_tells_answered_calls_that_gave_nothing_usable(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Five asks answered with prose, null, an empty reply, a null content and a candidate
    that names no parameter: before, ``answered 5, failed 0, latest error —``; now
    ``unusable 5`` and the latest reason."""
    monkeypatch.setattr(cli_module.console, "_width", 240)
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    with ChatServer(grid_reply) as server:
        server.script = [("ok", "Sure! Here are some ideas: try larger values."), ("ok", "null"), ("ok", ""),
                         ("raw", completion_body(None)), ("ok", '[{"foo": 1}]')]
        spec = quadratic_spec(search__algorithm="llm", search__budget=20, search__batch_size=4,
                              search__max_in_flight=4,
                              search__options={"base_url": server.url, "model": "test-model", "max_retries": 0})
        assert api.run(spec, storage=url, executor="inline").finished == 20
    status = json.loads(atlas("status", "quad", "--storage", url, "--json").stdout)
    (calls,) = status["model_calls"]
    assert {k: calls[k] for k in ("calls", "answered", "failed", "unusable", "latest_error")} == {
        "calls": 5, "answered": 5, "failed": 0, "unusable": 5, "latest_error": None}
    assert calls["latest_unusable"] == ("its reply held 1 candidate, none usable "
                                        "(discarded: names no parameter of the space: 1)")
    assert calls["latest_unusable_at"] is not None
    shown = atlas("status", "quad", "--storage", url)
    lines = shown.stdout.splitlines()
    title = next(i for i, line in enumerate(lines) if line.strip() == "model calls")
    assert lines[title + 1].split()[:5] == ["proposer", "calls", "answered", "failed", "unusable"]
    row = lines[title + 3]
    assert row.split()[:5] == ["llm", "5", "5", "0", "5"]
    assert "unusable reply: its reply held 1 candidate, none usable" in row


def test_the_unusable_reasons_of_each_kind_of_reply(storage_url: str) -> None:
    """Counted in SQL on SQLite and PostgreSQL: an answered call whose outcome's valid is 0;
    not one that gave a usable candidate, nor a failed one, nor one with no outcome."""
    from archive.calls import unusable_reason
    from archive.store import Store

    store = Store(storage_url)
    try:
        layout = {"kind": "grid", "axes": [{"name": "m", "low": 0.0, "high": 1.0, "bins": 2}]}
        cid = store.create_campaign("c", {"search": {"budget": 10}}, "hash", layout).id
        base = {"proposer": "llm", "request": {"messages": []}, "reply": "x", "status": "ok", "error": None,
                "usage": None, "latency_s": 1.0}
        outcomes = [{"candidates": 0, "valid": 0, "discarded": {}, "problem": "empty reply", "cut": False},
                    {"candidates": 4, "valid": 4, "discarded": {}, "problem": None, "cut": False},
                    None,
                    {"candidates": 3, "valid": 0, "discarded": {"duplicate": 1, "a: not a number": 2},
                     "problem": None, "cut": True}]
        for i, outcome in enumerate(outcomes):
            store.add_pending(cid, [], calls=[{**base, "key": f"k{i}", "outcome": outcome}])
        store.add_pending(cid, [], calls=[{**base, "key": "e", "status": "error", "reply": None, "error": "down",
                                           "outcome": {"candidates": 0, "valid": 0, "discarded": {}}}])
        (row,) = store.call_summary(cid)
    finally:
        store.close()
    assert (row["calls"], row["answered"], row["failed"], row["unusable"]) == (5, 4, 1, 2)
    assert row["latest_unusable"] == ("its reply held 3 candidates, cut where it was read, none usable "
                                      "(discarded: a: not a number: 2, duplicate: 1)")
    assert unusable_reason(outcomes[0]) == "no candidates in its reply (empty reply)"


# -- 3. a body that is not JSON -------------------------------------------------------------
def html_server(content_type: str, body: bytes) -> ChatServer:
    """A loopback endpoint that answers every request with a 200 of ``body`` as ``content_type``."""
    return ChatServer(lambda messages: "", fixed=(content_type, body))


PAGE = b"<html>\n  <body><h1>502 Bad Gateway</h1><p>nginx</p></body>\n</html>"


def test_a_body_that_is_not_json_is_said_as_it_is(sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Before: ``AttributeError: 'str' object has no attribute 'choices'``."""
    caplog.set_level(logging.WARNING, logger="entropy_atlas.llm")
    with html_server("text/html; charset=utf-8", PAGE) as server:
        spec = quadratic_spec(search__algorithm="llm", search__budget=8, search__batch_size=4,
                              search__max_in_flight=4,
                              search__options={"base_url": server.url, "model": "test-model", "max_retries": 0})
        assert api.run(spec, storage=sqlite_url, executor="inline").finished == 8
    camp = archive.open(sqlite_url).campaign("quad")
    errors = {c["error"] for c in camp.store.calls(camp.record.id)}
    assert errors == {"the model endpoint's reply is not a chat completion: the body is not JSON (content-type "
                      "text/html; charset=utf-8, starts '<html> <body><h1>502 Bad Gateway</h1><p>nginx</p></body> "
                      "</h…')"}
    (warning,) = llm_warnings(caplog)
    assert "the body is not JSON (content-type text/html" in warning and "AttributeError" not in warning


@pytest.mark.parametrize("content_type,body,said", [
    ("application/json", b"not json at all", "the body is not JSON (content-type application/json, "
                                             "starts 'not json at all')"),
    ("text/plain", b"", "the body is empty (content-type text/plain)"),
    ("application/json", b"null", "the body is JSON null, not an object: starts 'null'"),
    ("application/json", b"[1, 2]", "the body is a JSON array, not an object: starts '[1, 2]'"),
    ("application/json", b'{"a": [1]}', 'the body is a JSON object without a "choices" list (its keys: a)'),
    ("application/json", b'{"error": {"message": "model not loaded"}}', "the body is an error: model not loaded"),
    ("text/html", b"x" * 100, "the body is not JSON (content-type text/html, starts '" + "x" * 60 + "…')"),
])
def test_a_body_that_is_no_chat_completion_says_what_it_is(content_type: str, body: bytes, said: str) -> None:
    with html_server(content_type, body) as server:
        backend = OpenAIBackend(server.url, "m", None, 5.0, 0, 0.7, 10, backoff_s=0)
        with pytest.raises(BackendError) as caught:
            backend.complete(HI)
    assert str(caught.value) == f"the model endpoint's reply is not a chat completion: {said}"


def test_a_completion_with_a_plain_text_content_type_is_still_read() -> None:
    """The body decides, as the client did: JSON sent as text/plain is read."""
    with html_server("text/plain", completion_body('[{"a": 0.5, "b": 0.5}]')) as server:
        done = OpenAIBackend(server.url, "m", None, 5.0, 0, 0.7, 10, backoff_s=0).complete(HI)
    assert done.text == '[{"a": 0.5, "b": 0.5}]'


# -- 4. a key variable that is not set ------------------------------------------------------
def key_spec(base_url: str | None, portfolio: bool = False) -> dict[str, Any]:
    options: dict[str, Any] = {"model": "test-model", "api_key_env": "ATLAS_TEST_UNSET_KEY"}
    if base_url is not None:
        options["base_url"] = base_url
    search: dict[str, Any] = {"search__algorithm": "llm", "search__options": options}
    if portfolio:
        search = {"search__algorithm": "portfolio", "search__options": {"members": {"llm": options, "random": {}}}}
    return quadratic_spec(search__budget=30, search__batch_size=4, search__max_in_flight=4, **search)


class Stop(Exception):
    """Raised by the warning callback: the run ends there."""


def test_an_unset_key_variable_is_warned_before_anything_is_written(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: nothing said; each request carried the placeholder key."""
    monkeypatch.delenv("ATLAS_TEST_UNSET_KEY", raising=False)
    db = tmp_path / "atlas.db"
    said: list[str] = []

    def on_warning(line: str) -> None:
        said.append(line)
        assert not db.exists()  # the spec's warnings come before the storage is created
        if "api_key_env" in line:
            raise Stop

    with pytest.raises(Stop):
        api.run(key_spec("https://llm.example.com/v1"), storage=f"sqlite:///{db}", executor="inline",
                on_warning=on_warning)
    assert said == ["search.options.api_key_env: the environment variable ATLAS_TEST_UNSET_KEY is not set (or "
                    "empty), so the requests to https://llm.example.com/v1 carry no key and a server that needs "
                    "one refuses each of them; set ATLAS_TEST_UNSET_KEY, or remove api_key_env for a server that "
                    "takes no key"]
    assert not db.exists()


def test_the_key_warning_is_not_for_loopback_a_set_variable_nor_hf(monkeypatch: pytest.MonkeyPatch) -> None:
    def warnings(spec: dict[str, Any]) -> list[str]:
        return [w for w in spec_warnings(parse_spec(spec)) if "api_key_env" in w]

    monkeypatch.delenv("ATLAS_TEST_UNSET_KEY", raising=False)
    for local in ("http://127.0.0.1:11434/v1", "http://localhost:8000/v1", "http://[::1]:8080/v1",
                  "http://127.0.0.2/v1"):
        assert warnings(key_spec(local)) == []
    (default,) = warnings(key_spec(None))  # the client's default endpoint is a hosted one
    assert "requests to the OpenAI client's default endpoint carry no key" in default
    (member,) = warnings(key_spec("http://10.0.0.5:8000/v1", portfolio=True))
    assert member.startswith("search.options.members.llm.api_key_env: the environment variable ATLAS_TEST_UNSET_KEY")
    monkeypatch.setenv("ATLAS_TEST_UNSET_KEY", "sk-test")
    assert warnings(key_spec("https://llm.example.com/v1")) == []
    monkeypatch.setenv("ATLAS_TEST_UNSET_KEY", "")
    assert len(warnings(key_spec("https://llm.example.com/v1"))) == 1
    monkeypatch.delenv("ATLAS_TEST_UNSET_KEY")
    hf = key_spec("https://llm.example.com/v1")
    hf["search"]["options"]["backend"] = "hf"
    assert warnings(hf) == []
