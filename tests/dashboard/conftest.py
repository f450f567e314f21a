"""Fixtures of the dashboard tests: one storage of campaigns, built once per session.

- ``quad``: a real campaign (the scheduler, inline executor, the ``flaky`` evaluator, so
  some evaluations fail with each of the contract's errors) on a 10 x 10 grid;
- ``grid``, ``cvt``, ``three``, ``low``: written straight into the store (2-D grid,
  2-D CVT, three measures, a minimised objective);
- ``empty``: created, never run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from archive.store import Store
from search import api
from search.campaigns import open_campaign
from search.spec import parse_spec
from tests.conftest import quadratic_spec
from tests.dashboard.browser import Chromium, Page, find_chromium
from tests.dashboard.synthetic import synthetic_campaign, synthetic_spec

CAMPAIGNS = ("quad", "grid", "cvt", "three", "low", "empty")


def build_storage(url: str) -> None:
    """Write the campaigns of :data:`CAMPAIGNS` into ``url``."""
    spec = quadratic_spec(
        evaluator={"kind": "python", "target": "tests.support.evaluators:flaky"},
        measures=[{"name": "ma", "low": 0.0, "high": 1.0, "bins": 10},
                  {"name": "mb", "low": 0.0, "high": 1.0, "bins": 10}],
        search__budget=120,
    )
    api.run(spec, storage=url, executor="inline")
    store = Store(url)
    try:
        synthetic_campaign(url, "grid", 1500, bins=(20, 20), store=store, seed=1)
        synthetic_campaign(url, "cvt", 400, kind="cvt", cells=40, store=store, seed=2)
        synthetic_campaign(url, "three", 400, bins=(5, 5, 4), store=store, seed=3, fail_rate=0.0)
        synthetic_campaign(url, "low", 300, bins=(8, 8), store=store, seed=4, maximize=False)
        open_campaign(store, parse_spec(synthetic_spec("empty", 10)))
    finally:
        store.close()


@pytest.fixture(scope="session")
def dash_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite storage holding every campaign of :data:`CAMPAIGNS` (read-only for the tests)."""
    path: Path = tmp_path_factory.mktemp("dashboard") / "atlas.db"
    url = f"sqlite:///{path}"
    build_storage(url)
    return url


@pytest.fixture(scope="session")
def client(dash_url: str) -> Iterator[TestClient]:
    """A test client of the dashboard over :func:`dash_url`."""
    from dashboard import create_app

    with TestClient(create_app(dash_url)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    """Headless Chromium for one module's tests (those modules are skipped where it is not installed)."""
    found = find_chromium()
    assert found is not None
    chromium = Chromium(found).start()
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture
def page(browser: Chromium) -> Iterator[Page]:
    """A new tab of :func:`browser`, closed after the test."""
    browser.events.clear()
    tab = browser.new_page()
    try:
        yield tab
    finally:
        tab.close()
