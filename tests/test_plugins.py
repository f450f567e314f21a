"""Plug-ins through entry points: a package that registers a proposer under
``entropy_atlas.proposers`` makes ``search.algorithm: <its name>`` valid and runnable, the
spec's check and the registry agree on the names, and the ``python`` evaluator kind's
entry point names the class that implements it.

The plug-in here is installed the real way: a ``*.dist-info`` folder with an
``entry_points.txt``, on ``sys.path``, read by :mod:`importlib.metadata`."""

from __future__ import annotations

import importlib.util
import re
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from archive.store import Store
from entropy_atlas.errors import AtlasError
from search import api, proposers
from search.proposers import ProposerNotAvailable
from search.spec import SpecError, parse_spec
from tests.conftest import quadratic_spec
from tests.support.proposers import GridWalkProposer

PLUGIN = "grid-walk"


def install_plugin(site: Path, monkeypatch: pytest.MonkeyPatch, target: str) -> None:
    """Install a distribution whose only content is the entry point ``grid-walk = target``."""
    info = site / "atlas_grid_walk-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: atlas-grid-walk\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{proposers.GROUP}]\n{PLUGIN} = {target}\n")
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:GridWalkProposer")


def test_without_the_plugin_its_name_is_refused_with_what_is_available() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec(quadratic_spec(search__algorithm=PLUGIN))
    (line,) = [p for p in err.value.problems if p.startswith("search.algorithm:")]
    assert line == f"search.algorithm: unknown algorithm {PLUGIN!r}; one of {', '.join(proposers.available())}"
    assert "map-elites" in line and "random" in line and PLUGIN not in proposers.available()


@pytest.mark.usefixtures("plugin")
def test_an_installed_plugin_is_available_and_the_spec_accepts_it() -> None:
    assert PLUGIN in [ep.name for ep in entry_points(group=proposers.GROUP)]
    assert PLUGIN in proposers.available()
    assert proposers.proposer_class(PLUGIN) is GridWalkProposer
    assert parse_spec(quadratic_spec(search__algorithm=PLUGIN)).search.algorithm == PLUGIN


@pytest.mark.usefixtures("plugin")
def test_the_refusal_of_an_unknown_name_lists_the_plugin_too() -> None:
    with pytest.raises(SpecError, match=rf"unknown algorithm 'hill-climb'; one of .*{PLUGIN}"):
        parse_spec(quadratic_spec(search__algorithm="hill-climb"))


@pytest.mark.usefixtures("plugin")
def test_a_campaign_runs_with_the_plugin_proposer(sqlite_url: str) -> None:
    spec = quadratic_spec(search__algorithm=PLUGIN, search__options={"steps": 4}, search__budget=8,
                          search__batch_size=4, search__max_in_flight=4)
    stats = api.run(spec, storage=sqlite_url, executor="inline")
    assert stats.finished == 8
    store = Store(sqlite_url)
    try:
        rows = store.evaluations(store.require_campaign("quad").id)
    finally:
        store.close()
    assert {r["proposer"] for r in rows} == {"grid-walk"}
    assert [r["params"]["a"] for r in rows[:4]] == [0.125, 0.375, 0.625, 0.875]
    assert all(r["proposal"] == {"batch_size": 4, "dim": 2} for r in rows)


@pytest.mark.usefixtures("plugin")
def test_a_plugin_option_error_is_refused_before_anything_is_written(sqlite_url: str) -> None:
    spec = quadratic_spec(search__algorithm=PLUGIN, search__options={"steps": 0})
    with pytest.raises(AtlasError, match=r"search\.options\.steps: must be an integer > 0"):
        api.run(spec, storage=sqlite_url, executor="inline")
    store = Store(sqlite_url)
    try:
        assert store.campaign("quad") is None
    finally:
        store.close()


def test_a_plugin_that_cannot_be_loaded_is_named_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    install_plugin(tmp_path / "site", monkeypatch, "atlas_no_such_module:Proposer")
    with pytest.raises(ProposerNotAvailable, match=r"'grid-walk' \(atlas_no_such_module:Proposer\) cannot be "
                                                   r"loaded: ModuleNotFoundError"):
        api.run(quadratic_spec(search__algorithm=PLUGIN), storage=sqlite_url, executor="inline")
    assert issubclass(ProposerNotAvailable, AtlasError)
    store = Store(sqlite_url)
    try:
        assert store.campaign("quad") is None
    finally:
        store.close()


def test_every_builtin_name_is_accepted_by_the_spec() -> None:
    for name in proposers.BUILTIN:
        assert parse_spec(quadratic_spec(search__algorithm=name)).search.algorithm == name


def test_the_python_evaluator_entry_point_names_the_class_that_implements_it() -> None:
    from workers import registry

    (ep,) = [ep for ep in entry_points(group=registry.GROUP) if ep.name == "python"]
    assert ep.value == "workers.registry:FunctionEvaluator"
    assert registry.resolve("python") is registry.FunctionEvaluator
    assert importlib.util.find_spec("workers.evaluators.python_target") is None


def _done_and_pending(url: str) -> tuple[list[int], int]:
    store = Store(url)
    try:
        rows = store.evaluations(store.require_campaign("quad").id)
    finally:
        store.close()
    return sorted(r["seq"] for r in rows if r["status"] == "done"), sum(r["status"] == "pending" for r in rows)


def _run_until_finished(spec: dict, url: str, stops: list[str]) -> None:
    """Run ``spec`` and resume it after each :class:`ProposerFailed`, its lines in ``stops``."""
    from search.scheduler import ProposerFailed

    for _ in range(20):
        try:
            api.run(spec, storage=url, executor="inline")
            return
        except ProposerFailed as exc:
            stops.append(str(exc))
    raise AssertionError("the campaign did not finish in 20 runs")


def test_a_proposer_that_raises_in_ask_stops_the_run_with_the_turn_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """The results settled in the turn whose ask raised, and the rows asked before it in
    that turn, are written: a resume dispatches those rows and loses no evaluation."""
    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:FlakyProposer")
    spec = quadratic_spec(search__algorithm=PLUGIN, search__options={"fail_ask": 3}, search__budget=24,
                          search__batch_size=4, search__max_in_flight=8)
    stops: list[str] = []
    with pytest.raises(AtlasError) as first:
        api.run(spec, storage=sqlite_url, executor="inline")
    assert re.sub(r":\d+,", ":N,", str(first.value)) == (
        "campaign 'quad': proposer flaky raised in ask: ZeroDivisionError: the step size came out as 0/0 "
        "(at proposers.py:N, in ask); this turn's 8 results and 0 new rows are written; "
        "fix the proposer (or its options) and `api.resume('quad', …)`")
    assert _done_and_pending(sqlite_url) == (list(range(8)), 0)  # the first turn's two batches, both settled
    _run_until_finished(spec, sqlite_url, stops)
    assert _done_and_pending(sqlite_url) == (list(range(24)), 0)  # each evaluated once, none lost
    assert stops and all("raised in ask" in line for line in stops)


def test_a_proposer_that_raises_in_tell_stops_the_run_and_its_results_run_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """A tell that raised may have left part of the results in the proposer's state: none of
    them is written, and a resume runs them again and tells them again."""
    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:FlakyProposer")
    spec = quadratic_spec(search__algorithm=PLUGIN, search__options={"fail_tell": 2}, search__budget=16,
                          search__batch_size=4, search__max_in_flight=4)
    stops: list[str] = []
    _run_until_finished(spec, sqlite_url, stops)
    assert re.sub(r":\d+,", ":N,", stops[0]) == ("campaign 'quad': proposer flaky raised in tell: KeyError: 'emitter' "
                        "(at proposers.py:N, in tell); the 4 results it was told are not written and run "
                        "again on resume; fix the proposer (or its options) and `api.resume('quad', …)`")
    assert _done_and_pending(sqlite_url) == (list(range(16)), 0)


def test_the_command_line_shows_a_proposers_error_as_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml
    from typer.testing import CliRunner

    from search.cli import app

    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:FlakyProposer")
    spec = tmp_path / "flaky.yaml"
    spec.write_text(yaml.safe_dump(quadratic_spec(search__algorithm=PLUGIN, search__options={"fail_ask": 2})))
    result = CliRunner().invoke(app, ["run", str(spec), "--storage", f"sqlite:///{tmp_path / 'a.db'}",
                                      "--executor", "inline"])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: campaign 'quad': proposer flaky raised in ask: ZeroDivisionError")


def test_a_ctrl_c_that_comes_back_from_compiled_code_is_a_stop_not_a_proposer_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str) -> None:
    """numba hands a Ctrl-C inside cma-me's ask back as a ``SystemError``: the run had ended
    as "proposer cma-me raised in ask … fix the proposer", with the half-asked state saved."""
    from search.scheduler import ProposerFailed

    install_plugin(tmp_path / "site", monkeypatch, "tests.support.proposers:InterruptedProposer")
    spec = quadratic_spec(search__algorithm=PLUGIN, search__budget=12, search__batch_size=4, search__max_in_flight=4)
    with pytest.raises(KeyboardInterrupt):
        try:
            api.run(spec, storage=sqlite_url, executor="inline")
        except ProposerFailed as exc:
            raise AssertionError(f"a stop reported as a failure: {exc}") from exc
    store = Store(sqlite_url)
    try:
        assert store.require_campaign("quad").status == "stopped"
    finally:
        store.close()
