"""End to end in headless Chromium: the dashboard served by uvicorn on a free 127.0.0.1 port
(in a thread of this process), pages opened over the DevTools protocol.

The campaign page must draw its heatmap with as many filled cells as the archive has
elites (read back from the drawn image, pixel by pixel), show an elite on hover and open
the evaluation on click, update itself while a campaign runs without reloading, raise no
script error and request nothing from anywhere but the app. Screenshots are written to
the test's tmp dir (and to ``$ATLAS_TEST_ARTIFACTS`` when set).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import archive
from dashboard.cli import make_server, url_of
from tests.dashboard.browser import Chromium, Page, find_chromium
from tests.dashboard.synthetic import add_results, synthetic_campaign

CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (Debian: `apt-get install -y chromium`; or set $CHROMIUM)",
)

#: Reads the drawn heatmap image back and counts, at the centre of each cell, the pixels that
#: were painted; also counts where that disagrees with the figure's data (null = empty cell).
PAINTED_CELLS = """(async () => {
  const gd = document.getElementById('elite-map');
  const image = gd.querySelector('g.hm image');
  if (!image) return {error: 'no heatmap image'};
  const z = gd.data[0].z, ny = z.length, nx = z[0].length;
  const img = new Image();
  img.src = image.getAttribute('href') || image.getAttribute('xlink:href');
  await img.decode();
  const canvas = document.createElement('canvas');
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const ctx = canvas.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const px = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0, mismatches = 0;
  for (let r = 0; r < ny; r++) for (let c = 0; c < nx; c++) {
    const x = Math.floor((c + 0.5) / nx * canvas.width), y = Math.floor((1 - (r + 0.5) / ny) * canvas.height);
    const on = px[(y * canvas.width + x) * 4 + 3] > 0;
    painted += on ? 1 : 0;
    if (on !== (z[r][c] !== null)) mismatches += 1;
  }
  return {painted, mismatches, cells: nx * ny};
})()"""

#: Where (in the viewport) the centre of the first filled cell of the map is.
FILLED_CELL = """(() => {
  const gd = document.getElementById('elite-map');
  gd.scrollIntoView({block: 'center'});
  const t = gd.data[0], fl = gd._fullLayout, box = gd.getBoundingClientRect();
  for (let r = 0; r < t.z.length; r++) for (let c = 0; c < t.z[r].length; c++) {
    if (t.z[r][c] === null) continue;
    return {x: box.left + fl._size.l + fl.xaxis.l2p(t.x[c]), y: box.top + fl._size.t + fl.yaxis.l2p(t.y[r])};
  }
  return null;
})()"""

DRAWN = "document.getElementById('elite-map').dataset.draws"


def serve(url: str, poll_s: float = 2.0) -> Iterator[str]:
    server, sock = make_server(url, "127.0.0.1", 0, poll_s=poll_s)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="dashboard", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.02)
    try:
        yield url_of(sock).rstrip("/")
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture(scope="module")
def base(dash_url: str) -> Iterator[str]:
    yield from serve(dash_url)


def save(page: Page, tmp_path: Path, name: str) -> Path:
    shot = page.screenshot(tmp_path / name)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    artifacts = os.environ.get("ATLAS_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(artifacts) / name)
    return shot


def only_local(browser: Chromium, base: str) -> None:
    foreign = [u for u in browser.requested_urls() if not u.startswith((base, "data:", "blob:", "about:"))]
    assert not foreign, f"requests outside the app: {foreign}"


def test_campaign_map_draws_every_elite(base: str, browser: Chromium, page: Page, dash_url: str,
                                        tmp_path: Path) -> None:
    with archive.open(dash_url) as handle:
        elites = {e["cell"]: e["evaluation_id"] for e in handle.campaign("quad").elites()}
    page.navigate(f"{base}/campaigns/quad")
    page.wait_for(DRAWN, timeout=60)
    assert page.evaluate("document.getElementById('elite-map').dataset.filledCells") == str(len(elites))
    drawn = page.evaluate(PAINTED_CELLS)
    assert drawn == {"painted": len(elites), "mismatches": 0, "cells": 100}, drawn
    assert page.evaluate("performance.getEntriesByName('atlas:map-drawn').length") == 1

    # hover: the inspector shows that cell's elite; click: it opens the evaluation
    spot = page.evaluate(FILLED_CELL)
    page.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": spot["x"], "y": spot["y"]})
    heading = page.wait_for("(document.querySelector('#inspector h3') || {}).textContent", timeout=10)
    cell = int(re.fullmatch(r"Elite of cell (\d+)", heading).group(1))  # type: ignore[union-attr]
    tip = page.wait_for("(t => t && !t.hidden && t.innerText)(document.querySelector('.map-tip'))", timeout=10)
    assert tip.startswith(f"cell {cell} evaluation {elites[cell]}\nscore ")  # objective, measures, params
    assert "\nma " in tip and "\nmb " in tip and "\na " in tip and "\nb " in tip and "proposer map-elites" in tip
    for kind in ("mousePressed", "mouseReleased"):
        page.call("Input.dispatchMouseEvent", {"type": kind, "x": spot["x"], "y": spot["y"], "button": "left",
                                               "clickCount": 1})
    href = page.wait_for("(document.querySelector('#inspector a.button') || {}).href", timeout=10)
    assert href.endswith(f"/campaigns/quad/evaluations/{elites[cell]}")
    assert page.evaluate("document.querySelector('#inspector h3').textContent") == f"Evaluation {elites[cell]}"

    page.wait_for("document.querySelectorAll('#scatter-plots .plot .scatterlayer').length === 2", timeout=30)
    page.wait_for("document.querySelector('#proposer-table tbody tr') !== null", timeout=30)
    save(page, tmp_path, "dashboard-campaign.png")
    assert browser.problems() == []
    only_local(browser, base)


def test_cvt_map_draws_every_elite(base: str, browser: Chromium, page: Page, dash_url: str) -> None:
    with archive.open(dash_url) as handle:
        count = handle.campaign("cvt").stats().elites
    page.navigate(f"{base}/campaigns/cvt")
    page.wait_for(DRAWN, timeout=60)
    assert page.evaluate("document.getElementById('elite-map').dataset.filledCells") == str(count)
    painted = page.evaluate("""(() => { const z = document.getElementById('elite-map').data[0].z;
        return new Set(z.flat().filter(v => v !== null)).size; })()""")
    assert painted == count  # each elite's objective colours its Voronoi cell
    assert browser.problems() == []


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[str, object, object]]:
    """A campaign whose scheduler is alive (holds the lease), its storage, store and record."""
    url = f"sqlite:///{tmp_path / 'running.db'}"
    store, record = synthetic_campaign(url, "running", 300, bins=(12, 12), status="running", seed=11)
    assert store.acquire_lease(record.id, "test:0:live", ttl_s=120) is None
    try:
        yield url, store, record
    finally:
        store.release_lease(record.id, "test:0:live")
        store.close()


def test_page_updates_itself_while_the_campaign_runs(running: tuple[str, object, object], browser: Chromium,
                                                     page: Page, tmp_path: Path) -> None:
    url, store, record = running
    for base in serve(url, poll_s=0.3):
        page.navigate(f"{base}/campaigns/running")
        page.wait_for(DRAWN, timeout=60)
        before = int(page.evaluate("document.getElementById('elite-map').dataset.filledCells"))
        assert page.evaluate("document.getElementById('camp-state').textContent") == "running"
        page.evaluate("window.sameDocument = true")
        add_results(store, record, 700, seed=12, scale=1.4)  # type: ignore[arg-type]
        with archive.open(url) as handle:
            after = handle.campaign("running").stats()
        assert after.elites > before
        page.wait_for(f"document.getElementById('elite-map').dataset.filledCells === '{after.elites}'", timeout=30)
        assert page.evaluate("window.sameDocument") is True  # redrawn in place, not reloaded
        assert int(page.evaluate(DRAWN)) >= 2
        page.wait_for(f"document.getElementById('progress-text').textContent.startsWith('{after.finished:,}')",
                      timeout=30)
        drawn = page.evaluate(PAINTED_CELLS)
        assert drawn["painted"] == after.elites and drawn["mismatches"] == 0
        save(page, tmp_path, "dashboard-live.png")
        assert browser.problems() == []


def test_other_pages_render(base: str, browser: Chromium, page: Page, tmp_path: Path) -> None:
    page.navigate(f"{base}/")
    page.wait_for("document.querySelectorAll('#campaign-table tbody tr').length === 6", timeout=30)
    save(page, tmp_path, "dashboard-index.png")

    page.navigate(f"{base}/compare?a=quad&b=grid")
    page.wait_for("[...document.querySelectorAll('.side-map')].every(m => m.dataset.draws)", timeout=60)
    assert page.evaluate("[...document.querySelectorAll('.side-name')].map(a => a.textContent)") == ["quad", "grid"]
    page.wait_for("document.querySelectorAll('#cmp-qd .scatterlayer .trace').length === 2", timeout=30)
    save(page, tmp_path, "dashboard-compare.png")

    page.navigate(f"{base}/campaigns/three")
    page.wait_for(DRAWN, timeout=60)
    assert page.evaluate("document.querySelectorAll('#map-controls select').length") == 2  # pick 2 of 3 measures

    page.navigate(f"{base}/campaigns/quad/evaluations/1")
    page.wait_for("document.getElementById('eval-title').textContent === 'Evaluation 1'", timeout=30)
    assert page.evaluate("document.querySelectorAll('#eval-params tr').length") == 2  # a and b

    page.navigate(f"{base}/docs")
    page.wait_for("document.querySelectorAll('.endpoint').length >= 10", timeout=30)
    assert browser.problems() == []

    page.navigate(f"{base}/campaigns/not-there")
    assert "No campaign named “not-there” in this storage." in page.evaluate("document.body.innerText")
    only_local(browser, base)
