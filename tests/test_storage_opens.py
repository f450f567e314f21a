"""How often, and through what, the run and resume paths open a storage before they write.

- :func:`search.api._open_readonly` is the one read-only open that takes an archive at an
  older schema revision as present (None): ``run``'s look ahead (``_StorageAhead.open``),
  :func:`~search.api.require_stored` and :func:`~search.api.completion` go through it, each
  once, and each still treats such an archive as it did (held / left to the writer / brought up).
- ``atlas resume NAME --budget N`` opened the storage twice before the run: once for
  ``is_complete``, then again (``archive.open``) to read the stored budget and the count
  created for the "lowers the budget" warning. :func:`~search.api.completion` returns both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from archive.errors import CampaignNotFound, StorageError
from archive.store import Store
from search import api
from search.cli import app
from tests.conftest import quadratic_spec


def _behind(url: str, revision: str) -> None:
    """The archive at ``url`` taken down to ``revision``, as an older Entropy Atlas left it."""
    from sqlalchemy import create_engine

    from tests.support.migrations import migrate_to

    engine = create_engine(url)
    migrate_to(engine, revision, down=True)
    engine.dispose()


@pytest.fixture
def opens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """Each :class:`Store` constructed from now on, as (url, readonly); and, as ("resume", …),
    the moment :func:`search.api.resume` is entered."""
    seen: list[tuple[str, bool]] = []
    init, resume = Store.__init__, api.resume

    def counted(self: Store, url: str, *args: Any, **kwargs: Any) -> None:  # Store(url, retry_s, readonly)
        seen.append((url, bool(kwargs.get("readonly", args[1] if len(args) > 1 else False))))
        init(self, url, *args, **kwargs)

    def entered(*args: Any, **kwargs: Any) -> Any:
        seen.append(("resume", False))
        return resume(*args, **kwargs)

    monkeypatch.setattr(Store, "__init__", counted)
    monkeypatch.setattr(api, "resume", entered)
    return seen


@pytest.fixture
def helper_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The urls :func:`search.api._open_readonly` is called with, from now on."""
    calls: list[str] = []
    helper = api._open_readonly

    def counted(url: str) -> Store | None:
        calls.append(url)
        return helper(url)

    monkeypatch.setattr(api, "_open_readonly", counted)
    return calls


def test_the_three_read_only_looks_open_once_each_through_one_helper(sqlite_url: str, helper_calls: list[str],
                                                                     opens: list[tuple[str, bool]]) -> None:
    api.run(quadratic_spec(search__budget=6), storage=sqlite_url, executor="inline")
    helper_calls.clear()
    opens.clear()
    with api._StorageAhead.open(sqlite_url) as ahead:
        assert ahead.store is not None and not ahead.behind and ahead.error is None
        assert ahead.holds(api.as_spec(quadratic_spec(search__budget=6)), "c.yaml")
    api.require_stored(sqlite_url, "quad")
    with pytest.raises(CampaignNotFound, match="'nope'"):
        api.require_stored(sqlite_url, "nope")
    done = api.completion(sqlite_url, "quad")
    assert (done.complete, done.finished, done.budget) == (True, 6, 6)
    assert helper_calls == [sqlite_url] * 4
    assert opens == [(sqlite_url, True)] * 4  # one open each, read-only


def test_an_older_archive_is_still_taken_as_present_by_each(tmp_path: Path, helper_calls: list[str]) -> None:
    """Held (run's look ahead), left to the open for writing (require_stored: even a name it
    does not hold), brought up (completion): as before the helper."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    api.run(quadratic_spec(search__budget=6), storage=url, executor="inline")
    _behind(url, "0003")
    with api._StorageAhead.open(url) as ahead:
        assert ahead.store is None and ahead.behind and ahead.error is None
        assert ahead.holds(api.as_spec(quadratic_spec(search__budget=6)), "c.yaml")
    api.require_stored(url, "nope")  # nothing raised: the writer's open brings it up and looks
    with pytest.raises(StorageError, match="schema revision 0003"):
        Store(url, readonly=True)  # neither look wrote
    done = api.completion(url, "quad", 9)
    assert (done.complete, done.finished, done.budget, done.stored_budget, done.created) == (False, 6, 9, 6, 6)
    Store(url, readonly=True).close()  # at head now
    assert helper_calls == [url] * 3


def test_completion_gives_the_stored_budget_and_the_count_created(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=6), storage=sqlite_url, executor="inline")
    assert api.completion(sqlite_url, "quad") == api.Completion(complete=True, finished=6, budget=6,
                                                                stored_budget=6, created=6)
    assert api.completion(sqlite_url, "quad", 9) == api.Completion(complete=False, finished=6, budget=9,
                                                                   stored_budget=6, created=6)
    below = api.completion(sqlite_url, "quad", 4)  # below what it has: not finished, the run refuses it
    assert (below.complete, below.budget, below.stored_budget, below.created) == (False, 4, 6, 6)
    more = api.completion(sqlite_url, "quad", 9)
    assert (more.complete, more.finished, more.budget) == (False, 6, 9)


def test_resume_with_a_budget_opens_the_storage_once_before_the_run(tmp_path: Path,
                                                                   opens: list[tuple[str, bool]]) -> None:
    """Was two read-only opens (``is_complete``, then ``archive.open`` for the lowered-budget
    warning) before :func:`search.api.resume` was entered."""
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=6), storage=url, executor="inline")
    opens.clear()
    result = CliRunner().invoke(app, ["resume", "quad", "--budget", "9", "--executor", "inline", "--storage", url,
                                      "--map", str(tmp_path / "m.png")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # a raise says nothing
    assert opens.index(("resume", False)) == 1 and opens[0] == (url, True), opens
    done = api.completion(url, "quad")
    assert (done.complete, done.finished, done.budget) == (True, 9, 9)
