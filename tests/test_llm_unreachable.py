"""An LLM server that cannot be reached (nothing listens, a host that drops the connect)
is asked once, said once, then tried again only at doubling intervals while the fallback
fills the batches; a server that answers with errors or garbage is asked on every ask."""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import archive
from search import api
from search.proposers import build_proposer
from search.proposers.llm_backends import BackendError, OpenAIBackend, Unreachable
from tests.conftest import quadratic_spec
from tests.support.chat_server import ChatServer
from tests.test_llm import llm_context, llm_warnings


def grid_reply(messages: list[dict[str, str]]) -> str:
    """As many distinct in-bounds candidates as the prompt asks for."""
    n = int(re.search(r"exactly (\d+)", messages[-1]["content"]).group(1))
    rng = np.random.default_rng(abs(hash(messages[-1]["content"])) % 2**32)
    return json.dumps([{"a": round(float(a), 4), "b": round(float(b), 4)} for a, b in rng.random((n, 2))])


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The base URL of every attempt the OpenAI backend makes, in order."""
    seen: list[str] = []
    real = OpenAIBackend._request

    async def counted(self: OpenAIBackend, messages: list[dict[str, str]]) -> Any:
        seen.append(str(self.client_options["base_url"]))
        return await real(self, messages)

    monkeypatch.setattr(OpenAIBackend, "_request", counted)
    return seen


def unreachable_spec(port: int, budget: int) -> dict:
    options = {"base_url": f"http://127.0.0.1:{port}/v1", "model": "test-model", "timeout_s": 2, "max_retries": 1,
               "backoff_s": 0.01}
    return quadratic_spec(search__algorithm="llm", search__budget=budget, search__batch_size=4,
                          search__max_in_flight=4, search__options=options)


def test_an_unreachable_server_is_asked_once_and_said_once(sqlite_url: str, attempts: list[str],
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Four asks against a closed port: one call (its two attempts), not four; one warning
    naming the server, the cause and the fallback; the failed call recorded as before."""
    port = closed_port()
    caplog.set_level(logging.WARNING, logger="entropy_atlas.llm")
    stats = api.run(unreachable_spec(port, 16), storage=sqlite_url, executor="inline")
    assert stats.finished == 16
    assert len(attempts) == 2  # the first call's attempt and its retry; the other three asks made none
    (warning,) = llm_warnings(caplog)
    assert warning.startswith(f"the LLM server at http://127.0.0.1:{port}/v1 (model test-model) cannot be reached "
                              f"(connection refused); the llm proposer's batches are filled by its fallback")
    assert "llm-fallback" in warning and "until it answers again" in warning
    camp = archive.open(sqlite_url).campaign("quad")
    assert {r["proposer"] for r in camp.evaluations()} == {"llm-fallback"}
    (call,) = camp.store.calls(camp.record.id)
    assert call["status"] == "error" and "no answer after 2 attempts" in call["error"]
    assert "connection refused" in call["error"] and call["reply"] is None


def _unreachable_on_a_clock(attempts: list[str], max_retries: int) -> tuple[Any, list[float], Callable[[float], int]]:
    """An llm proposer whose server's port is closed, on a clock the test sets (``now[0]``),
    and ``ask_at(t)``: ask for 4 at time ``t`` and return the attempts that made."""
    port = closed_port()
    proposer = build_proposer("llm", llm_context({"base_url": f"http://127.0.0.1:{port}/v1", "model": "m",
                                                  "timeout_s": 2, "max_retries": max_retries, "backoff_s": 0}))
    now = [0.0]
    proposer.clock = lambda: now[0]

    def ask_at(t: float) -> int:
        now[0] = t
        before = len(attempts)
        assert len(proposer.ask(4)) == 4
        return len(attempts) - before

    return proposer, now, ask_at


def test_the_server_is_tried_again_at_doubling_intervals_until_it_answers(attempts: list[str]) -> None:
    """30 s after the failed call one attempt, then 60 s after that, …; once it answers it
    is asked on every ask again."""
    proposer, now, ask_at = _unreachable_on_a_clock(attempts, max_retries=1)
    assert [ask_at(t) for t in (0, 29, 30, 89, 90, 209)] == [2, 0, 1, 0, 1, 0]
    assert proposer.discarded["server unreachable"] == 3
    failed = proposer.take_calls()
    assert len(failed) == 3 and all("connection refused" in c["error"] for c in failed)
    with ChatServer(grid_reply) as server:
        proposer.backend().client_options["base_url"] = server.url  # the server is up now
        now[0] = 210
        assert {p.proposer for p in proposer.ask(4)} == {"llm"}
        now[0] = 211
        assert {p.proposer for p in proposer.ask(4)} == {"llm"}  # asked again at once
        assert len(server.requests) == 2


def test_the_wait_before_trying_an_unreachable_server_again_stops_doubling_at_600_s(attempts: list[str]) -> None:
    """The waits double up to 10 minutes (docs/llm.md, the unreachable server; llm.py's
    UNREACHABLE_MAX_WAIT_S): 30, 60, 120, 240, 480 s, then 600 s, not 960 s."""
    _, _, ask_at = _unreachable_on_a_clock(attempts, max_retries=0)
    assert [ask_at(t) for t in (0, 30, 90, 210, 450, 930, 1529, 1530)] == [1, 1, 1, 1, 1, 1, 0, 1]


def test_a_slow_failed_attempt_waits_ten_times_its_own_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server is tried again never sooner than 10 × the failed attempt's time (docs/llm.md,
    the unreachable server; llm.py's UNREACHABLE_WAIT_FACTOR): after a call whose attempt
    took 5 s (a connect timeout), the first wait is 50 s, not 30 s. The backend's
    ``complete`` is replaced on the proposer's own backend, so no 5 s is spent."""
    proposer = build_proposer("llm", llm_context({"base_url": "http://127.0.0.1:9/v1", "model": "m"}))
    calls = []

    def dead(messages: list[dict[str, str]], retries: int | None = None) -> Any:
        calls.append(retries)
        raise Unreachable("no answer after 1 attempt", "connect timed out", attempt_s=5.0)

    monkeypatch.setattr(proposer.backend(), "complete", dead)
    now = [0.0]
    proposer.clock = lambda: now[0]
    made = []
    for t in (0.0, 49.0, 50.0):
        now[0] = t
        assert len(proposer.ask(4)) == 4
        made.append(len(calls))
    assert made == [1, 1, 2]


def test_a_resumed_run_asks_the_server_again(sqlite_url: str, attempts: list[str]) -> None:
    """The wait is not checkpointed: the resumed run's first ask tries the server."""
    port = closed_port()
    api.run(unreachable_spec(port, 8), storage=sqlite_url, executor="inline")
    assert len(attempts) == 2
    stats = api.resume("quad", storage=sqlite_url, executor="inline", budget=16)
    assert stats.finished == 16
    assert len(attempts) == 4
    camp = archive.open(sqlite_url).campaign("quad")
    assert len(camp.store.calls(camp.record.id)) == 2


@pytest.fixture
def dropping_port() -> Iterator[int]:
    """A loopback port whose listen queue is full: a connect to it hangs, as to a host that
    drops packets."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))  # in progress: it takes the queue's place
        fillers.append(filler)
    yield port
    for s in [*fillers, server]:
        s.close()


def test_a_connect_that_times_out_is_unreachable(dropping_port: int) -> None:
    """With a 1 s timeout_s the connect gives up at 0.9 s, before the attempt's deadline,
    so it is told apart from a slow reply."""
    backend = OpenAIBackend(f"http://127.0.0.1:{dropping_port}/v1", "m", None, 1.0, 1, 0.7, 10, backoff_s=0)
    with pytest.raises(Unreachable) as caught:
        backend.complete([{"role": "user", "content": "hi"}])
    assert "no answer after 2 attempts" in str(caught.value)
    # on a loaded machine the attempt's deadline, 0.1 s later, may come first: unreachable all the same
    assert caught.value.reason in ("connect timed out", "no complete reply within timeout_s (1 s)"), caught.value
    assert caught.value.reason != "connect timed out" or caught.value.attempt_s < 1.0


@pytest.fixture
def hanging_up_port() -> Iterator[int]:
    """A loopback port that accepts each connection and closes it at once, unanswered."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_a_server_that_hangs_up_is_reached(hanging_up_port: int) -> None:
    """A connection accepted then closed: the server is there; an error, not unreachable."""
    backend = OpenAIBackend(f"http://127.0.0.1:{hanging_up_port}/v1", "m", None, 2.0, 1, 0.7, 10, backoff_s=0)
    with pytest.raises(BackendError) as caught:
        backend.complete([{"role": "user", "content": "hi"}])
    assert not isinstance(caught.value, Unreachable)


def test_a_server_answering_errors_and_garbage_is_asked_on_every_ask(
        sqlite_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """500s and bodies that are not JSON: each of the four asks makes its request, as before."""
    with ChatServer(grid_reply) as server:
        server.script = [("status", 500), ("raw", b"not json"), ("status", 500), ("raw", b"<html>")]
        options = {"base_url": server.url, "model": "test-model", "timeout_s": 2, "max_retries": 0}
        spec = quadratic_spec(search__algorithm="llm", search__budget=16, search__batch_size=4,
                              search__max_in_flight=4, search__options=options)
        caplog.set_level(logging.WARNING, logger="entropy_atlas.llm")
        stats = api.run(spec, storage=sqlite_url, executor="inline")
        assert stats.finished == 16
        assert len(server.requests) == 4
    assert not any("cannot be reached" in w for w in llm_warnings(caplog))
    camp = archive.open(sqlite_url).campaign("quad")
    assert [c["status"] for c in camp.store.calls(camp.record.id)] == ["error"] * 4
