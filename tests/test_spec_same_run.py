"""Two campaign files that mean the same run are the same campaign.

A default written out (the benchmark's ``measure_names: [m0, m1]``, map-elites'
``variation: adaptive``, a python function's ``batched: false``) had made an existing
campaign "a different spec": the stored spec is now compared with the new one after
filling the evaluator config's defaults (its config model) and the proposer's (those it
reads), and the campaign goes on with its stored spec, kept as it was written. A value that
changes still refuses the run, naming the paths that change and not the defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import archive
from archive.store import Store
from search import api
from search.campaigns import CampaignConflict, plan_campaign
from search.spec import load_spec, parse_spec
from tests.conftest import quadratic_spec

README = Path(__file__).resolve().parents[1] / "README.md"
QUICKSTART = Path(__file__).resolve().parents[1] / "examples" / "quickstart.yaml"


def benchmark_spec(**config: Any) -> dict[str, Any]:
    """A small benchmark campaign; ``config`` is added to ``{function: sphere, dim: 2}``."""
    return {
        "name": "bench",
        "evaluator": {"kind": "benchmark", "config": {"function": "sphere", "dim": 2, **config}},
        "space": {"x": {"type": "float", "low": -1.0, "high": 1.0, "size": 2}},
        "measures": [{"name": "m0", "low": -2.0, "high": 2.0, "bins": 4},
                     {"name": "m1", "low": -2.0, "high": 2.0, "bins": 4}],
        "search": {"algorithm": "map-elites", "budget": 10, "batch_size": 5, "max_in_flight": 5},
    }


def stored(url: str, name: str) -> dict[str, Any]:
    return archive.open(url).campaign(name).spec


def test_the_benchmark_measure_names_written_out_continue_the_campaign(sqlite_url: str) -> None:
    api.run(benchmark_spec(), storage=sqlite_url, executor="inline")
    again = benchmark_spec(measure_names=["m0", "m1"])
    again["search"]["budget"] = 15
    stats = api.run(again, storage=sqlite_url, executor="inline")
    assert stats.finished == 15
    spec = stored(sqlite_url, "bench")
    assert spec["evaluator"]["config"] == {"function": "sphere", "dim": 2}  # as it was first written
    assert spec["search"]["budget"] == 15


def test_a_default_left_out_continues_a_campaign_that_wrote_it(sqlite_url: str) -> None:
    api.run(benchmark_spec(measure_names=["m0", "m1"]), storage=sqlite_url, executor="inline")
    assert api.run(benchmark_spec(), storage=sqlite_url, executor="inline").finished == 10
    assert stored(sqlite_url, "bench")["evaluator"]["config"]["measure_names"] == ["m0", "m1"]


def test_a_changed_config_value_is_named_and_a_written_default_is_not(sqlite_url: str) -> None:
    api.run(benchmark_spec(), storage=sqlite_url, executor="inline")
    with pytest.raises(CampaignConflict, match=r"\(changed: evaluator\.config\.dim, space\.x\.size\); use"):
        changed = benchmark_spec(measure_names=["m0", "m1"], dim=3)
        changed["space"]["x"]["size"] = 3
        api.run(changed, storage=sqlite_url, executor="inline")


def test_other_measure_names_are_a_different_campaign(sqlite_url: str) -> None:
    api.run(benchmark_spec(), storage=sqlite_url, executor="inline")
    changed = benchmark_spec(measure_names=["a", "b"])
    changed["measures"][0]["name"], changed["measures"][1]["name"] = "a", "b"
    with pytest.raises(CampaignConflict, match=r"changed: evaluator\.config\.measure_names, measures\.0\.name, "
                                               r"measures\.1\.name\)"):
        api.run(changed, storage=sqlite_url, executor="inline")


def test_a_python_function_written_unbatched_continues_the_campaign(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    explicit = quadratic_spec(search__budget=10)
    explicit["evaluator"]["config"] = {"batched": False}
    assert api.run(explicit, storage=sqlite_url, executor="inline").finished == 10
    with pytest.raises(CampaignConflict, match=r"changed: evaluator\.config\.batched\)"):
        explicit["evaluator"]["config"] = {"batched": True}
        api.run(explicit, storage=sqlite_url, executor="inline")


@pytest.mark.parametrize("options", [
    {"variation": "adaptive"},
    {"variation": "adaptive", "line_sigma": 0.5, "discount": 0.8, "random_init": 10},
])
def test_map_elites_defaults_written_out_continue_the_campaign(sqlite_url: str, options: dict[str, Any]) -> None:
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    stats = api.run(quadratic_spec(search__budget=20, search__options=options), storage=sqlite_url,
                    executor="inline")
    assert stats.finished == 20
    assert stored(sqlite_url, "quad")["search"]["options"] == {}


def test_another_variation_is_a_different_campaign(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    with pytest.raises(CampaignConflict, match=r"changed: search\.options\.variation\)"):
        api.run(quadratic_spec(search__budget=10, search__options={"variation": "iso_line"}), storage=sqlite_url,
                executor="inline")


def test_an_option_that_picks_another_default_is_named(sqlite_url: str) -> None:
    """``emitters: 1`` is its default, but naming it picks ``variation: iso_line``: the run differs,
    and the line names what the file changed, not the defaults that followed."""
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    with pytest.raises(CampaignConflict, match=r"changed: search\.options\.emitters\)"):
        api.run(quadratic_spec(search__budget=10, search__options={"emitters": 1}), storage=sqlite_url,
                executor="inline")


def test_a_changed_batch_size_is_named_and_not_the_defaults_it_moves(sqlite_url: str) -> None:
    """map-elites' ``random_init`` defaults to the batch size: the line names the batch size only."""
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    with pytest.raises(CampaignConflict, match=r"changed: search\.batch_size\)"):
        api.run(quadratic_spec(search__budget=10, search__batch_size=5), storage=sqlite_url, executor="inline")


@pytest.mark.parametrize(("first", "then"), [({"offset": 1}, {"offset": 1.0}), ({}, {"offset": None})])
def test_a_free_form_config_written_otherwise_is_named(sqlite_url: str, first: dict[str, Any],
                                                        then: dict[str, Any]) -> None:
    """A class with no config model reads its config as written (``1`` is not ``1.0`` to
    ``range``): such a change is refused, and named; it had read ``(changed: )``."""
    spec = quadratic_spec(search__budget=10)
    spec["evaluator"] = {"kind": "python", "target": "tests.support.evaluators:CountingEvaluator", "config": first}
    api.run(spec, storage=sqlite_url, executor="inline")
    spec["evaluator"]["config"] = then
    with pytest.raises(CampaignConflict, match=r"\(changed: evaluator\.config\.offset\); use"):
        api.run(spec, storage=sqlite_url, executor="inline")


def test_portfolio_members_written_out_continue_the_campaign(sqlite_url: str) -> None:
    api.run(quadratic_spec(search__budget=10, search__algorithm="portfolio"), storage=sqlite_url, executor="inline")
    members = {"map-elites": {"variation": "adaptive"}, "random": None}
    stats = api.run(quadratic_spec(search__budget=20, search__algorithm="portfolio",
                                   search__options={"members": members, "c": 1.0}),
                    storage=sqlite_url, executor="inline")
    assert stats.finished == 20
    swapped = {"random": {}, "map-elites": {}}
    with pytest.raises(CampaignConflict, match=r"search\.options\.members \(the order: map-elites, random → "
                                               r"random, map-elites\)"):
        api.run(quadratic_spec(search__budget=20, search__algorithm="portfolio",
                               search__options={"members": swapped}), storage=sqlite_url, executor="inline")


def test_a_campaign_stored_with_an_old_hash_goes_on_with_its_own_file(sqlite_url: str) -> None:
    """The stored spec is compared, not the hash stored beside it: a campaign whose row holds a
    hash of another rule (an older version's) still goes on with the file it was made from."""
    api.run(quadratic_spec(search__budget=10), storage=sqlite_url, executor="inline")
    store = Store(sqlite_url)
    record = store.require_campaign("quad")
    store.update_campaign(record.id, spec_hash="0123456789abcdef")
    assert store.require_campaign("quad").spec_hash == "0123456789abcdef"
    assert api.run(quadratic_spec(search__budget=20), storage=sqlite_url, executor="inline").finished == 20
    assert api.run(quadratic_spec(search__budget=20, search__options={"variation": "adaptive"}),
                   storage=sqlite_url, executor="inline").finished == 20


def test_the_hash_of_a_spec_as_written_keeps_its_rule() -> None:
    """Stored hashes are of the spec as written; the value is the one the rule always gave."""
    spec = parse_spec(quadratic_spec())
    assert spec.spec_hash() == "aa43586f62296c65"
    explicit = parse_spec(quadratic_spec(search__options={"variation": "adaptive"}))
    assert explicit.spec_hash() != spec.spec_hash()


def test_the_filled_hash_is_the_same_for_a_default_written_out(sqlite_url: str) -> None:
    from search.campaigns import layout_for, proposer_options_filled

    plain, explicit = parse_spec(benchmark_spec()), parse_spec(benchmark_spec(measure_names=["m0", "m1"]))
    layout = layout_for(plain)
    assert plain.spec_hash(plain.filled(proposer_options_filled(plain, layout))) == explicit.spec_hash(
        explicit.filled(proposer_options_filled(explicit, layout)))
    filled = proposer_options_filled(plain, layout)
    assert filled["variation"] == "adaptive" and filled["random_init"] == 5
    assert plain.search.options == {}  # the spec itself is left as written


def test_a_plan_of_the_same_run_goes_on_with_the_stored_spec(sqlite_url: str) -> None:
    api.run(benchmark_spec(), storage=sqlite_url, executor="inline")
    again = benchmark_spec(measure_names=["m0", "m1"])
    again["search"]["budget"] = 12
    plan = plan_campaign(Store(sqlite_url), parse_spec(again))
    assert plan.existing is not None
    assert plan.spec.evaluator.config == {"function": "sphere", "dim": 2}
    assert plan.spec.search.budget == 12


def test_the_readme_campaign_is_not_the_quickstart_example(tmp_path: Path) -> None:
    """README's campaign and examples/quickstart.yaml had both been named ``quickstart`` but
    differed: after ``make run`` the README's was refused as "a different spec"."""
    text = README.read_text()
    block = text.split("## A campaign", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    readme = parse_spec(yaml.safe_load(block))
    example = load_spec(QUICKSTART)
    assert readme.name != example.name or readme.model_dump() == example.model_dump()
