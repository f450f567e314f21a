"""The dashboard shows the objective's and measures' units where it shows them as quantities,
as the figures do (``mean_entropy (nats)``, :func:`archive.units.with_unit`): the campaign
summary sends ``units`` (name -> unit, bare names as keys), and the pages build the elite
map's axis and colour-bar titles, the objective-against-measure axes, the best-objective
plot's title and the elite table's headers from them (``Atlas.withUnit``). A campaign without
units shows the bare names. Before, the API sent no units and every title was the bare name.

The elite map is drawn with Node.js where there is one (plotly stubbed: the layout it is
given is checked); the pages' other axis titles are checked by a scan of their scripts.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
from fastapi.testclient import TestClient

from dashboard import schemas
from dashboard.app import STATIC
from tests.dashboard.synthetic import synthetic_spec

UNITS = {"objective": "fraction", "m0": "nats"}  # m1 has none


@pytest.fixture(scope="module")
def unit_client(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A dashboard over two empty campaigns: ``labelled`` (units on the objective and m0) and ``bare``."""
    from archive.store import Store
    from dashboard import create_app
    from search.campaigns import open_campaign
    from search.spec import parse_spec

    url = f"sqlite:///{tmp_path_factory.mktemp('units') / 'atlas.db'}"
    labelled = synthetic_spec("labelled", 10)
    labelled["objective"]["unit"] = UNITS["objective"]
    labelled["measures"][0]["unit"] = UNITS["m0"]
    store = Store(url)
    try:
        open_campaign(store, parse_spec(labelled))
        open_campaign(store, parse_spec(synthetic_spec("bare", 10)))
    finally:
        store.close()
    with TestClient(create_app(url)) as client:
        yield client


def test_the_summary_sends_the_units_by_bare_name(unit_client: TestClient) -> None:
    labelled = unit_client.get("/api/campaigns/labelled").json()
    schemas.CampaignSummary.model_validate(labelled)
    assert labelled["units"] == UNITS
    assert labelled["objective"]["name"] == "objective"  # names stay bare: the units are a field of their own
    assert [a["name"] for a in labelled["archive"]["axes"]] == ["m0", "m1"]
    bare = unit_client.get("/api/campaigns/bare").json()
    assert bare["units"] == {}
    documented = unit_client.get("/api/openapi.json").json()["components"]["schemas"]["CampaignSummary"]
    assert "units" in documented["required"]


# -- the elite map, drawn with Node.js ------------------------------------------------------
STUBS = """
const drawn = [];
globalThis.document = {getElementById: () => ({textContent: "{}"}), body: {}, addEventListener: () => {}};
globalThis.getComputedStyle = () => ({fontFamily: "sans-serif"});
globalThis.window = globalThis;
globalThis.Plotly = {react: (node, traces, layout) => { drawn.push({traces, layout}); return Promise.resolve(); },
  purge: () => {}};
const node = () => ({dataset: {}, on: () => {}, addEventListener: () => {}});
"""

DRIVER = """
const elites = {count: 1, cell: [0], evaluation_id: [1], objective: [0.5], measures: {m0: [0.1], m1: [0.2]},
  measure_names: ["m0", "m1"], param_names: [], params: {}, proposer: ["random"], seq: [1], through: 1};
const axes = [{name: "m0", low: 0, high: 1, bins: 2}, {name: "m1", low: 0, high: 1, bins: 2}];
const layouts = {
  grid: {kind: "grid", cells: 4, axes, centroids: null, voronoi: null},
  voronoi: {kind: "cvt", cells: 1, axes, centroids: [[0.5, 0.5]], voronoi: {x: [0.5], y: [0.5], cell: [[0]]}},
  line: {kind: "cvt", cells: 1, axes: axes.slice(0, 1), centroids: [[0.5]], voronoi: null},
};
(async () => {
  const out = {};
  for (const [kind, layout] of Object.entries(layouts)) {
    const map = new EliteMap(node());
    map.setData({layout, elites, objective: "objective", direction: "maximize", campaign: "c", units: UNITS});
    await map.draw();
    const {traces, layout: shown} = drawn.pop();
    const bar = traces.map((t) => (t.colorbar || (t.marker && t.marker.colorbar))).find(Boolean);
    out[kind] = {x: shown.xaxis.title.text, y: shown.yaxis.title ? shown.yaxis.title.text : null,
      colorbar: bar.title.text};
  }
  console.log(JSON.stringify(out));
})();
"""


def draw_maps(units: dict[str, str] | None) -> dict[str, dict[str, str]]:
    """The axis and colour-bar titles EliteMap gives plotly for a 2-D grid, a 2-D CVT and a
    1-D CVT map, with the summary's ``units`` (``None``: a summary without the field)."""
    sources = [(STATIC / f).read_text(encoding="utf-8") for f in ("common.js", "elitemap.js")]
    script = "\n".join([STUBS, *sources, f"const UNITS = {json.dumps(units)};", DRIVER])
    run = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_elite_maps_axes_and_colour_bar_carry_the_units() -> None:
    titles = draw_maps(UNITS)
    bar = "objective (fraction)<br>(higher is better)"
    assert titles["grid"] == {"x": "m0 (nats)", "y": "m1", "colorbar": bar}
    assert titles["voronoi"] == {"x": "m0 (nats)", "y": "m1", "colorbar": bar}
    assert titles["line"] == {"x": "m0 (nats)", "y": "objective (fraction)", "colorbar": bar}


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
@pytest.mark.parametrize("units", [{}, None, {"constructor": "x"}])
def test_a_campaign_without_units_shows_the_bare_names(units: dict[str, str] | None) -> None:
    """No units (or an older summary without the field): the names alone, never ``undefined``
    or an inherited property's text."""
    titles = draw_maps(units)
    assert titles["grid"] == {"x": "m0", "y": "m1", "colorbar": "objective<br>(higher is better)"}
    assert titles["line"]["y"] == "objective"


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_a_unit_reaches_plotly_as_text() -> None:
    """A unit is user text: plotly gets its entities (``Atlas.plotText``), nothing to render or fill in."""
    titles = draw_maps({"m0": "<b>%{y}</b>"})
    assert titles["grid"]["x"] == "m0 (&lt;b&gt;&#37;{y}&lt;/b&gt;)"


# -- the pages' other titles, by a scan of their scripts -------------------------------------
AXIS_TITLE = re.compile(r"(?:xaxis|yaxis|colorbar): (?:twoD \? )?\{title: \{text: ")


def _title_parts(expr: str) -> list[str]:
    """The non-literal parts of a title's expression: its ``${…}`` or the expression itself."""
    if expr.startswith('"'):
        return []
    if expr.startswith("`"):
        return re.findall(r"\$\{([^{}]*(?:\([^()]*\)[^{}]*)*)\}", expr)
    return [expr]


def _with_unit(part: str, source: str) -> bool:
    """Whether ``part`` is a name built with its unit: ``Atlas.plotText(…Atlas.withUnit(…)…)``
    or a constant made so (directly or through a helper that calls ``Atlas.withUnit``)."""
    made = re.search(rf"const {re.escape(part)} = (Atlas\.plotText\([^;]*);", source)
    text = made.group(1) if made else part
    helpers = re.findall(r"const (\w+) = \(\w+\) => Atlas\.withUnit\(", source)
    return text.startswith("Atlas.plotText(") and bool(re.search(
        r"Atlas\.withUnit\(" + "".join(f"|\\b{h}\\(" for h in helpers), text))


def _expression(text: str, start: int) -> str:
    quote = text[start]
    if quote in "\"`":
        return text[start:text.index(quote, start + 1) + 1]
    depth, i = 0, start
    while i < len(text) and not (depth == 0 and text[i] in ",;\n}"):
        depth += text[i] in "([{"
        depth -= text[i] in ")]"
        i += 1
    return text[start:i].strip()


@pytest.mark.parametrize("page", ["campaign.js", "elitemap.js", "compare.js"])
def test_every_axis_and_colour_bar_title_of_a_name_carries_its_unit(page: str) -> None:
    """Axis and colour-bar titles are literals (``evaluations finished``) or names with their units."""
    source = (STATIC / page).read_text(encoding="utf-8")
    parts = [p for m in AXIS_TITLE.finditer(source) for p in _title_parts(_expression(source, m.end()))]
    assert parts or page == "compare.js"  # compare.js's axes are all "evaluations finished"
    assert not [p for p in parts if p not in ("direction", "better") and not _with_unit(p, source)], page


def test_the_best_objective_plots_and_the_elite_table_carry_the_unit() -> None:
    campaign = (STATIC / "campaign.js").read_text(encoding="utf-8")
    best = re.search(r'axes\(`best \$\{(\w+)\}`\)', campaign)
    assert best and _with_unit(best.group(1), campaign)
    assert re.search(r"\[summary\.objective\.name, \.\.\.e\.measure_names\]\.map\(\(q\) => "
                     r"Atlas\.withUnit\(q, summary\.units\)\)", campaign)
    compare = (STATIC / "compare.js").read_text(encoding="utf-8")
    best = re.search(r'`best \$\{(\w+)\}`', compare)
    assert best and _with_unit(best.group(1), compare)


def test_the_units_helper_is_shared() -> None:
    """The pages name a quantity only through ``Atlas.withUnit`` (common.js), not a rule of their own."""
    common = (STATIC / "common.js").read_text(encoding="utf-8")
    assert re.search(r"^  function withUnit\(name, units\) \{", common, re.M)
    for page in ("campaign.js", "elitemap.js", "compare.js"):
        assert not re.search(r"units\[", (STATIC / page).read_text(encoding="utf-8")), page
