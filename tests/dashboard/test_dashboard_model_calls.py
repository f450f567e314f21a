"""The dashboard shows an LLM-guided campaign's model calls: ``/api/campaigns/{name}/model-calls``
gives, per proposer that called a model, the figures ``atlas status NAME`` prints (calls,
answered, failed, unusable replies, tokens, the latest error; :func:`archive.calls.summary`,
the same function) and the candidates its replies gave that it used; an empty list for a
campaign whose proposers called none; the campaign page has a "Model calls" section. Before,
the dashboard had no view of the calls at all (the route was a 404)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

import archive
from archive.calls import unusable_reason
from archive.store import Store
from dashboard import create_app, schemas
from search.campaigns import open_campaign
from search.spec import parse_spec
from tests.dashboard.synthetic import synthetic_spec
from tests.test_status_model_calls import call, write_calls

UNUSABLE = {"candidates": 0, "valid": 0, "discarded": {}, "problem": "no JSON array or object of configurations",
            "cut": False}


@pytest.fixture
def calls_url(storage_url: str) -> Iterator[str]:
    """A storage with a campaign ``llm`` whose proposers called a model and a campaign ``plain``
    whose proposers called none."""
    store = Store(storage_url)
    try:
        cid = open_campaign(store, parse_spec(synthetic_spec("llm", 10))).id
        open_campaign(store, parse_spec(synthetic_spec("plain", 10)))
        write_calls(store, cid, [
            call("a", usage={"prompt_tokens": 100, "completion_tokens": 20}, latency_s=2.0,
                 outcome={"candidates": 4, "valid": 3, "discarded": {"duplicate": 1}, "problem": None}),
            call("b", "error", error="no answer after 5 attempts: connection refused\ntraceback",
                 outcome={"candidates": 0, "valid": 0, "discarded": {}, "problem": "no reply"}),
            call("c", latency_s=4.0, outcome=UNUSABLE),
            call("d", usage={"prompt_tokens": 50, "completion_tokens": 5}, latency_s=1.0,
                 outcome={"candidates": 5, "valid": 5, "discarded": {}, "problem": None}),
            call("e", proposer="custom", latency_s=3.0),  # a custom proposer's call: no outcome
            # a failed call's outcome is its ask's, not a reply's: no candidate of it is accepted
            call("f", "error", proposer="custom", error="refused", outcome={"candidates": 2, "valid": 2}),
        ])
    finally:
        store.close()
    yield storage_url


@pytest.fixture
def calls_client(calls_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(calls_url)) as test_client:
        yield test_client


def model_calls(client: TestClient, name: str) -> list[dict]:
    response = client.get(f"/api/campaigns/{name}/model-calls")
    assert response.status_code == 200, response.text
    body = response.json()
    schemas.ModelCalls.model_validate(body)  # the OpenAPI schema describes what is served
    return body["model_calls"]


def test_the_endpoint_gives_each_proposers_calls_as_atlas_status_counts_them(calls_client: TestClient,
                                                                             calls_url: str) -> None:
    rows = model_calls(calls_client, "llm")
    assert [r["proposer"] for r in rows] == ["custom", "llm"]
    custom, llm = rows
    assert {k: llm[k] for k in ("calls", "answered", "failed", "unusable", "accepted", "tokens")} == {
        "calls": 4, "answered": 3, "failed": 1, "unusable": 1, "accepted": 8, "tokens": 175}
    assert llm["latest_error"] == "no answer after 5 attempts: connection refused"
    assert llm["latest_unusable"] == unusable_reason(UNUSABLE)
    assert llm["median_latency_s"] == pytest.approx(2.0)
    assert {k: custom[k] for k in ("calls", "answered", "failed", "unusable", "accepted", "tokens")} == {
        "calls": 2, "answered": 1, "failed": 1, "unusable": 0, "accepted": None, "tokens": None}
    with archive.open(calls_url) as handle:  # what `atlas status llm` reads (CampaignHandle.model_calls)
        status = handle.campaign("llm").model_calls()
    assert [{k: v for k, v in r.items() if k != "accepted"} for r in rows] == status


def test_a_campaign_without_model_calls_gives_an_empty_list(calls_client: TestClient) -> None:
    assert model_calls(calls_client, "plain") == []
    missing = calls_client.get("/api/campaigns/nope/model-calls")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_the_campaign_page_has_the_model_calls_section(calls_client: TestClient) -> None:
    page = calls_client.get("/campaigns/llm")
    assert page.status_code == 200
    assert 'id="model-calls-panel"' in page.text and "<h2>Model calls</h2>" in page.text
    assert 'id="calls-table"' in page.text
    assert "No model calls: no proposer of this campaign called a model." in page.text  # shown when the list is empty
    script = calls_client.get("/static/campaign.js").text
    assert 'api(name, "/model-calls")' in script and "loadModelCalls()" in script
