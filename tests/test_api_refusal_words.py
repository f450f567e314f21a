"""A refusal of the Python API says the way on in Python's words.

``api.run``/``api.resume`` of a campaign that exists with another spec, at a budget below
what it has, or with its budget spent by a fail-fast stop, had told a notebook user to
``use another --name``, ``atlas resume quad`` and ``a --budget above 12``: the command
line's words. ``atlas`` (``cli_words=True``) still says those (tests/test_resume_budget.py,
tests/test_edges.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from search import api
from search.campaigns import BudgetSpent, CampaignConflict
from search.spec import SpecError
from tests.conftest import quadratic_spec
from tests.test_resume_budget import failed_fast, maps_in_tmp_path  # noqa: F401  (a fixture)


def test_a_changed_spec_says_another_name_and_api_resume(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=4, search__batch_size=4), storage=url, executor="inline")
    with pytest.raises(CampaignConflict) as raised:
        api.run(quadratic_spec(search__budget=4, search__batch_size=2), storage=url, executor="inline")
    assert str(raised.value).endswith("(changed: search.batch_size); use another name=…, or resume it with "
                                      "`api.resume('quad', …)`")
    assert "--" not in str(raised.value) and "atlas" not in str(raised.value)


def test_the_command_lines_words_stay_with_cli_words(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    api.run(quadratic_spec(search__budget=4, search__batch_size=4), storage=url, executor="inline")
    with pytest.raises(CampaignConflict, match=r"; use another --name, or resume it with `atlas resume quad`$"):
        api.run(quadratic_spec(search__budget=4, search__batch_size=2), storage=url, executor="inline",
                cli_words=True)
    with pytest.raises(SpecError, match=r"continue it with `atlas resume quad` \(its budget is 4\), or run more "
                                        r"with a --budget above 4$"):
        api.resume("quad", storage=url, executor="inline", budget=2, cli_words=True)


@pytest.mark.parametrize("call", ["run", "resume"])
def test_a_budget_below_what_the_campaign_has_says_budget_equals(tmp_path: Path, call: str) -> None:
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    spec = quadratic_spec(search__budget=8, search__batch_size=4)
    api.run(spec, storage=url, executor="inline")
    with pytest.raises(SpecError) as raised:
        if call == "run":
            api.run(spec, storage=url, executor="inline", budget=5)
        else:
            api.resume("quad", storage=url, executor="inline", budget=5)
    source = "campaign" if call == "run" else "stored spec of quad"
    assert raised.value.lines() == [
        f"{source} with budget=5: search.budget: 5 is below the 8 evaluations campaign 'quad' already has; "
        "continue it with `api.resume('quad', …)` (its budget is 8), or run more with budget= above 8"]


def test_a_spent_budget_says_api_resume_with_the_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = failed_fast(tmp_path, monkeypatch, budget=12)
    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    expected = ("campaign 'quad' failed with its budget of 12 spent (12 of its 12 evaluations failed): nothing is "
                "left to run; to try again, raise the budget: `api.resume('quad', budget=24, …)` runs 12 more")
    with pytest.raises(BudgetSpent) as resumed:
        api.resume("quad", storage=url, executor="inline")
    with pytest.raises(BudgetSpent) as ran:
        api.run(yaml.safe_load(path.read_text()), storage=url, executor="inline")
    assert str(resumed.value) == str(ran.value) == expected


def test_the_budget_checked_again_under_the_lease_says_the_callers_words(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-check of a new budget under the run's lease (:func:`search.campaigns.write_limits`:
    the evaluations may have grown since the run was planned) had kept ``atlas``'s words for a
    Python caller: the scheduler did not know its caller's. It is told them now."""
    import archive
    from search import scheduler
    from search.campaigns import write_limits

    url = f"sqlite:///{tmp_path / 'atlas.db'}"
    spec = quadratic_spec(search__budget=8, search__batch_size=4)
    api.run(spec, storage=url, executor="inline")
    lowered = api.as_spec(quadratic_spec(search__budget=5, search__batch_size=4))
    with archive.open(url) as handle:
        record = handle.store.campaign("quad")
        with pytest.raises(SpecError) as python:
            write_limits(handle.store, record, lowered)  # Python's words unless told otherwise
        with pytest.raises(SpecError) as command_line:
            write_limits(handle.store, record, lowered, cli_words=True)
    assert "`api.resume('quad', …)`" in str(python.value) and "budget= above 8" in str(python.value)
    assert "`atlas resume quad`" in str(command_line.value) and "a --budget above 8" in str(command_line.value)

    told: list[bool] = []
    real = scheduler.write_limits
    monkeypatch.setattr(scheduler, "write_limits", lambda *args: (told.append(args[3]), real(*args))[1])
    api.run(spec, storage=url, executor="inline", budget=10)
    api.resume("quad", storage=url, executor="inline", budget=12, cli_words=True)
    assert told == [False, True]
