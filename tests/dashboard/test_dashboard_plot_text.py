"""User text reaches plotly only through ``Atlas.plotText`` (``static/common.js``).

Plotly renders a few HTML tags (``<b>``, ``<a href>``, ``<span style>``) in titles, axis
titles, legends, tick labels and hover labels, and fills in ``%{…}`` in hover templates: a
measure named ``<b>m</b>%{y}`` had shown bold, with a number in its name. ``plotText`` turns
``& < > "`` into entities and ``%`` into ``&#37;``; plotly decodes entities when it draws.

Two checks, neither needs a browser: the helper itself (run with Node.js where there is one,
against the template pattern of the plotly.js the app serves), and a scan of the pages'
scripts that every plotly text slot (``title: {text: …}``, ``hovertemplate``, a trace's
``name``) holds literals, ``plotText(…)`` or values made by it. What plotly then draws is
not checked here (that needs a browser: the end-to-end test).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import pytest

from dashboard.app import STATIC, plotly_js_path

PAGES = ("campaign.js", "elitemap.js", "compare.js")
NASTY = ["<b>m</b>%{y}", "<a href='javascript:alert(1)'>x</a>", '<span style="font-size:80px">big</span>',
         "a & b", "100% %{customdata|.2f}", "%{", "plain m0", "&lt;already&gt;"]
#: Interpolations that are never user text: fixed labels, numbers, directions.
SAFE = {"label", "direction", "better", "p.exploration_run_length", "null"}
SLOT = re.compile(r"title: \{text: |hovertemplate: |(?<=[{,] )name: ")


def _plot_text_source() -> str:
    source = (STATIC / "common.js").read_text(encoding="utf-8")
    match = re.search(r"^  function plotText\(value\) \{\n.*?^  \}\n", source, re.S | re.M)
    assert match, "common.js defines no plotText(value)"
    return match.group(0)


def _template_pattern() -> re.Pattern[str]:
    """The pattern plotly.js fills hover templates by (from the bundle the app serves)."""
    found = re.search(r"TEMPLATE_STRING_REGEX=/(.+?)/g", plotly_js_path().read_text(encoding="utf-8"))
    assert found, "plotly.js no longer names its TEMPLATE_STRING_REGEX"
    return re.compile(found.group(1))


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_plot_text_leaves_plotly_nothing_to_render_or_fill_in() -> None:
    script = f"{_plot_text_source()}\nconsole.log(JSON.stringify({json.dumps(NASTY)}.map(plotText)));"
    out = subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    template = _template_pattern()
    for given, shown in zip(NASTY, json.loads(out), strict=True):
        assert not re.search(r"[<>\"]", shown), shown  # no tag: entities only
        assert not template.search(shown), shown  # no %{…} for a hover template to fill in
        assert html.unescape(shown) == given  # what plotly draws once it decodes the entities


def _expression(text: str, start: int) -> str:
    """The JavaScript expression at ``start``: a string or template literal, or up to the
    first ``,`` or closing bracket at its own depth."""
    quote = text[start]
    if quote in "\"`":
        return text[start:text.index(quote, start + 1) + 1]
    depth, i = 0, start
    while i < len(text):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif c in ",;\n" and depth == 0:
            break
        i += 1
    return text[start:i].strip()


def _made_by_plot_text(name: str, source: str) -> bool:
    """Whether ``name`` (``objectiveText``, ``labels[i]``) holds plotText's output."""
    bare = name.split("[")[0]
    return bool(re.search(rf"const {re.escape(bare)} = (Atlas\.plotText\(|\w+\.map\(Atlas\.plotText\))", source))


def _unsafe(expr: str, source: str) -> list[str]:
    """The parts of ``expr`` that could be user text not passed through plotText."""
    if expr.startswith('"'):
        return []
    branches = re.fullmatch(r"[\w.]+ \? (.+?) : (.+)", expr)  # flag ? a : b
    if branches:
        return _unsafe(branches.group(1), source) + _unsafe(branches.group(2), source)
    parts = re.findall(r"\$\{([^{}]*(?:\([^()]*\)[^{}]*)*)\}", expr) if expr.startswith("`") else [expr]
    return [p for p in parts if not (p.startswith("Atlas.plotText(") or p in SAFE or p == "title"
                                     or _made_by_plot_text(p, source))]


@pytest.mark.parametrize("page", PAGES)
def test_every_plotly_text_slot_goes_through_plot_text(page: str) -> None:
    source = (STATIC / page).read_text(encoding="utf-8")
    slots = [(m.group(0).strip(), _expression(source, m.end())) for m in SLOT.finditer(source)]
    assert slots
    unsafe = {(slot, expr): bad for slot, expr in slots if (bad := _unsafe(expr, source))}
    # helpers that take a title (`axes(title)`, `layout(title)`): their callers' first arguments
    for helper in re.findall(r"const (\w+) = \(title\b", source):
        for call in re.finditer(rf"\b{helper}\(", source):
            expr = _expression(source, call.end())
            if expr != "title" and (bad := _unsafe(expr, source)):
                unsafe[(helper, expr)] = bad
    assert not unsafe, f"user text into plotly without Atlas.plotText in {page}: {unsafe}"
    if page == "campaign.js":  # category axes show the proposers' names as tick labels
        assert "x: names" not in source and re.search(r"const labels = names\.map\(Atlas\.plotText\)", source)
