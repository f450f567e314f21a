"""What the registry builds, and what it refuses, each with one line before anything is written:

- a class named by ``search.algorithm`` (a plug-in's entry point, a built-in line, a
  registration) that is not a ``Proposer`` subclass: ``ProposerNotAvailable`` (it had
  created the campaign, then raised ``AttributeError: … has no attribute 'name'``; the
  command line printed a traceback);
- a constructor that raises anything but an ``OptionError``: ``ProposerFailed … raised in
  __init__`` (it had escaped raw: ``KeyError: 'needed'``, a traceback, exit 1);
- :func:`search.proposers.register`, a script's way to run its own proposer;
- a proposer stuck before its first evaluation is not told to lower the budget to 0;
- a checkpoint field that is not JSON is named by its path, not by the JSON encoder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from archive.store import Store
from search import api, proposers
from search.proposers import ProposerNotAvailable
from search.proposers.base import Observation, Proposal, Proposer, ProposerContext
from search.proposers.checkpoint import Checkpoint, dumps
from search.proposers.random_search import RandomProposer
from search.scheduler import ProposerFailed, ProposerStuck
from search.spec import SpecError, parse_spec
from tests.conftest import quadratic_spec
from tests.support.proposers import GridWalkProposer
from tests.test_plugins import PLUGIN, install_plugin


class NotAProposer:
    """Has ``ask`` and ``tell``, but derives from nothing."""

    def __init__(self, ctx: ProposerContext) -> None:
        self.ctx = ctx

    def ask(self, n: int) -> list[Proposal]:
        return [Proposal(x=np.full(self.ctx.space.dim, 0.5)) for _ in range(n)]

    def tell(self, observations: list[Observation]) -> None:
        pass


class InitBugProposer(GridWalkProposer):
    """Its constructor reads an option that is not there: a plug-in's bug, not an option refused."""

    name = "init-bug"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.needed = ctx.options["needed"]


class NoTellProposer(Proposer):
    """Leaves ``tell`` abstract."""

    name = "no-tell"

    def ask(self, n: int) -> list[Proposal]:
        return self.uniform(n)


class AsksNothingProposer(GridWalkProposer):
    name = "asks-nothing"

    def ask(self, n: int) -> list[Proposal]:
        return []


class NumpyFieldProposer(GridWalkProposer):
    """Saves its count of results as NumPy's ``int64``, which JSON cannot hold."""

    name = "numpy-field"

    def __init__(self, ctx: ProposerContext) -> None:
        super().__init__(ctx)
        self.told = np.int64(0)

    def to_checkpoint(self) -> Checkpoint:
        base = super().to_checkpoint()
        return Checkpoint(fields={**base.fields, "told": self.told})


@pytest.fixture(autouse=True)
def _no_registrations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts, and leaves, with nothing registered."""
    if hasattr(proposers, "_REGISTERED"):
        monkeypatch.setattr(proposers, "_REGISTERED", {})


def _small(algorithm: str, **search: Any) -> dict[str, Any]:
    return quadratic_spec(search__algorithm=algorithm, search__budget=8, search__batch_size=4,
                          search__max_in_flight=4, **{f"search__{k}": v for k, v in search.items()})


def _cli(spec: dict[str, Any], tmp_path: Path) -> tuple[int, str]:
    import yaml
    from typer.testing import CliRunner

    from search.cli import app

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(app, ["run", str(path), "--storage", f"sqlite:///{tmp_path / 'cli.db'}",
                                      "--executor", "inline"])
    return result.exit_code, result.output


# -- a class that is not a Proposer subclass -----------------------------------------------
NOT_A_PROPOSER = ("search.algorithm: the proposer 'grid-walk' (tests.test_proposer_registry:NotAProposer) is not a "
                  "Proposer subclass (search.proposers.base.Proposer): derive it from that class and implement "
                  "ask and tell (docs/proposers.md)")


def test_a_plugin_that_is_not_a_proposer_subclass_is_refused_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site", monkeypatch, "tests.test_proposer_registry:NotAProposer")
    db = tmp_path / "a.db"
    with pytest.raises(ProposerNotAvailable) as err:
        api.run(_small(PLUGIN), storage=f"sqlite:///{db}", executor="inline")
    assert str(err.value) == NOT_A_PROPOSER
    assert not db.exists()  # no campaign row left behind (it was `created` with 0 evaluations)


def test_the_command_line_refuses_it_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site", monkeypatch, "tests.test_proposer_registry:NotAProposer")
    code, output = _cli(_small(PLUGIN), tmp_path)
    assert code == 2, output
    assert "Traceback" not in output
    assert f"error: {NOT_A_PROPOSER}" in output.splitlines()
    assert not (tmp_path / "cli.db").exists()


def test_a_builtin_line_naming_a_class_that_is_not_a_proposer_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(proposers.BUILTIN, "odd", "tests.test_proposer_registry:NotAProposer")
    with pytest.raises(ProposerNotAvailable, match=r"'odd' \(tests.test_proposer_registry:NotAProposer\) is not a "
                                                   r"Proposer subclass"):
        proposers.proposer_class("odd")


# -- a constructor that raises -------------------------------------------------------------
def test_a_constructor_that_raises_is_one_line_naming_the_proposer_before_anything_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site", monkeypatch, "tests.test_proposer_registry:InitBugProposer")
    db = tmp_path / "a.db"
    with pytest.raises(ProposerFailed) as err:
        api.run(_small(PLUGIN), storage=f"sqlite:///{db}", executor="inline")
    assert re.sub(r":\d+,", ":N,", str(err.value)) == (
        "campaign 'quad': proposer grid-walk raised in __init__: KeyError: 'needed' (at test_proposer_registry.py:N, "
        "in __init__); nothing was written; fix the proposer (or its options), then run the campaign again")
    assert not db.exists()
    code, output = _cli(_small(PLUGIN), tmp_path)
    assert code == 2 and "Traceback" not in output, output
    assert any(line.startswith("error: campaign 'quad': proposer grid-walk raised in __init__: KeyError: 'needed'")
               for line in output.splitlines()), output


def test_a_portfolio_member_whose_constructor_raises_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(proposers.BUILTIN, "init-bug", "tests.test_proposer_registry:InitBugProposer")
    spec = _small("portfolio", options={"members": {"random": {}, "init-bug": {}}})
    with pytest.raises(ProposerFailed, match=r"^campaign 'quad': proposer init-bug raised in __init__: KeyError"):
        api.run(spec, storage=f"sqlite:///{tmp_path / 'a.db'}", executor="inline")


# -- register ------------------------------------------------------------------------------
def test_a_registered_proposer_runs_and_resumes(sqlite_url: str) -> None:
    proposers.register("walk", GridWalkProposer)
    assert "walk" in proposers.available() and proposers.proposer_class("walk") is GridWalkProposer
    assert api.run(_small("walk"), storage=sqlite_url, executor="inline").finished == 8
    assert api.resume("quad", storage=sqlite_url, executor="inline", budget=12).finished == 12
    store = Store(sqlite_url)
    try:
        rows = store.evaluations(store.require_campaign("quad").id)
    finally:
        store.close()
    assert {r["proposer"] for r in rows} == {"grid-walk"} and len(rows) == 12


def test_registering_a_name_again_replaces_its_class() -> None:
    proposers.register("walk", GridWalkProposer)
    proposers.register("walk", RandomProposer)
    assert proposers.proposer_class("walk") is RandomProposer


def test_an_unregistered_name_is_refused_by_the_spec() -> None:
    with pytest.raises(SpecError, match="unknown algorithm 'walk'"):
        parse_spec(_small("walk"))


@pytest.mark.parametrize("cls, error, line", [
    (NotAProposer, TypeError,
     "register: the proposer 'walk' (tests.test_proposer_registry:NotAProposer) is not a Proposer subclass "
     "(search.proposers.base.Proposer): derive it from that class and implement ask and tell (docs/proposers.md)"),
    ("GridWalkProposer", TypeError,  # its name, not the class
     "register: the proposer 'walk' ('GridWalkProposer') is not a Proposer subclass (search.proposers.base.Proposer): "
     "derive it from that class and implement ask and tell (docs/proposers.md)"),
    (NoTellProposer, TypeError,
     "register: the proposer 'walk' (tests.test_proposer_registry:NoTellProposer) does not implement tell "
     "(an abstract method of Proposer)"),
])
def test_register_refuses_what_is_no_proposer_class_in_one_line(cls: Any, error: type, line: str) -> None:
    with pytest.raises(error) as err:
        proposers.register("walk", cls)
    assert str(err.value) == line
    assert "walk" not in proposers.available()


@pytest.mark.parametrize("name, line", [
    ("random", "register: 'random' is a built-in algorithm (search.proposers.random_search:RandomProposer); "
               "register tests.support.proposers:GridWalkProposer under another name"),
    ("", "register: the algorithm's name must be a non-empty string, got ''"),
    (3, "register: the algorithm's name must be a non-empty string, got 3"),
])
def test_register_refuses_a_builtin_name_or_no_name_in_one_line(name: Any, line: str) -> None:
    with pytest.raises(ValueError) as err:
        proposers.register(name, GridWalkProposer)
    assert str(err.value) == line
    assert proposers.proposer_class("random") is RandomProposer


def test_a_registered_name_wins_over_a_plugin_of_the_same_name(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    install_plugin(tmp_path / "site", monkeypatch, "tests.test_proposer_registry:NotAProposer")
    proposers.register(PLUGIN, GridWalkProposer)
    assert proposers.proposer_class(PLUGIN) is GridWalkProposer


# -- a proposer stuck before its first evaluation ------------------------------------------
def test_a_proposer_stuck_at_no_evaluation_is_not_told_to_lower_the_budget_to_0(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """It was told `atlas resume quad --budget 0`, which the resume refuses (budget > 0)."""
    monkeypatch.setitem(proposers.BUILTIN, "asks-nothing", "tests.test_proposer_registry:AsksNothingProposer")
    with pytest.raises(ProposerStuck) as err:
        api.run(_small("asks-nothing"), storage=sqlite_url, executor="inline")
    assert str(err.value) == (
        "campaign 'quad': proposer asks-nothing proposed nothing with nothing in flight, at 0 of 8 evaluations; "
        "the run cannot start (no space is used up before its first evaluation): fix the proposer (or its "
        "options) and `api.resume('quad', …)`, or `archive.open(…, readonly=False).campaign('quad').delete()` "
        "and run the corrected spec")


# -- a checkpoint field that is not JSON ---------------------------------------------------
@pytest.mark.parametrize("fields, error, line", [
    ({"told": np.int64(3)}, TypeError, "fields.told: a NumPy int64 is not JSON; convert it with int()"),
    ({"a": [1, {"b": np.float32(0.5)}]}, TypeError, "fields.a.1.b: a NumPy float32 is not JSON; convert it with "
                                                     "float()"),
    ({"on": np.bool_(True)}, TypeError, "fields.on: a NumPy bool is not JSON; convert it with bool()"),
    ({"mean": np.zeros(2)}, TypeError, "fields.mean: an array is not JSON; put it in the checkpoint's arrays"),
    ({"best": float("inf")}, ValueError, "fields.best: inf is not finite JSON; put it in the checkpoint's arrays"),
    ({"o": object()}, TypeError, "fields.o: an object is not JSON; a field holds numbers, strings, lists and "
                                 "dicts of them"),
])
def test_a_field_that_is_not_json_is_named_by_its_path(fields: dict[str, Any], error: type, line: str) -> None:
    with pytest.raises(error) as err:
        dumps("p", 1, fields)
    assert str(err.value) == line


def test_a_float64_field_loads_back_equal() -> None:
    """NumPy's float64 is a float: JSON keeps it bit for bit, so it is not refused."""
    from search.proposers.checkpoint import loads

    value = np.float64(0.1) + np.float64(0.2)
    assert loads(dumps("p", 1, {"x": value}), "p", [1]).fields["x"] == value


def test_a_run_whose_checkpoint_holds_a_numpy_scalar_names_the_field(
        sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """It named the JSON encoder: "TypeError: Object of type int64 is not JSON serializable (at
    encoder.py:180, in default)"."""
    monkeypatch.setitem(proposers.BUILTIN, "numpy-field", "tests.test_proposer_registry:NumpyFieldProposer")
    with pytest.raises(ProposerFailed, match=r"proposer numpy-field raised in state: TypeError: fields.told: a NumPy "
                                             r"int64 is not JSON; convert it with int\(\) \(at checkpoint.py:\d+, in "
                                             r"dumps\)"):
        api.run(_small("numpy-field"), storage=sqlite_url, executor="inline")
