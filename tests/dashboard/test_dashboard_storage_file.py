"""A SQLite file removed or replaced under a running dashboard (:class:`dashboard.storage.FollowedData`).

Pooled connections keep the file they opened: the dashboard had gone on serving a deleted
file, and after ``mv new.db atlas.db`` answered from the old and the new file in turn. Now
a removed file is a ``503`` on every route, with one line that says so, and a replaced file
is opened afresh (checked as at start-up, caches of its own): only the new file is served.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dashboard import create_app
from tests.dashboard.synthetic import synthetic_campaign

ROUTES = ("/api/health", "/api/campaigns", "/api/campaigns/old", "/api/campaigns/old/history",
          "/api/campaigns/old/scatter", "/api/campaigns/old/elites", "/campaigns/old", "/")


def _archive(path: Path, name: str) -> Path:
    store, _ = synthetic_campaign(f"sqlite:///{path}", name, 120, bins=(5, 5), status="running")
    store.close()  # checkpointed: no WAL left beside it
    return path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, Path]]:
    """A dashboard over ``atlas.db`` (campaign ``old``), every view read once (the pool is warm)."""
    path = _archive(tmp_path / "atlas.db", "old")
    with TestClient(create_app(f"sqlite:///{path}")) as client:
        for route in ROUTES:
            assert client.get(route).status_code == 200, route
        yield client, path


def test_a_replaced_file_is_served_afresh(served: tuple[TestClient, Path], tmp_path: Path) -> None:
    client, path = served
    os.replace(_archive(tmp_path / "new.db", "new"), path)  # mv new.db atlas.db
    for _ in range(5):  # the same answer every time: never the old file's
        assert [c["name"] for c in client.get("/api/campaigns").json()["campaigns"]] == ["new"]
        assert client.get("/api/health").json()["campaigns"] == 1
        assert client.get("/api/campaigns/old/history").status_code == 404
        assert client.get("/api/campaigns/new/history").json()["total"] == 120


def test_a_removed_file_is_503_until_one_is_back(served: tuple[TestClient, Path], tmp_path: Path) -> None:
    client, path = served
    shutil.copy(path, tmp_path / "backup.db")
    path.unlink()
    for route in ROUTES[:-1]:  # "/" is a shell that reads nothing: its script shows the API's 503
        response = client.get(route)
        assert response.status_code == 503, route
        assert response.headers["Retry-After"] == "5"
        if route.startswith("/api"):
            detail = response.json()["detail"]
            assert detail == (f"the storage file {path} was removed while the dashboard ran; it is served again "
                              f"once an archive is back at that path")
    os.replace(tmp_path / "backup.db", path)
    assert client.get("/api/campaigns/old/history").json()["total"] == 120


def test_a_replacement_that_is_no_archive_is_503_with_the_reason(served: tuple[TestClient, Path],
                                                                  tmp_path: Path) -> None:
    client, path = served
    other = tmp_path / "other.db"
    other.write_bytes(b"")  # an empty file: no archive in it
    os.replace(other, path)
    response = client.get("/api/campaigns/old")
    assert response.status_code == 503 and "\n" not in response.json()["detail"]
    os.replace(_archive(tmp_path / "new.db", "new"), path)
    assert client.get("/api/campaigns/new").status_code == 200  # tried again at the next request
