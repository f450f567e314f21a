"""``atlas status NAME`` says what a model-backed proposer's calls came to: a "model calls"
table (proposer, calls, answered, failed, asks that sent no request, the latest error) and
``--json``'s ``model_calls``. Before, a campaign whose LLM server could not be reached
showed only a proposer ``llm-fallback`` with counts, and never that the server was not
reached nor what its calls returned."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import archive
from archive.errors import CampaignNotFound
from archive.store import Store
from search import api
from search import cli as cli_module
from search.model_calls import discard_counts
from search.proposers import checkpoint
from tests.conftest import quadratic_spec
from tests.test_llm_unreachable import closed_port


def new_campaign(store: Store, name: str = "c") -> int:
    layout = {"kind": "grid", "axes": [{"name": "m", "low": 0.0, "high": 1.0, "bins": 2}]}
    return store.create_campaign(name, {"search": {"budget": 10}}, "hash", layout).id


def call(key: str, status: str = "ok", proposer: str = "llm", **fields: Any) -> dict[str, Any]:
    """A ``proposer_calls`` row as a proposer hands it over."""
    row = {"proposer": proposer, "key": key, "request": {"messages": []}, "reply": "[]" if status == "ok" else None,
           "status": status, "error": None, "usage": None, "latency_s": None, "outcome": None}
    return {**row, **fields}


def write_calls(store: Store, cid: int, calls: list[dict[str, Any]]) -> None:
    """Each call in a turn of its own, so each has its own ``created_at``, in order."""
    for c in calls:
        store.add_pending(cid, [], calls=[c])
        time.sleep(0.002)


@pytest.fixture
def store(storage_url: str) -> Store:
    s = Store(storage_url)
    yield s
    s.close()


def test_the_calls_are_counted_per_proposer_in_sql(store: Store) -> None:
    """Calls, answered, failed, tokens summed where usage holds numbers, the latest error's
    first line and time, the median latency of the timed calls (even count: the middle two's mean)."""
    cid = new_campaign(store)
    other = new_campaign(store, "other")
    write_calls(store, other, [call("x", "error", error="not this campaign's")])
    before = time.time()
    write_calls(store, cid, [
        call("a", usage={"prompt_tokens": 100, "completion_tokens": 20, "attempts": 1}, latency_s=4.0),
        call("b", "error", error="first failure\ntraceback line"),
        call("c", usage={"prompt_tokens": 50, "completion_tokens": 5}, latency_s=1.0),
        call("d", usage={"prompt_tokens": "many", "completion_tokens": None}, latency_s=2.0),
        call("e", "error", error="no answer after 5 attempts: connection refused\nmore"),
        call("f", usage=["not", "a", "mapping"], latency_s=10.0),
        call("g", "error", proposer="llm-mutate", error=None),
    ])
    llm, mutate = store.call_summary(cid)
    assert {k: llm[k] for k in ("proposer", "calls", "answered", "failed")} == {
        "proposer": "llm", "calls": 6, "answered": 4, "failed": 2}
    assert (llm["prompt_tokens"], llm["completion_tokens"], llm["tokens"]) == (150, 25, 175)
    assert llm["latest_error"] == "no answer after 5 attempts: connection refused"
    assert before <= llm["latest_error_at"] <= time.time()
    assert llm["median_latency_s"] == pytest.approx(3.0)  # of 1, 2, 4, 10
    assert mutate == {"proposer": "llm-mutate", "calls": 1, "answered": 0, "failed": 1, "unusable": 0,
                      "prompt_tokens": None, "completion_tokens": None, "tokens": None, "latest_error": "",
                      "latest_error_at": mutate["latest_error_at"], "latest_unusable": None,
                      "latest_unusable_at": None, "median_latency_s": None}
    assert mutate["latest_error_at"] >= llm["latest_error_at"]


def test_no_calls_is_an_empty_summary_and_an_odd_count_its_middle_latency(store: Store) -> None:
    cid = new_campaign(store)
    assert store.call_summary(cid) == []
    write_calls(store, cid, [call(k, latency_s=v) for k, v in (("a", 3.0), ("b", 1.0), ("c", 9.0))])
    (row,) = store.call_summary(cid)
    assert row["median_latency_s"] == 3.0 and row["latest_error"] is None and row["latest_error_at"] is None


def test_the_handle_reads_the_summary_of_its_campaign_alone(storage_url: str, store: Store) -> None:
    cid = new_campaign(store)
    write_calls(store, cid, [call("a", "error", error="down")])
    camp = archive.open(storage_url).campaign("c")
    assert [(r["proposer"], r["failed"], r["latest_error"]) for r in camp.model_calls()] == [("llm", 1, "down")]
    assert camp.checkpoint() is None
    store.delete_campaign(cid)
    with pytest.raises(CampaignNotFound):
        camp.model_calls()


def llm_checkpoint(discarded: dict[str, int], name: str = "llm") -> bytes:
    return checkpoint.dumps(name, 1, {"requests": 1, "asks": 3, "discarded": discarded})


def test_the_discard_counts_are_read_from_a_checkpoint_and_its_members() -> None:
    own = llm_checkpoint({"server unreachable": 7, "invalid": 2})
    assert discard_counts(own) == {"llm": {"server unreachable": 7, "invalid": 2}}
    member = np.frombuffer(llm_checkpoint({"request cap reached": 3}, "llm-mutate"), dtype=np.uint8)
    portfolio = checkpoint.dumps("portfolio", 1, {"pulls": {}}, arrays={"member.llm-mutate": member,
                                                                        "member.map-elites": np.zeros(2)})
    assert discard_counts(portfolio) == {"llm-mutate": {"request cap reached": 3}}
    for unreadable in (None, b"\x80\x04legacy pickle", b"garbage"):
        assert discard_counts(unreadable) == {}


def unreachable_spec(port: int, **search: Any) -> dict[str, Any]:
    """A campaign whose LLM server is a closed port: its connect is refused at once, and
    with no retries each call fails in milliseconds."""
    options = {"base_url": f"http://127.0.0.1:{port}/v1", "model": "test-model", "timeout_s": 2, "max_retries": 0,
               "backoff_s": 0}
    return quadratic_spec(search__algorithm="llm", search__budget=12, search__batch_size=4,
                          search__max_in_flight=4, search__options=options, **search)


def atlas(*args: str) -> Any:
    """``atlas ARGS`` in this process; stdout and stderr kept apart."""
    return CliRunner().invoke(cli_module.app, list(args), catch_exceptions=False)


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console of 240 columns: one line a row, the error not folded."""
    monkeypatch.setattr(cli_module.console, "_width", 240)


def test_status_shows_the_model_calls_of_an_unreachable_server(tmp_path: Path, wide: None) -> None:
    """Three asks against a closed port: one call failed (connection refused), two asks sent
    nothing while the server was waited for; the table and the JSON say both."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    assert api.run(unreachable_spec(closed_port()), storage=url, executor="inline").finished == 12
    shown = atlas("status", "quad", "--storage", url)
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    title = next(i for i, line in enumerate(lines) if line.strip() == "model calls")
    assert lines[title + 1].split() == ["proposer", "calls", "answered", "failed", "not", "asked", "latest", "error"]
    row = lines[title + 3]
    assert row.split()[:5] == ["llm", "1", "0", "1", "2"]
    assert "connection refused" in row and " (at 20" in row
    status = json.loads(atlas("status", "quad", "--storage", url, "--json").stdout)
    (calls,) = status["model_calls"]
    assert {k: calls[k] for k in ("proposer", "calls", "answered", "failed", "not_asked", "not_asked_reasons")} == {
        "proposer": "llm", "calls": 1, "answered": 0, "failed": 1, "not_asked": 2,
        "not_asked_reasons": {"server unreachable": 2}}
    error = calls["latest_error"]
    assert error.startswith("no answer after 1 attempt") and "connection refused" in error
    assert status["proposers"] == {"llm-fallback": {"done": 12, "failed": 0, "running": 0, "in_flight": 0,
                                                    "pending": 0}}


def test_a_campaign_without_calls_prints_no_table_and_an_empty_list(tmp_path: Path, wide: None) -> None:
    """Also the campaigns' list: no detail, so ``model_calls`` is ``None`` as ``proposers`` is."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=10), storage=url, executor="inline")
    shown = atlas("status", "quad", "--storage", url)
    assert shown.exit_code == 0 and "model calls" not in shown.stdout and "evaluations by proposer" in shown.stdout
    status = json.loads(atlas("status", "quad", "--storage", url, "--json").stdout)
    assert status["model_calls"] == []
    (listed,) = json.loads(atlas("status", "--storage", url, "--json").stdout)
    assert listed["model_calls"] is None and listed["proposers"] is None


def test_the_table_has_a_tokens_column_only_where_replies_counted_tokens() -> None:
    """Tokens summed (with thousands' separators) where some reply counted them; no column else."""
    from rich.console import Console

    from search.cli_tables import model_calls_table

    def shown(rows: list[dict[str, Any]]) -> str:
        out = Console(width=240, record=True, file=io.StringIO())
        out.print(model_calls_table(rows))
        return out.export_text()

    answered = {"proposer": "llm", "calls": 3, "answered": 3, "failed": 0, "tokens": 12345, "not_asked": None,
                "latest_error": None, "latest_error_at": None}
    text = shown([answered])
    assert "tokens" in text and "12,345" in text
    assert text.splitlines()[-1].split() == ["llm", "3", "3", "0", "—", "12,345", "—"]
    assert "tokens" not in shown([{**answered, "tokens": None}])
