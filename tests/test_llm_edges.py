"""The LLM proposers at their edges: a small discrete space used up (the fallback reaches
every point, then repeats), a reply whose ``message.content`` is not a string, a server
that trickles its reply (``timeout_s`` is a deadline per attempt), and candidates that
name no parameter of the space."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import archive
from search import api
from search.proposers import build_proposer
from search.proposers.llm import params_key
from search.proposers.llm_backends import BackendError, OpenAIBackend
from search.space import SearchSpace
from search.spec import parse_spec
from tests.conftest import quadratic_spec
from tests.support.chat_server import ChatServer
from tests.support.loopback import LoopbackServer
from tests.test_llm import grid_reply, llm_context, llm_spec, llm_warnings

MESSAGES = [{"role": "user", "content": "propose"}]


def hashed(params: dict[str, Any], ctx: object) -> dict[str, Any]:
    """Any space: objective and measures in [0, 1) from a hash of the params."""
    h = zlib.crc32(json.dumps(params, sort_keys=True).encode())
    return {"objective": (h % 97) / 97, "measures": {"ma": (h >> 8) % 100 / 100, "mb": (h >> 16) % 100 / 100}}


def discrete_spec(server: ChatServer, space: dict[str, Any], budget: int, batch: int,
                  algorithm: str = "llm") -> dict[str, Any]:
    spec = llm_spec(server, max_retries=0)
    spec["space"] = space
    spec["evaluator"] = {"kind": "python", "target": "tests.test_llm_edges:hashed"}
    spec["search"].update(algorithm=algorithm, budget=budget, batch_size=batch, max_in_flight=batch)
    return spec


def rows_of(url: str) -> list[dict[str, Any]]:
    return sorted(archive.open(url).campaign("quad").evaluations(), key=lambda r: r["seq"])


def calls_of(url: str) -> list[dict[str, Any]]:
    camp = archive.open(url).campaign("quad")
    return camp.store.calls(camp.record.id)


def keys(rows: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(r["params"], sort_keys=True) for r in rows]


# -- 1. a small discrete space: every point reached, then repeats ----------------------
THREE = {"c": {"type": "categorical", "choices": ["a", "b", "c"]}}
SIX = {"a": {"type": "categorical", "choices": ["p", "q"]}, "b": {"type": "categorical", "choices": [1, 2, 3]}}


def test_garbage_on_three_choices_reaches_every_choice_and_the_budget(sqlite_url: str) -> None:
    """Before: "proposed nothing with nothing in flight" after 2 of 6, choice c never tried."""
    with ChatServer(lambda messages: "I think 42.") as server:
        stats = api.run(discrete_spec(server, THREE, budget=6, batch=2), storage=sqlite_url, executor="inline")
    assert stats.finished == 6 and stats.counts["failed"] == 0
    rows = rows_of(sqlite_url)
    assert {r["params"]["c"] for r in rows[:3]} == {"a", "b", "c"}  # every point before any repeat
    assert {r["proposer"] for r in rows} == {"llm-fallback"}
    assert [r["proposal"]["source"] for r in rows[3:]] == ["repeat"] * 3


def test_a_model_that_repeats_itself_on_six_points_reaches_the_budget(sqlite_url: str) -> None:
    """The model proposes five of the six combinations, again and again. Before: stuck
    after five (or six) of the budget of 12."""
    five = [{"a": a, "b": b} for a in ("p", "q") for b in (1, 2, 3)][:5]
    with ChatServer(lambda messages: json.dumps(five)) as server:
        stats = api.run(discrete_spec(server, SIX, budget=12, batch=3), storage=sqlite_url, executor="inline")
    assert stats.finished == 12
    rows = rows_of(sqlite_url)
    assert len(set(keys(rows[:6]))) == 6  # all six, none twice, before the first repeat
    assert {"a": "q", "b": 3} in [r["params"] for r in rows[:6]]  # the one the model never names
    assert sum(r["proposer"] == "llm" for r in rows[6:]) > 0  # the model's valid candidates, as repeats
    assert any(c["outcome"].get("repeats") for c in calls_of(sqlite_url))


def test_llm_mutate_on_an_integer_space_reaches_the_budget(sqlite_url: str) -> None:
    space = {"n": {"type": "int", "low": 1, "high": 4}}
    with ChatServer(lambda messages: '[{"n": 2}]') as server:
        stats = api.run(discrete_spec(server, space, budget=10, batch=3, algorithm="llm-mutate"),
                        storage=sqlite_url, executor="inline")
    assert stats.finished == 10
    assert sorted({r["params"]["n"] for r in rows_of(sqlite_url)[:4]}) == [1, 2, 3, 4]


def space_of(params: dict[str, Any]) -> SearchSpace:
    return SearchSpace(parse_spec(quadratic_spec(space=params)).space)


def test_finite_points_lists_a_conditional_space_once_per_point() -> None:
    from search.proposers.llm import MAX_LISTED_POINTS, finite_points

    conditional = {"kind": {"type": "categorical", "choices": ["x", "y"]},
                   "depth": {"type": "int", "low": 1, "high": 2, "when": {"kind": "x"}}}
    assert finite_points(space_of(conditional)) == [{"kind": "x", "depth": 1}, {"kind": "x", "depth": 2},
                                                    {"kind": "y"}]
    assert finite_points(space_of({"a": {"type": "float", "low": 0.0, "high": 1.0}})) is None
    assert finite_points(space_of({"n": {"type": "int", "low": 1, "high": MAX_LISTED_POINTS + 1}})) is None


def test_the_fallback_finds_the_last_untried_point_then_repeats() -> None:
    ctx = llm_context({"model": "m", "base_url": "http://127.0.0.1:1/v1"})
    ctx.space = space = space_of(SIX)
    proposer = build_proposer("llm", ctx)
    points = [{"a": a, "b": b} for a in ("p", "q") for b in (1, 2, 3)]
    proposer.seen = {params_key(p) for p in points[:5]}
    rng = np.random.default_rng(0)
    (last,) = proposer._fallback(1, rng)
    assert last.params == points[5] and space.decode(last.x) == points[5]
    again = proposer._fallback(4, rng)
    assert len(again) == 4 and all(p.meta["source"] == "repeat" and p.params in points for p in again)


# -- 2. message.content that is not a string -------------------------------------------
def completion_body(content: Any) -> bytes:
    return json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": "test-model",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                    "finish_reason": "stop"}]}).encode()


@pytest.mark.parametrize("content", [{"a": [1]}, 5, ["x"], True])
def test_content_that_is_not_a_string_falls_back(sqlite_url: str, content: Any,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """Before: "TypeError: unhashable type: 'slice'" (a dict), "'int' object is not
    subscriptable", "'list' object has no attribute 'encode'": the run stopped."""
    caplog.set_level(logging.WARNING, logger="entropy_atlas.llm")
    with ChatServer(grid_reply) as server:
        server.script = [("raw", completion_body(content))] * 3
        spec = llm_spec(server, max_retries=0)
        spec["search"]["budget"] = 12
        stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 12 and stats.counts["failed"] == 0
    calls = calls_of(sqlite_url)
    assert len(calls) == 3
    kind = {"dict": "a dict", "int": "an int", "list": "a list", "bool": "a bool"}[type(content).__name__]
    assert all(c["status"] == "error" and "not a chat completion" in c["error"]
               and f"message.content is {kind}, not a string" in c["error"] for c in calls)
    (warning,) = llm_warnings(caplog)
    assert "not a chat completion" in warning


def test_reply_text_takes_a_string_or_nothing() -> None:
    from search.proposers.llm_backends import reply_text

    class Message:
        def __init__(self, content: Any) -> None:
            self.message = self
            self.content = content

    class Response:
        def __init__(self, *choices: Any) -> None:
            self.choices = list(choices)

    assert reply_text(Response(Message("[]"))) == "[]"
    assert reply_text(Response(Message(None))) is None and reply_text(Response()) is None
    with pytest.raises(TypeError, match=r"message\.content is a dict"):
        reply_text(Response(Message({"a": 1})))


# -- 3. timeout_s: a deadline for the whole attempt -------------------------------------
def test_retries_back_off_from_backoff_s_doubling(monkeypatch: pytest.MonkeyPatch) -> None:
    """429s and 5xx are retried with exponential backoff and jitter (docs/llm.md, options
    table: "about 15 s at the defaults", 1 + 2 + 4 + 8 s for ``backoff_s`` 1 and four
    retries; llm_backends.py: ``backoff_s`` × 2^(attempt − 1) × U[0.5, 1.5)): with the
    jitter's draw at 0.5 (a factor of exactly 1), three 503s wait 1, 2 and 4 s."""
    from search.proposers import llm_backends

    slept: list[float] = []
    monkeypatch.setattr(llm_backends.time, "sleep", slept.append)
    monkeypatch.setattr(llm_backends.random, "random", lambda: 0.5)
    with ChatServer(grid_reply) as server:
        server.script = [("status", 503), ("status", 503), ("status", 503)]
        backend = OpenAIBackend(server.url, "m", None, 2.0, 3, 0.7, 64, backoff_s=1.0)
        done = backend.complete([{"role": "user", "content": "exactly 1"}])
    assert done.attempts == 4
    assert slept == [1.0, 2.0, 4.0]


class TrickleServer(LoopbackServer):
    """An HTTP server on loopback that sends a valid chat completion one byte every
    ``interval`` seconds (``headers``: the status line and headers too; else they come at
    once), and notes when the client closed each connection (a send failed)."""

    def __init__(self, interval: float, headers: bool) -> None:
        super().__init__()
        self.interval, self.headers = interval, headers
        self.closed: list[float] = []  # when each connection was found closed by the client

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def handle(self, conn: socket.socket) -> None:
        threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            while len(body) < length:
                body += conn.recv(65536)
            payload = completion_body('[{"a": 0.5, "b": 0.5}]')
            header = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}"
                      f"\r\n\r\n").encode()
            if not self.headers:
                conn.sendall(header)
            try:
                for byte in (header if self.headers else b"") + payload:
                    if self.stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.interval)
            except OSError:
                self.closed.append(time.monotonic())


@pytest.fixture(params=["body", "headers"])
def trickle(request: pytest.FixtureRequest) -> Iterator[TrickleServer]:
    """A reply of 204 bytes at 20 a second: about 10 s (about 14 s with its headers)."""
    with TrickleServer(0.05, headers=request.param == "headers") as server:
        yield server


def test_a_trickled_reply_ends_at_timeout_s_and_its_connection_closes(trickle: TrickleServer) -> None:
    """Before: the client's timeout bounds each read, so a reply a byte at a time was
    read to its end, however long it took."""
    backend = OpenAIBackend(trickle.url, "test-model", None, timeout_s=1.0, max_retries=1, temperature=0.7,
                            max_tokens=16, backoff_s=0.01)
    start = time.monotonic()
    with pytest.raises(BackendError, match=r"no answer after 2 attempts.*within timeout_s \(1 s\)"):
        backend.complete(MESSAGES)
    took = time.monotonic() - start
    assert 2.0 <= took < 6.0  # two attempts of 1 s (the reply alone takes about 10 s)
    deadline = time.monotonic() + 3
    while len(trickle.closed) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(trickle.closed) == 2  # both attempts' connections closed, not left to trickle on
    assert trickle.closed[-1] - start < took + 2.0


def test_a_trickling_endpoint_falls_back_in_a_campaign(sqlite_url: str) -> None:
    with TrickleServer(0.05, headers=False) as trickle:
        spec = quadratic_spec(search__algorithm="llm", search__budget=8, search__batch_size=4,
                              search__max_in_flight=4,
                              search__options={"base_url": trickle.url, "model": "test-model", "timeout_s": 0.5,
                                               "max_retries": 0})
        start = time.monotonic()
        stats = api.run(spec, storage=sqlite_url, executor="inline")
        took = time.monotonic() - start
    assert stats.finished == 8 and took < 8
    calls = calls_of(sqlite_url)
    # no complete reply by timeout_s is no answer: the second ask waits for the server (fallback), as
    # for one that is not there, rather than spending timeout_s again (tests/test_llm_walkthrough.py)
    assert len(calls) == 1 and all(c["status"] == "error" and "timeout_s (0.5 s)" in c["error"] for c in calls)


def test_run_with_deadline_also_inside_a_running_loop() -> None:
    from search.proposers.llm_backends import run_with_deadline

    async def answer() -> int:
        await asyncio.sleep(0.01)
        return 42

    assert run_with_deadline(answer, 1.0) == 42
    with pytest.raises(TimeoutError):
        run_with_deadline(lambda: asyncio.sleep(10), 0.2)

    async def notebook() -> int:  # a caller whose thread runs a loop already (Jupyter)
        return run_with_deadline(answer, 1.0)

    assert asyncio.run(notebook()) == 42


# -- 4. candidates that name no parameter ------------------------------------------------
@pytest.mark.parametrize("reply,count", [
    ('{"candidates": 5}', 1), ("{}", 1), ('{"error": "overloaded"}', 1), ('[{}, {"x": 1}, {"A": 0.2}]', 3),
])
def test_a_candidate_naming_no_parameter_is_discarded(sqlite_url: str, reply: str, count: int) -> None:
    """Before: repaired into the centre of the space, {"a": 0.5, "b": 0.5}, as an llm proposal."""
    with ChatServer(grid_reply) as server:
        server.script = [("ok", reply)]
        spec = llm_spec(server, max_retries=0)
        spec["search"]["budget"] = 4
        stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 4
    assert {r["proposer"] for r in rows_of(sqlite_url)} == {"llm-fallback"}
    (call,) = calls_of(sqlite_url)
    assert call["outcome"]["valid"] == 0
    assert call["outcome"]["discarded"] == {"names no parameter of the space": count}


def test_a_candidate_naming_some_parameters_is_still_repaired(sqlite_url: str) -> None:
    with ChatServer(grid_reply) as server:
        server.script = [("ok", '[{"a": 0.2, "note": "x"}, {"note": "only"}]')]
        spec = llm_spec(server, max_retries=0)
        spec["search"]["budget"] = 4
        api.run(spec, storage=sqlite_url, executor="inline")
    rows = rows_of(sqlite_url)
    assert [r["params"] for r in rows if r["proposer"] == "llm"] == [{"a": 0.2, "b": 0.5}]
    (call,) = calls_of(sqlite_url)
    assert call["outcome"]["discarded"] == {"names no parameter of the space": 1}
