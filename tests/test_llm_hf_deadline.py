"""The ``hf`` backend's per-request deadline (``timeout_s``): a local generation stops at
it and the call fails like an HTTP timeout, so the proposer falls back; an actor that does
not answer is killed, and the next request loads the model in a new one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import archive
from search import api
from search.proposers.llm_backends import HF_GRACE_S, BackendError, HFBackend
from tests.conftest import quadratic_spec
from tests.test_llm_local import tiny_model

pytestmark = pytest.mark.ray


def long_context_model(path: Path) -> Path:
    """The tiny GPT-2 of :func:`tiny_model` with room for 16k positions: replies of 10k
    tokens, minutes of generation on a CPU (its end of text is outside its vocabulary)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tiny_model(path)
    vocab = GPT2Config.from_pretrained(path).vocab_size
    GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_positions=16384, n_embd=32, n_layer=1, n_head=2)
                    ).save_pretrained(path)
    return path


@pytest.mark.timeout(180)
def test_a_slow_local_generation_ends_at_timeout_s_and_the_campaign_falls_back(
        sqlite_url: str, tmp_path: Path, ray_cluster: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """max_tokens 10 000, timeout_s 1: each generation ran for minutes (no deadline)."""
    requests: list[float] = []  # each call's seconds after its actor was ready
    ready, complete = HFBackend._ready_actor, HFBackend.complete

    def timed_ready(self: HFBackend) -> Any:
        actor = ready(self)
        requests.append(time.perf_counter())
        return actor

    def timed_complete(self: HFBackend, messages: list[dict[str, str]]) -> Any:
        try:
            return complete(self, messages)
        finally:
            requests[-1] = time.perf_counter() - requests[-1]

    monkeypatch.setattr(HFBackend, "_ready_actor", timed_ready)
    monkeypatch.setattr(HFBackend, "complete", timed_complete)
    model = long_context_model(tmp_path / "long")
    spec = quadratic_spec(search__algorithm="llm", search__budget=8, search__batch_size=4, search__max_in_flight=4,
                          search__options={"backend": "hf", "model": str(model), "max_tokens": 10_000,
                                           "timeout_s": 1})
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 8 and stats.counts["failed"] == 0
    camp = archive.open(sqlite_url).campaign("quad")
    calls = camp.store.calls(camp.record.id)
    assert len(calls) == 2 and all(c["status"] == "error" for c in calls)
    assert all("no complete reply within timeout_s (1 s): the generation was stopped after" in c["error"]
               for c in calls)
    assert len(requests) == 2 and all(seconds < 1 + HF_GRACE_S for seconds in requests), requests
    assert {r["proposer"] for r in camp.evaluations()} == {"llm-fallback"}


class SilentGenerator:
    """An actor that loads nothing and, while ``<path>/silent`` exists, never answers a request."""

    def __init__(self, path: str, device: str, max_new_tokens: int, temperature: float) -> None:
        self.path = Path(path)

    def ready(self) -> bool:
        return True

    def complete(self, messages: list[dict[str, str]], max_time: float) -> tuple[str, dict[str, int], bool]:
        if (self.path / "silent").exists():
            time.sleep(3600)
        return "[]", {"prompt_tokens": 1, "completion_tokens": 1}, False


@pytest.mark.timeout(120)
def test_an_actor_silent_past_the_deadline_is_killed_and_replaced(tmp_path: Path, ray_cluster: None,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import ray
    from ray.exceptions import RayActorError

    monkeypatch.setattr(HFBackend, "generator", SilentGenerator)
    (tmp_path / "silent").touch()
    backend = HFBackend(str(tmp_path), 0, 8, 0.0, 1.0)
    silent = backend._ready_actor()
    start = time.perf_counter()
    with pytest.raises(BackendError, match=r"no reply within timeout_s \(1 s\); its actor was killed"):
        backend.complete([{"role": "user", "content": "propose"}])
    assert time.perf_counter() - start < 1 + HF_GRACE_S + 5
    with pytest.raises(RayActorError):  # killed, not left sleeping
        ray.get(silent.ready.remote(), timeout=30)
    (tmp_path / "silent").unlink()
    done = backend.complete([{"role": "user", "content": "propose"}])  # a new actor answers
    assert done.text == "[]" and backend._actor is not None
