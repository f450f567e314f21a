"""``/api/campaigns`` (polled every ``--poll`` seconds by the index page while any campaign
runs) is built once per change of its version and answered ``304`` while it holds; a 404
page lists at most 50 of the storage's campaigns. With 2,000 campaigns each poll had
rebuilt every campaign's statistics (4–6 s, 1.2 MB), and each 404 page listed all 2,000."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard import create_app
from dashboard.app import known_campaigns
from search.campaigns import open_campaign
from search.spec import parse_spec
from tests.dashboard.synthetic import add_results, synthetic_campaign, synthetic_spec


def test_the_campaign_list_is_304_until_a_campaign_moves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'list.db'}"
    store, live = synthetic_campaign(url, "live", 100, bins=(5, 5), status="running")
    synthetic_campaign(url, "done", 100, bins=(5, 5), store=store)
    app = create_app(url)
    with TestClient(app) as c:
        first = c.get("/api/campaigns")
        etag = first.headers["etag"]
        assert first.status_code == 200 and [x["name"] for x in first.json()["campaigns"]] == ["live", "done"]
        built = []
        data = app.state.data.current()
        real = data._stats
        monkeypatch.setattr(data, "_stats", lambda *a: built.append(a) or real(*a))
        again = c.get("/api/campaigns", headers={"If-None-Match": etag})
        assert again.status_code == 304 and not again.content and built == []  # no statistics read
        add_results(store, live, 50, seed=3)  # a result of the running campaign moves the list
        moved = c.get("/api/campaigns", headers={"If-None-Match": etag})
        assert moved.status_code == 200 and moved.headers["etag"] != etag
        assert moved.json()["campaigns"][0]["stats"]["finished"] == 150 and len(built) == 2
        open_campaign(store, parse_spec(synthetic_spec("new", 10)))  # so does a campaign added
        added = c.get("/api/campaigns", headers={"If-None-Match": moved.headers["etag"]})
        assert added.status_code == 200 and len(added.json()["campaigns"]) == 3
    store.close()


def test_a_404_page_lists_at_most_50_campaigns() -> None:
    assert known_campaigns([]) == "This storage has no campaigns."
    assert known_campaigns(["a", "b"]) == "Campaigns in this storage: a, b."
    names = [f"c{i:04d}" for i in range(2000)]
    hint = known_campaigns(names)
    assert hint.startswith("Campaigns in this storage: c0000, c0001,") and hint.endswith(", c0049, and 1,950 more.")
    assert "c0050" not in hint
