"""A campaign name that is not there: one line that suggests the close names first and lists
at most ten of the storage's campaigns (:func:`archive.store.known_campaigns_text`)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from archive.errors import CampaignNotFound
from archive.store import Store
from search.cli import app

LISTED = 10  # archive.store.CAMPAIGNS_LISTED
NAMES = ["quickstart", "walk-bo", "walk-me", "walk-rand", "walk-flaky", "walk-broken", "walk-slow", "walk-slow2",
         "walk-killed", "walk-me-off", "walk-returns-float", "walk-ray", "walk-cvt", "walk-min", "walk-bo-int",
         "walk-class", "walk-class2", "walk-clash"]


def _store(url: str, names: list[str]) -> Store:
    store = Store(url)
    for name in names:
        store.create_campaign(name, {}, name, {})
    return store


def test_a_misspelt_name_is_suggested_and_the_list_is_capped(sqlite_url: str) -> None:
    store = _store(sqlite_url, NAMES)
    try:
        with pytest.raises(CampaignNotFound) as caught:
            store.require_campaign("walk-b0")
    finally:
        store.close()
    message = str(caught.value)
    assert message.startswith(f"no campaign named 'walk-b0' in {sqlite_url}: did you mean walk-bo? (campaigns: "
                              f"walk-bo, walk-clash, walk-class2, ")  # the close name, then the newest
    assert message.endswith(f" … and {len(NAMES) - LISTED} more: `atlas status` lists them)")
    assert "\n" not in message
    listed = message.split("(campaigns: ")[1].split(" … ")[0].split(", ")
    assert len(listed) == LISTED and "quickstart" not in listed


def test_atlas_status_of_a_misspelt_name_is_one_error_line(sqlite_url: str) -> None:
    _store(sqlite_url, NAMES).close()
    done = CliRunner().invoke(app, ["status", "walk-b0", "--storage", sqlite_url])
    assert done.exit_code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean walk-bo?" in lines[0] and "and 8 more" in lines[0], lines
    assert "quickstart" not in lines[0]


def test_a_few_campaigns_are_all_listed_oldest_first() -> None:
    from archive.store import known_campaigns_text

    assert known_campaigns_text("walk-b0", ["walk-bo", "walk-me"]) == (
        ": did you mean walk-bo? (campaigns: walk-bo, walk-me)")
    assert known_campaigns_text("zzz", ["walk-bo", "walk-me"]) == " (campaigns: walk-bo, walk-me)"
    assert known_campaigns_text("zzz", []) == " (campaigns: none)"
    several = known_campaigns_text("walk-clas", NAMES)
    assert several.startswith(": did you mean walk-class or walk-clash or walk-class2? (campaigns: walk-class, "
                              "walk-clash, walk-class2, walk-bo-int, ")


def test_nothing_close_lists_the_newest() -> None:
    from archive.store import known_campaigns_text

    text = known_campaigns_text("zzz", [f"c{i:02d}" for i in range(30)])
    assert text == (" (campaigns: c29, c28, c27, c26, c25, c24, c23, c22, c21, c20 … and 20 more: "
                    "`atlas status` lists them)")
