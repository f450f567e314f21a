"""DESIGN.md's contracts as its examples write them: an initial point that leaves parameters
out (the campaign file's own example), the device an evaluation is given where GPUs are
asked, whatever the executor, and ``atlas delete``'s question answered no or not at all."""

from __future__ import annotations

import io
import sys
import types
from typing import Any

import pytest

import archive
from search import api, cli
from search.spec import SpecError, parse_spec
from tests.conftest import quadratic_spec
from workers.contract import EvalContext
from workers.executors import InlineExecutor
from workers.executors.base import ExecutorConfig

#: DESIGN.md's space and initial point: the point names neither ``layers`` nor anything inactive.
DESIGN_SPACE = {
    "temperature": {"type": "float", "low": 0.2, "high": 2.0, "log": True},
    "sampler": {"type": "categorical", "choices": ["top_p", "min_p", "top_h", "typical", "eta", "mirostat"]},
    "top_p": {"type": "float", "low": 0.5, "high": 1.0, "when": {"sampler": "top_p"}},
    "layers": {"type": "int", "low": 1, "high": 8},
}
DESIGN_POINT = {"temperature": 1.0, "sampler": "top_p", "top_p": 0.9}


def design_like(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """An evaluator over DESIGN.md's space: measures (temperature / 2, layers / 8)."""
    return {"objective": -abs(params["temperature"] - 1.0),
            "measures": {"ma": params["temperature"] / 2, "mb": params["layers"] / 8}}


def design_spec(points: list[dict[str, Any]]) -> dict[str, Any]:
    return quadratic_spec(evaluator={"kind": "python", "target": "tests.test_contracts:design_like"},
                          space=DESIGN_SPACE, search__initial_points=points, search__budget=2,
                          search__batch_size=2, search__max_in_flight=2)


def test_an_initial_point_may_leave_parameters_out_as_designs_example_does(sqlite_url: str) -> None:
    """Refused before as ``search.initial_points.0.layers: missing``; the left-out
    parameter takes its range's centre (1..8: 5) and the point is evaluated first."""
    api.run(design_spec([DESIGN_POINT]), storage=sqlite_url, executor="inline")
    rows = sorted(archive.open(sqlite_url).campaign("quad").evaluations(), key=lambda r: r["seq"])
    assert rows[0]["proposer"] == "initial" and rows[0]["status"] == "done"
    assert rows[0]["params"] == {**DESIGN_POINT, "layers": 5}


def test_what_an_initial_point_names_is_still_checked_as_given() -> None:
    with pytest.raises(SpecError) as refused:
        parse_spec(design_spec([{"sampler": "min_p", "top_p": 0.9}, {"temperature": 9.0}, {"depth": 2}]))
    found = refused.value.problems
    assert found[0].startswith("search.initial_points.0.top_p: not active here")
    assert found[1].startswith("search.initial_points.1.temperature: 9.0 is outside")
    assert found[2].startswith("search.initial_points.2.depth: unknown parameter")


class DeviceProbe:
    """Class form: appends the device its ``setup`` was given to ``config["seen"]``."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        config["seen"].append(ctx.device)

    def evaluate_batch(self, params: list[dict[str, Any]], ctx: EvalContext) -> list[dict[str, Any]]:
        return [{"objective": 0.0, "measures": {"ma": 0.0, "mb": 0.0}} for _ in params]


@pytest.mark.parametrize(("num_gpus", "device"), [(1.0, "cuda:0"), (0.5, "cuda:0"), (0.0, "cpu")])
def test_the_inline_executor_gives_the_gpu_where_gpus_are_asked(monkeypatch: pytest.MonkeyPatch, num_gpus: float,
                                                                 device: str) -> None:
    """As a Ray worker does (``ctx.device`` is ``cuda:0`` with ``num_gpus`` > 0 where torch
    sees a GPU); the inline executor had always given ``cpu``."""
    cuda = types.SimpleNamespace(is_available=lambda: True)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    seen: list[str] = []
    executor = InlineExecutor(ExecutorConfig(kind="python", config={"seen": seen},
                                             target="tests.test_contracts:DeviceProbe", measure_names=["ma", "mb"],
                                             num_gpus=num_gpus))
    executor.start()
    executor.shutdown()
    assert seen == [device]


def test_the_inline_executor_says_when_the_gpus_asked_are_not_there(monkeypatch: pytest.MonkeyPatch,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """On Ray such a campaign is refused (no node has a GPU); inline it had run on the CPU without a word."""
    cuda = types.SimpleNamespace(is_available=lambda: False)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    config = {"kind": "python", "config": {"seen": []}, "target": "tests.test_contracts:DeviceProbe",
              "measure_names": ["ma", "mb"]}
    with caplog.at_level("WARNING", logger="entropy_atlas.executor"):
        InlineExecutor(ExecutorConfig(**config, num_gpus=0.5))
        assert [r.getMessage() for r in caplog.records] == [
            "resources.num_gpus asks for 0.5 GPU per evaluation, but torch sees none here: the evaluations run "
            "on the CPU (ctx.device 'cpu')"]
        caplog.clear()
        InlineExecutor(ExecutorConfig(**config, num_gpus=0.0))
        assert not caplog.records


def atlas_delete(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], url: str,
                 answer: str) -> tuple[int, str, str]:
    """``atlas delete quad`` as ``main`` runs it, ``answer`` on its standard input."""
    monkeypatch.setattr(sys, "argv", ["atlas", "delete", "quad", "--storage", url])
    monkeypatch.setattr(sys, "stdin", io.StringIO(answer))
    code = cli._run_app()
    out, err = capsys.readouterr()
    return code, out, err


def test_atlas_delete_answered_no_or_not_at_all_keeps_the_campaign(monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str],
                                                                    sqlite_url: str) -> None:
    """Either had read as a Ctrl-C (``stopped``, exit 130)."""
    api.run(quadratic_spec(search__budget=2, search__batch_size=2), storage=sqlite_url, executor="inline")
    capsys.readouterr()  # the set-up run's warning (a map larger than its budget) aside
    code, out, err = atlas_delete(monkeypatch, capsys, sqlite_url, "n\n")
    assert (code, err.strip()) == (1, "nothing deleted: campaign quad is kept")
    assert "delete campaign 'quad' and its 2 evaluations?" in out
    code, _, err = atlas_delete(monkeypatch, capsys, sqlite_url, "")
    assert code == 2 and err.splitlines() == [
        "error: no answer (standard input is closed); nothing deleted; pass --yes to delete without asking"]
    assert archive.open(sqlite_url).campaign("quad").stats().finished == 2
    code, out, _ = atlas_delete(monkeypatch, capsys, sqlite_url, "y\n")
    assert code == 0 and "deleted campaign quad: 2 evaluations" in out
