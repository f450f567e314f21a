"""The dashboard's JSON API, through FastAPI's test client: every view agrees with the
archive's own read API, matches its documented schema, and is cached by ETag."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel

import archive
from archive.store import failure_group
from dashboard import schemas
from tests.dashboard.conftest import CAMPAIGNS


def get(client: TestClient, url: str, model: type[BaseModel] | None = None, status: int = 200) -> Any:
    response = client.get(url)
    assert response.status_code == status, response.text
    body = response.json()
    if model is not None:
        model.model_validate(body)  # the OpenAPI schema describes what is served
    return body


def test_campaign_list_has_status_and_progress(client: TestClient, dash_url: str) -> None:
    body = get(client, "/api/campaigns", schemas.CampaignList)
    rows = {c["name"]: c for c in body["campaigns"]}
    assert set(rows) == set(CAMPAIGNS)
    with archive.open(dash_url) as handle:
        for camp in handle.campaigns():
            s = camp.stats()
            row = rows[camp.name]
            assert row["status"] == camp.record.status
            assert row["stats"]["finished"] == s.finished
            assert row["stats"]["elites"] == s.elites
            assert row["progress"] == pytest.approx(min(1.0, s.finished / camp.budget))
    assert rows["empty"]["state"] == "created" and rows["empty"]["stats"]["finished"] == 0
    assert rows["quad"]["state"] == "finished" and rows["quad"]["stats"]["counts"]["failed"] > 0


def test_summary_matches_the_archive(client: TestClient, dash_url: str) -> None:
    body = get(client, "/api/campaigns/quad", schemas.CampaignSummary)
    with archive.open(dash_url) as handle:
        camp = handle.campaign("quad")
        s = camp.stats()
        assert body["stats"]["qd_score"] == pytest.approx(s.qd_score)
        assert body["stats"]["coverage"] == pytest.approx(s.coverage)
        assert body["stats"]["best_evaluation_id"] == s.best_evaluation_id
        assert body["archive"]["cells"] == camp.layout.cells == 100
    assert body["objective"] == {"name": "score", "direction": "maximize"}
    assert body["spec"]["search"]["algorithm"] == "map-elites"
    assert body["version"]


@pytest.mark.parametrize("name", ["quad", "grid", "cvt", "three", "low", "empty"])
def test_elites_are_the_archive_elites(client: TestClient, dash_url: str, name: str) -> None:
    body = get(client, f"/api/campaigns/{name}/elites", schemas.Elites)
    with archive.open(dash_url) as handle:
        camp = handle.campaign(name)
        elites = camp.elites()
        assert body["count"] == len(elites) == camp.stats().elites
        assert body["cell"] == [e["cell"] for e in elites]
        assert body["evaluation_id"] == [e["evaluation_id"] for e in elites]
        assert body["objective"] == pytest.approx([e["objective"] for e in elites])
        for m in camp.layout.measure_names:
            assert body["measures"][m] == pytest.approx([e["measures"][m] for e in elites])
        for p in body["param_names"]:
            assert body["params"][p] == [e["params"].get(p) for e in elites]
    if name == "empty":
        assert body["count"] == 0


@pytest.mark.parametrize("name", ["quad", "grid", "cvt", "low"])
def test_history_ends_at_the_archive_statistics(client: TestClient, dash_url: str, name: str) -> None:
    body = get(client, f"/api/campaigns/{name}/history", schemas.History)
    with archive.open(dash_url) as handle:
        s = handle.campaign(name).stats()
    assert body["total"] == s.finished
    assert body["evaluations"][0] == 1 and body["evaluations"][-1] == s.finished
    assert body["evaluations"] == sorted(body["evaluations"])
    assert body["qd_score"][-1] == pytest.approx(s.qd_score)
    assert body["coverage"][-1] == pytest.approx(s.coverage)
    assert body["filled"][-1] == s.elites
    assert body["best"][-1] == pytest.approx(s.best_objective)
    assert body["failed"][-1] == s.counts["failed"]
    assert all(a <= b for a, b in zip(body["filled"], body["filled"][1:], strict=False))


def test_history_is_downsampled_to_the_points_asked(client: TestClient) -> None:
    body = get(client, "/api/campaigns/grid/history?points=50")
    assert 2 <= len(body["evaluations"]) <= 50
    assert body["evaluations"][-1] == body["total"]
    assert get(client, "/api/campaigns/grid/history?points=1", status=422)["detail"]


def dominated(point: tuple[float, float], front: list[tuple[float, float]], higher: bool, sign: float) -> bool:
    """Whether some front point is at least as good in both and better in one (or equal)."""
    m, f = point
    for fm, ff in front:
        better_m = fm >= m if higher else fm <= m
        if better_m and sign * ff >= sign * f:
            return True
    return False


@pytest.mark.parametrize("name", ["quad", "low"])
def test_pareto_fronts_cover_every_done_evaluation(client: TestClient, dash_url: str, name: str) -> None:
    body = get(client, f"/api/campaigns/{name}/scatter", schemas.Scatter)
    with archive.open(dash_url) as handle:
        camp = handle.campaign(name)
        done = camp.evaluations(status="done")
        sign = 1.0 if camp.maximize else -1.0
        elite_ids = {e["evaluation_id"] for e in camp.elites()}
    assert body["total"] == len(done)
    shown = body["points"]
    assert body["shown"] == len(shown["evaluation_id"]) == len(done)  # under the limit: all of them
    assert {i for i, e in zip(shown["evaluation_id"], shown["elite"], strict=True) if e} == elite_ids
    for m in body["measure_names"]:
        for label, higher in (("higher", True), ("lower", False)):
            front = list(zip(body["fronts"][m][label]["measure"], body["fronts"][m][label]["objective"], strict=True))
            assert front, "a front has at least one point"
            assert [p[0] for p in front] == sorted(p[0] for p in front)
            for row in done:
                assert dominated((row["measures"][m], row["objective"]), front, higher, sign)
            for i, p in enumerate(front):  # no front point dominates another
                others = [q for q in front[:i] + front[i + 1:] if q != p]
                assert not dominated(p, others, higher, sign)


def test_scatter_samples_large_campaigns(client: TestClient) -> None:
    body = get(client, "/api/campaigns/grid/scatter?limit=100", schemas.Scatter)
    assert body["shown"] <= 100 < body["total"]
    assert len(body["points"]["objective"]) == body["shown"]


def test_proposers_account_for_every_evaluation_and_the_qd_score(client: TestClient, dash_url: str) -> None:
    body = get(client, "/api/campaigns/grid/proposers", schemas.Proposers)
    with archive.open(dash_url) as handle:
        camp = handle.campaign("grid")
        s = camp.stats()
        counts = camp.proposer_counts()
        elites = camp.elites()
    rows = {r["name"]: r for r in body["proposers"]}
    assert set(rows) == set(counts) == {"map-elites", "random"}
    for name, row in rows.items():
        assert set(counts[name]) == {"pending", "running", "done", "failed"}  # every status, 0 where none
        assert {k: row["counts"][k] for k in counts[name]} == counts[name]
        assert row["elites"] == sum(1 for e in elites if e["proposer"] == name)
    assert sum(r["evaluations"] for r in rows.values()) == s.created
    assert sum(r["qd_contribution"] for r in rows.values()) == pytest.approx(s.qd_score)
    assert max(r["best_objective"] for r in rows.values()) == pytest.approx(s.best_objective)
    t = body["over_time"]
    assert sum(t["cumulative"][n][-1] for n in rows) == s.finished
    assert body["exploration_run_length"] == 20
    for row in rows.values():  # uniform random points in 10 coordinates, 10 bins: ~0.88 per run of 20
        e = row["exploration"]
        assert 0.8 < row["exploration_entropy"] == e["mean"] < 0.95
        assert e["run_length"] == 20 and e["runs"] == row["evaluations"] // 20 and 0 < e["std"] < 0.1


def test_failures_are_grouped_with_their_errors(client: TestClient, dash_url: str) -> None:
    body = get(client, "/api/campaigns/quad/failures?limit=5", schemas.Failures)
    with archive.open(dash_url) as handle:
        failed = handle.campaign("quad").evaluations(status="failed")
    assert body["total"] == len(failed) > 0
    assert sum(g["count"] for g in body["groups"]) == len(failed)
    expected = Counter(failure_group(r["error"]) for r in failed)
    assert {g["error"]: g["count"] for g in body["groups"]} == expected
    assert [g["count"] for g in body["groups"]] == sorted(expected.values(), reverse=True)
    assert any(h.startswith("RuntimeError: boom") for h in expected)  # the flaky evaluator's raise
    assert len(body["evaluations"]) == min(5, len(failed))
    latest = max(failed, key=lambda r: r["finished_seq"])
    assert body["evaluations"][0]["id"] == latest["id"] and body["evaluations"][0]["error"] == latest["error"]
    page2 = get(client, "/api/campaigns/quad/failures?limit=5&offset=5")
    assert not {e["id"] for e in page2["evaluations"]} & {e["id"] for e in body["evaluations"]}


def test_evaluation_log_pages_and_filters(client: TestClient, dash_url: str) -> None:
    body = get(client, "/api/campaigns/quad/evaluations?status=done&limit=7&order=-seq", schemas.EvaluationPage)
    with archive.open(dash_url) as handle:
        done = handle.campaign("quad").evaluations(status="done")
    assert body["total"] == len(done)
    assert [e["id"] for e in body["evaluations"]] == [r["id"] for r in sorted(done, key=lambda r: -r["seq"])[:7]]
    assert all(e["status"] == "done" for e in body["evaluations"])
    assert get(client, "/api/campaigns/quad/evaluations?status=bogus", status=422)["detail"]


def test_evaluation_detail_knows_its_cell_and_elite(client: TestClient, dash_url: str) -> None:
    with archive.open(dash_url) as handle:
        camp = handle.campaign("quad")
        elite = camp.elites()[0]
        loser = next(r for r in camp.evaluations(status="done")
                     if r["cell"] == elite["cell"] and r["id"] != elite["evaluation_id"])
        failed = camp.evaluations(status="failed")[0]
        bounds = camp.layout.cell_bounds(elite["cell"])
    body = get(client, f"/api/campaigns/quad/evaluations/{elite['evaluation_id']}", schemas.EvaluationDetail)
    assert body["cell"]["is_elite"] and body["cell"]["elite_evaluation_id"] == elite["evaluation_id"]
    assert np.allclose(body["cell"]["bounds"], np.array(bounds, dtype=float))
    assert body["evaluation"]["params"] == elite["params"]
    body = get(client, f"/api/campaigns/quad/evaluations/{loser['id']}", schemas.EvaluationDetail)
    assert not body["cell"]["is_elite"] and body["cell"]["elite_evaluation_id"] == elite["evaluation_id"]
    body = get(client, f"/api/campaigns/quad/evaluations/{failed['id']}", schemas.EvaluationDetail)
    assert body["cell"] is None and body["evaluation"]["error"] == failed["error"]
    assert "no evaluation 999999" in get(client, "/api/campaigns/quad/evaluations/999999", status=404)["detail"]


def test_cvt_layout_is_a_voronoi_raster_of_the_centroids(client: TestClient, dash_url: str) -> None:
    body = get(client, "/api/campaigns/cvt/layout", schemas.Layout)
    with archive.open(dash_url) as handle:
        layout = handle.campaign("cvt").layout
    assert body["kind"] == "cvt" and len(body["centroids"]) == layout.cells == 40
    raster = np.array(body["voronoi"]["cell"])
    assert raster.shape == (len(body["voronoi"]["y"]), len(body["voronoi"]["x"]))
    for r, c in [(0, 0), (57, 131), (199, 199), (120, 3)]:
        point = np.array([[body["voronoi"]["x"][c], body["voronoi"]["y"][r]]])
        assert raster[r, c] == layout.index_of(point)[0]
    assert set(np.unique(raster)) <= set(range(layout.cells))
    grid = get(client, "/api/campaigns/three/layout", schemas.Layout)
    assert grid["kind"] == "grid" and grid["centroids"] is None and [a["bins"] for a in grid["axes"]] == [5, 5, 4]


def test_unknown_campaign_is_a_404_that_says_so(client: TestClient) -> None:
    api = client.get("/api/campaigns/no-such-thing/elites")
    assert api.status_code == 404
    assert "no-such-thing" in api.json()["detail"]
    page = client.get("/campaigns/no-such-thing")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    text = re.sub(r"\s+", " ", page.text)
    assert "No campaign named “no-such-thing” in this storage." in text
    assert "Campaigns in this storage: quad, grid" in text and "Did you mean" not in text
    misspelt = re.sub(r"\s+", " ", client.get("/campaigns/quadd").text)
    assert "Did you mean “quad”? Campaigns in this storage: quad, grid" in misspelt
    assert client.get("/campaigns/quad/evaluations/999999").status_code == 404
    assert client.get("/compare?a=quad&b=no-such-thing").status_code == 404
    assert client.get("/nowhere").status_code == 404


def test_etag_answers_304_until_the_campaign_changes(tmp_path: Any) -> None:
    from dashboard import create_app
    from tests.dashboard.synthetic import add_results, synthetic_campaign

    url = f"sqlite:///{tmp_path / 'live.db'}"
    store, record = synthetic_campaign(url, "live", 200, bins=(10, 10), status="running")
    with TestClient(create_app(url)) as c:
        first = c.get("/api/campaigns/live/elites")
        etag = first.headers["etag"]
        again = c.get("/api/campaigns/live/elites", headers={"If-None-Match": etag})
        assert again.status_code == 304 and not again.content
        history = c.get("/api/campaigns/live/history").json()
        held = first.json()
        assert held["complete"] and held["since"] == 0 and held["through"] == 200
        add_results(store, record, 300, seed=9, scale=0.5)
        changed = c.get("/api/campaigns/live/elites", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["etag"] != etag
        later = c.get("/api/campaigns/live/history").json()
        assert later["total"] == history["total"] + 300  # the series was extended
        with archive.open(url) as handle:
            s = handle.campaign("live").stats()
        assert later["qd_score"][-1] == pytest.approx(s.qd_score)
        assert changed.json()["count"] == s.elites
        # what a polling page asks for: the elites made since, merged by cell, give the whole map
        delta = c.get(f"/api/campaigns/live/elites?since={held['through']}").json()
        assert not delta["complete"] and delta["through"] == 500 and 0 < len(delta["cell"]) < delta["count"]
        merged = dict(zip(held["cell"], held["evaluation_id"], strict=True))
        merged.update(zip(delta["cell"], delta["evaluation_id"], strict=True))
        full = changed.json()
        assert merged == dict(zip(full["cell"], full["evaluation_id"], strict=True))
        assert c.get(f"/api/campaigns/live/elites?since={delta['through']}").json()["cell"] == []
    store.close()


def test_openapi_documents_every_api_route(client: TestClient) -> None:
    schema = get(client, "/api/openapi.json")
    paths = set(schema["paths"])
    for route in client.app.routes:  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if path.startswith("/api/") and path != "/api/openapi.json":
            assert path in paths, path
            assert set(schema["paths"][path]) == {"get"}
    assert "/api/campaigns/{name}/elites" in paths
    assert "Elites" in schema["components"]["schemas"]
    # no Swagger UI or ReDoc: they would load their scripts from a CDN
    assert client.get("/redoc").status_code == 404
    docs = client.get("/docs")
    assert docs.status_code == 200 and "cdn" not in docs.text.lower()


def test_json_is_strict_json(client: TestClient) -> None:
    """No NaN or Infinity, which browsers' JSON.parse refuses."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in a JSON response")

    for name in ("quad", "low", "empty"):
        for view in ("", "/elites", "/history", "/scatter", "/proposers", "/failures", "/evaluations"):
            json.loads(client.get(f"/api/campaigns/{name}{view}").text, parse_constant=refuse)


OUT_OF_RANGE = [
    "/api/campaigns/{name}/evaluations/{huge}", "/api/campaigns/{name}/evaluations/2147483648",
    "/api/campaigns/{name}/evaluations/9223372036854775808", "/api/campaigns/{name}/evaluations/-1",
    "/api/campaigns/{name}/evaluations/0", "/api/campaigns/{name}/evaluations?offset={huge}",
    "/api/campaigns/{name}/evaluations?offset=-1", "/api/campaigns/{name}/failures?offset={huge}",
    "/api/campaigns/{name}/elites?since={huge}", "/campaigns/{name}/evaluations/{huge}",
]


def assert_ids_out_of_range_are_refused(c: TestClient, name: str) -> None:
    """Ids and offsets beyond what the archive can hold are 422; a well-formed id that does not
    exist is 404; nothing is a 500 or a 503."""
    for url in OUT_OF_RANGE:
        response = c.get(url.format(name=name, huge=10**30))
        assert response.status_code == 422, (url, response.status_code, response.text[:200])
        if url.startswith("/api/"):
            assert response.json()["detail"]
    for missing in (2**31 - 1, 123456789):
        response = c.get(f"/api/campaigns/{name}/evaluations/{missing}")
        assert response.status_code == 404 and f"no evaluation {missing}" in response.json()["detail"]
        assert c.get(f"/campaigns/{name}/evaluations/{missing}").status_code == 404
    assert c.get(f"/api/campaigns/{name}/evaluations?offset=9223372036854775807").json()["evaluations"] == []
    assert c.get("/api/campaigns/" + "x" * 201).status_code == 422
    assert c.get("/api/campaigns/a%00b").status_code == 422


def test_ids_out_of_range_are_422_not_500(client: TestClient) -> None:
    assert_ids_out_of_range_are_refused(client, "quad")


def test_ids_out_of_range_are_422_not_503_on_postgres(postgres_url: str) -> None:
    from dashboard import create_app
    from tests.dashboard.synthetic import synthetic_campaign

    store, _ = synthetic_campaign(postgres_url, "pg", 60, bins=(5, 5))
    store.close()
    with TestClient(create_app(postgres_url)) as c:
        assert_ids_out_of_range_are_refused(c, "pg")


def test_the_spec_is_shown_without_its_secrets(tmp_path: Any) -> None:
    from sqlalchemy import update

    from archive.queries import CAMPAIGNS
    from archive.store import Store
    from dashboard import create_app
    from search.campaigns import open_campaign
    from search.spec import parse_spec
    from tests.dashboard.synthetic import synthetic_spec

    url = f"sqlite:///{tmp_path / 'secret.db'}"
    spec = synthetic_spec("secret", 10)
    spec["evaluator"]["config"] = {"hf_token": "hf_SECRET_1", "dsn": "postgresql://u:SECRET_2@db/x",
                                   "api_key_env": "HF_VAR", "max_tokens": 32}
    store = Store(url)
    open_campaign(store, parse_spec(synthetic_spec("secret", 10)))
    with store.write() as conn:  # as an archive of an older version, whose checks let more through, may hold it
        conn.execute(update(CAMPAIGNS).where(CAMPAIGNS.c.name == "secret").values(spec=spec))
    store.close()
    with TestClient(create_app(url)) as c:
        response = c.get("/api/campaigns/secret")
        assert response.status_code == 200
        assert response.json()["spec"]["evaluator"]["config"] == {
            "hf_token": "***", "dsn": "postgresql://u:***@db/x", "api_key_env": "HF_VAR", "max_tokens": 32}
        assert "SECRET" not in response.text
        page = c.get("/campaigns/secret")
        assert page.status_code == 200 and "SECRET" not in page.text
