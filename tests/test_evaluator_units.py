"""A built-in evaluator's units label a campaign whose spec gives none (``unit``): written
with the campaign's settings, which every reader (figures, tables, the dashboard, exports)
takes; a unit the spec gives wins; a ``python`` evaluator's are the spec's alone."""

from __future__ import annotations

from typing import Any

import pytest

from archive.store import Store
from archive.units import with_unit
from search.campaigns import commit_campaign, open_campaign, plan_campaign
from search.spec import parse_spec
from tests.conftest import quadratic_spec
from workers import registry


def decoding_spec(task: str = "arithmetic", budget: int = 10) -> dict[str, Any]:
    """A decoding campaign over the temperature, no ``unit`` anywhere."""
    return {
        "name": "dec",
        "evaluator": {"kind": "decoding", "config": {"task": task}},
        "space": {"temperature": {"type": "float", "low": 0.1, "high": 2.0}},
        "objective": {"name": "coherence" if task == "continuation" else "accuracy"},
        "measures": [{"name": "mean_entropy", "low": 0.0, "high": 2.0, "bins": 4},
                     {"name": "kept_set_size", "low": 1.0, "high": 14.0, "bins": 4},
                     {"name": "distinct_2", "low": 0.0, "high": 1.0, "bins": 4}],
        "search": {"budget": budget},
    }


class DeclaringEvaluator:
    """A ``python`` class target that declares units: not asked (user code; the spec says)."""

    @classmethod
    def units(cls, config: dict[str, Any]) -> Any:
        from workers.contract import Units

        return Units(objective="nats", measures={"ma": "nats"})

    def evaluate(self, params: dict[str, Any], ctx: Any) -> dict[str, Any]:
        return {"objective": 0.0, "measures": {"ma": 0.0, "mb": 0.0}}


def _opened_settings(url: str, data: dict[str, Any]) -> Any:
    """The settings of the campaign ``data`` opens (created where new) in the storage at ``url``."""
    store = Store(url)
    try:
        return open_campaign(store, parse_spec(data)).settings
    finally:
        store.close()


@pytest.mark.parametrize(("task", "expected"), [
    ("arithmetic", {"mean_entropy": "nats", "kept_set_size": "tokens"}),
    ("continuation", {"coherence": "nats", "mean_entropy": "nats", "kept_set_size": "tokens"}),
])
def test_a_built_in_evaluators_campaign_without_units_is_labelled_with_its_units(
        sqlite_url: str, task: str, expected: dict[str, str]) -> None:
    """A decoding campaign that writes no ``unit`` is labelled with the evaluator's: its
    entropies in nats, its kept set in tokens, a coherence objective in nats; a fraction
    (distinct-2, accuracy) by its name alone. The stored spec and its hash are the spec's
    own, and the labels are the same read again and after a resume with a new budget."""
    spec = parse_spec(decoding_spec(task))
    store = Store(sqlite_url)
    try:
        settings = open_campaign(store, spec).settings
        assert settings.units == expected
        assert with_unit("mean_entropy", settings.units) == "mean_entropy (nats)"
        assert with_unit("distinct_2", settings.units) == "distinct_2"
        commit_campaign(store, plan_campaign(store, parse_spec(decoding_spec(task, budget=20))))
    finally:
        store.close()
    reader = Store(sqlite_url, readonly=True)
    try:
        (record,) = reader.campaigns()
    finally:
        reader.close()
    assert record.spec["search"]["budget"] == 20
    assert record.settings.units == expected
    assert record.spec_hash == spec.spec_hash() == parse_spec(record.spec).spec_hash()
    assert all(m["unit"] is None for m in record.spec["measures"])


def test_a_unit_the_spec_gives_wins_over_the_evaluators(sqlite_url: str) -> None:
    """The spec's ``unit`` is the label where it gives one; the evaluator's fills the rest."""
    data = decoding_spec()
    data["objective"]["unit"] = "fraction"
    data["measures"][0]["unit"] = "nats per token"
    settings = _opened_settings(sqlite_url, data)
    assert settings.units == {"accuracy": "fraction", "mean_entropy": "nats per token", "kept_set_size": "tokens"}


def test_a_python_evaluator_gets_no_units_unless_the_spec_gives_them(sqlite_url: str) -> None:
    """``kind: python`` is the user's code: its class's ``units`` is not asked, and only the
    spec's ``unit`` labels its campaign."""
    from search.campaigns import evaluator_units
    from workers.contract import Units

    data = quadratic_spec(evaluator={"kind": "python", "target": "tests.test_evaluator_units:DeclaringEvaluator"})
    assert registry.units("python", {}) == Units()
    assert evaluator_units(parse_spec(data)) == {}
    data["measures"][1]["unit"] = "bits"
    settings = _opened_settings(sqlite_url, data)
    assert settings.units == {"mb": "bits"}


@pytest.mark.parametrize(("kind", "config", "module"), [
    ("decoding", {}, "workers.evaluators.decoding"),
    ("activation", {"model": "vit"}, "workers.evaluators.activation"),
    ("entropy_rl", {}, "workers.evaluators.entropy_rl"),
])
def test_each_built_in_evaluator_declares_units_only_for_what_it_returns(
        kind: str, config: dict[str, Any], module: str) -> None:
    """Every measure a built-in evaluator gives a unit is one its results hold, and its
    entropies (natural logs) are in nats."""
    import importlib

    mod = importlib.import_module(module)
    returned = set(mod.MEASURES) | set(getattr(mod, "VIT_MEASURES", ()))
    declared = registry.units(kind, config).measures
    assert declared and set(declared) <= returned
    assert all(declared[m] == "nats" for m in returned if m.endswith("entropy"))
