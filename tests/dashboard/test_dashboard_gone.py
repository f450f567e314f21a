"""In headless Chromium: a campaign deleted under an open page is final, and the compare
page's "same colour scale" box says when it cannot apply.

- A ``404`` (the storage answered: no such campaign) stops the page's polling and the live
  indicator says the campaign is gone; before, it read ``storage not answering; retrying``
  and the page asked again forever (backing off to 60 s). Requests are counted with the
  page's own resource timing entries.
- Any other ``4xx`` (the storage answered: it cannot serve that request, e.g. a ``422``) is
  final too: polling stops and the indicator says the storage refused it, the error line
  shows its ``detail``; before, it read ``storage not answering; retrying`` like a ``5xx``.
- A compare side found deleted leaves both campaign pickers.
- Two campaigns whose objectives (or directions) differ cannot share one colour scale: the
  box is disabled, unticked, and says why.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboard.cli import make_server, url_of
from tests.dashboard.browser import Chromium, Page, find_chromium
from tests.dashboard.synthetic import synthetic_campaign
from tests.dashboard.test_dashboard_browser import serve

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: `apt-get install -y chromium`; or set $CHROMIUM)",
)

INDICATOR = "(n => n.hidden ? '' : n.className + ' | ' + n.textContent)(document.getElementById('live-indicator'))"
ERROR_LINE = "document.getElementById('page-error').textContent"
POKE = "document.dispatchEvent(new Event('visibilitychange'))"  # a visible tab's poller asks at once


def api_requests(page: Page, name: str) -> int:
    """How many requests the page has made to the API of campaign ``name`` (``""``: the list too)."""
    prefix = f"/api/campaigns/{name}" if name else "/api/campaigns"
    return int(page.evaluate(
        f"performance.getEntriesByType('resource').filter(e => e.name.startsWith("
        f"location.origin + '{prefix}')).length"))


def open_counting(page: Page, url: str) -> None:
    """Open ``url`` with room for every request in the resource timing buffer."""
    page.navigate(url)
    page.evaluate("performance.setResourceTimingBufferSize(100000)")


def assert_stopped(page: Page, name: str, wait_s: float) -> None:
    """No request to ``name``'s API for ``wait_s`` seconds, nor when the tab is shown again."""
    asked = api_requests(page, name)
    time.sleep(wait_s)
    page.evaluate(POKE)
    time.sleep(0.5)
    assert api_requests(page, name) == asked, "the page kept polling a campaign the storage said is gone"


def test_deleted_campaign_stops_polling_and_says_gone(tmp_path: Path, browser: Chromium, page: Page) -> None:
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    store, record = synthetic_campaign(url, "doomed", 200, bins=(8, 8), status="running", seed=21)
    try:
        assert store.acquire_lease(record.id, "test:0:live", ttl_s=120) is None  # polled every 0.3 s
        for base in serve(url, poll_s=0.3):
            open_counting(page, f"{base}/campaigns/doomed")
            page.wait_for("document.getElementById('elite-map').dataset.draws", timeout=60)
            assert "live" in page.evaluate(INDICATOR)
            store.release_lease(record.id, "test:0:live")
            store.delete_campaign(record.id)  # what `atlas delete doomed --yes` does
            indicator = page.wait_for(f"(t => t.includes('gone') && t)({INDICATOR})", timeout=15)
            assert indicator == "live-indicator gone | campaign gone from this storage · stopped checking"
            assert page.evaluate(ERROR_LINE) == "No campaign named “doomed” in this storage."
            assert_stopped(page, "doomed", wait_s=1.5)  # a retry would have come within 0.6 s
            assert browser.problems() == [] or all("404" in p for p in browser.problems())
    finally:
        store.close()


@contextlib.contextmanager
def served(tmp_path: Path, seed: int, *others: tuple[str, int]) -> Iterator[tuple[Any, Any, str]]:
    """Campaign ``doomed`` (and ``others``, each a name and a seed) of 50 evaluations on a 4×4
    map in a new SQLite file, served with polls every 0.3 s: the store, doomed's record and
    the server's address."""
    url = f"sqlite:///{tmp_path / 'gone.db'}"
    store, record = synthetic_campaign(url, "doomed", 50, bins=(4, 4), seed=seed, fail_rate=0.0)
    for name, other_seed in others:
        synthetic_campaign(url, name, 50, bins=(4, 4), seed=other_seed, fail_rate=0.0, store=store)
    try:
        for address in serve(url, poll_s=0.3):
            yield store, record, address
    finally:
        store.close()


def test_deleted_campaign_stops_the_evaluation_page(tmp_path: Path, browser: Chromium, page: Page) -> None:
    with served(tmp_path, 22) as (store, record, address):
        open_counting(page, f"{address}/campaigns/doomed/evaluations/1")
        page.wait_for("document.getElementById('eval-title').textContent === 'Evaluation 1'", timeout=30)
        store.delete_campaign(record.id)
        page.evaluate(POKE)
        indicator = page.wait_for(f"(t => t.includes('gone') && t)({INDICATOR})", timeout=15)
        assert indicator == "live-indicator gone | gone from this storage · stopped checking"
        assert "doomed" in page.evaluate(ERROR_LINE)
        assert_stopped(page, "doomed", wait_s=0.5)


def test_compare_side_deleted_is_gone_the_other_polled(tmp_path: Path, browser: Chromium, page: Page) -> None:
    with served(tmp_path, 23, ("kept", 24)) as (store, record, address):
        open_counting(page, f"{address}/compare?a=doomed&b=kept")
        page.wait_for("[...document.querySelectorAll('.side-map')].every(m => m.dataset.draws)", timeout=60)
        store.delete_campaign(record.id)
        page.evaluate(POKE)
        gone = page.wait_for("(n => n && n.textContent)(document.querySelector('#side-a .side-gone'))", timeout=15)
        assert gone == "No campaign named “doomed” in this storage."
        assert page.evaluate("document.querySelector('#side-a .badge').textContent") == "gone"
        assert page.evaluate(INDICATOR).endswith("· doomed gone")
        assert page.evaluate("['a', 'b'].map(k => [...document.getElementById('pick-' + k).options].map(o => o.value))"
                             ) == [["", "kept"], ["", "kept"]]  # the deleted campaign left both pickers
        doomed, kept = api_requests(page, "doomed"), api_requests(page, "kept")
        page.evaluate(POKE)
        page.wait_for(f"performance.getEntriesByType('resource').filter(e => e.name.startsWith("
                      f"location.origin + '/api/campaigns/kept')).length > {kept}", timeout=15)
        assert api_requests(page, "doomed") == doomed  # the other side is still watched, this one not


SCALE_BOX = """(b => ({disabled: b.disabled, checked: b.checked, title: b.title,
  label: b.closest('label').textContent.trim()}))(document.getElementById('shared-scale'))"""


@pytest.fixture(scope="module")
def base(dash_url: str) -> Iterator[str]:
    yield from serve(dash_url)


@pytest.mark.parametrize(("a", "b", "why"), [
    ("quad", "grid", "objectives differ"),  # score against objective
    ("grid", "low", "directions differ"),  # maximised against minimised
])
def test_compare_scale_box_disabled_when_no_shared_range(base: str, page: Page, a: str, b: str, why: str) -> None:
    page.navigate(f"{base}/compare?a={a}&b={b}")
    page.wait_for("[...document.querySelectorAll('.side-map')].every(m => m.dataset.draws)", timeout=60)
    box = page.wait_for(f"(s => s.disabled && s)({SCALE_BOX})", timeout=15)
    assert box == {"disabled": True, "checked": False, "title": f"{why}: separate scales",
                   "label": f"same colour scale ({why}: separate scales)"}


def test_compare_scale_box_stays_on_for_one_objective(base: str, page: Page) -> None:
    page.navigate(f"{base}/compare?a=grid&b=cvt")
    page.wait_for("[...document.querySelectorAll('.side-map')].every(m => m.dataset.draws)", timeout=60)
    assert page.evaluate(SCALE_BOX) == {"disabled": False, "checked": True, "title": "one colour scale for both maps",
                                        "label": "same colour scale"}


def test_compare_page_polls_again_without_error(base: str, page: Page) -> None:
    """Each poll redraws the sides' status badges (the first one's badge used to be lost:
    the second poll failed and the page read `storage not answering`)."""
    open_counting(page, f"{base}/compare?a=grid&b=cvt")
    page.wait_for("[...document.querySelectorAll('.side-map')].every(m => m.dataset.draws)", timeout=60)
    for _ in range(2):
        asked = api_requests(page, "grid")
        page.evaluate(POKE)
        page.wait_for(f"performance.getEntriesByType('resource').filter(e => e.name.startsWith("
                      f"location.origin + '/api/campaigns/grid')).length > {asked}", timeout=15)
        time.sleep(0.3)
    assert page.evaluate(ERROR_LINE) == ""
    assert page.evaluate(INDICATOR) == "live-indicator idle | nothing running"
    assert page.evaluate("[...document.querySelectorAll('.side .badge')].map(b => b.textContent)") == [
        "finished", "finished"]


REFUSAL = "a value in the query is not one the storage can hold: test refusal"


def refusing(app: Any, refused: dict[str, int]) -> Any:
    """ASGI middleware: a request whose path is a key of ``refused`` (changed as the test goes)
    is answered that status with the app's error body, ``{"detail": REFUSAL}``."""
    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        status = refused.get(scope.get("path", "")) if scope["type"] == "http" else None
        if status is None:
            await app(scope, receive, send)
            return
        body = json.dumps({"detail": REFUSAL}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return wrapped


@contextlib.contextmanager
def served_refusing(tmp_path: Path, refused: dict[str, int]) -> Iterator[tuple[Any, str]]:
    """Campaigns ``doomed`` and ``kept`` served with polls every 0.3 s, the paths of ``refused``
    answered their ``4xx``: the store and the server's address."""
    url = f"sqlite:///{tmp_path / 'refused.db'}"
    store, _ = synthetic_campaign(url, "doomed", 50, bins=(4, 4), seed=25, fail_rate=0.0)
    synthetic_campaign(url, "kept", 50, bins=(4, 4), seed=26, fail_rate=0.0, store=store)
    server, sock = make_server(url, "127.0.0.1", 0, poll_s=0.3)
    server.config.app = refusing(server.config.app, refused)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
            time.sleep(0.02)
        yield store, url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
        store.close()


@pytest.mark.parametrize(("path", "ready", "refused", "name"), [
    ("/", "document.querySelectorAll('#campaign-table tbody tr').length === 2", "/api/campaigns", ""),
    ("/campaigns/doomed", "document.getElementById('elite-map').dataset.draws", "/api/campaigns/doomed", "doomed"),
    ("/campaigns/doomed/evaluations/1", "document.getElementById('eval-title').textContent === 'Evaluation 1'",
     "/api/campaigns/doomed/evaluations/1", "doomed"),
])
@pytest.mark.parametrize("status", [422, 400])
def test_a_4xx_stops_polling_and_shows_the_detail(tmp_path: Path, browser: Chromium, page: Page, path: str,
                                                 ready: str, refused: str, name: str, status: int) -> None:
    answers: dict[str, int] = {}
    with served_refusing(tmp_path, answers) as (_store, address):
        open_counting(page, f"{address}{path}")
        page.wait_for(ready, timeout=60)
        answers[refused] = status
        page.evaluate(POKE)
        indicator = page.wait_for(f"(t => t.includes('stopped') && t)({INDICATOR})", timeout=15)
        assert indicator == f"live-indicator gone | storage refused the request ({status}) · stopped checking"
        assert page.evaluate(ERROR_LINE) == REFUSAL
        assert_stopped(page, name, wait_s=1.0)  # a retry would have come within 0.6 s
        assert "not answering" not in page.evaluate(INDICATOR)


def test_compare_side_refused_stops_that_side_the_other_polled(tmp_path: Path, browser: Chromium,
                                                              page: Page) -> None:
    answers: dict[str, int] = {}
    with served_refusing(tmp_path, answers) as (_store, address):
        open_counting(page, f"{address}/compare?a=doomed&b=kept")
        page.wait_for("[...document.querySelectorAll('.side-map')].every(m => m.dataset.draws)", timeout=60)
        answers["/api/campaigns/doomed"] = 422
        page.evaluate(POKE)
        said = page.wait_for("(n => n && n.textContent)(document.querySelector('#side-a .side-gone'))", timeout=15)
        assert said == REFUSAL
        assert page.evaluate("document.querySelector('#side-a .badge').textContent") == "refused"
        assert page.evaluate(INDICATOR).endswith("· doomed refused")
        assert "not answering" not in page.evaluate(INDICATOR)
        doomed, kept = api_requests(page, "doomed"), api_requests(page, "kept")
        page.evaluate(POKE)
        page.wait_for(f"performance.getEntriesByType('resource').filter(e => e.name.startsWith("
                      f"location.origin + '/api/campaigns/kept')).length > {kept}", timeout=15)
        assert api_requests(page, "doomed") == doomed
