"""A campaign's evaluations written and not finished, as the dashboard shows them
(``Atlas.unfinished`` in ``static/common.js``): ``in flight`` only while a run holds the
campaign (state ``running``); with none holding it they are ``pending``, waiting for
``atlas resume``, as ``atlas status`` says. Before, every page summed ``pending + running``
as "in flight", so a stopped campaign showed work in flight that nothing ran.

Two checks, neither needs a browser: the helper itself (run with Node.js where there is
one), and a scan of the pages that count the rows only through it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from dashboard.app import STATIC

PAGES = ("index.js", "campaign.js")


def _unfinished_source() -> str:
    source = (STATIC / "common.js").read_text(encoding="utf-8")
    match = re.search(r"^  function unfinished\(state, counts\) \{\n.*?^  \}\n", source, re.S | re.M)
    assert match, "common.js defines no unfinished(state, counts)"
    assert re.search(r"return \{[^}]*\bunfinished\b", source), "Atlas does not export unfinished"
    return match.group(0)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_unfinished_rows_are_in_flight_only_while_a_run_holds_the_campaign() -> None:
    cases = [("running", 3, 1), ("stopped", 4, 0), ("interrupted", 2, 3), ("finished", 0, 0), ("created", 1200, 0)]
    calls = ", ".join(f"unfinished({json.dumps(s)}, {{pending: {p}, running: {r}}})" for s, p, r in cases)
    script = f"{_unfinished_source()}\nconsole.log(JSON.stringify([{calls}]));"
    out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, timeout=60,
                                    check=True).stdout)
    assert [(o["n"], o["live"], o["label"], o["text"]) for o in out] == [
        (4, True, "in flight", "4 in flight"), (4, False, "pending", "4 pending"),
        (5, False, "pending", "5 pending"), (0, False, "pending", "0 pending"),
        (1200, False, "pending", "1,200 pending")]


@pytest.mark.parametrize("page", PAGES)
def test_the_pages_count_unfinished_rows_only_through_the_helper(page: str) -> None:
    source = (STATIC / page).read_text(encoding="utf-8")
    assert not re.search(r"counts\.pending\s*\+|counts\.running\s*\+", source), page
    assert re.search(r"Atlas\.unfinished\((c|s|summary)\.state, ", source), page
