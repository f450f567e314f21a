"""No ask compiles C++ by default: BoTorch's qLogNEHVI JIT-compiled a fused kernel
(``torch.utils.cpp_extension.load``, ``-march=native``) on the first ``mo-bo`` ask of a
process, 25–60 s; it is built only with ``fused_kernel: true`` (:func:`mo_bo.fused_kernel`).
BoTorch loads it once a process, so the asks run in a fresh one."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest

from search.proposers import mo_bo

ROOT = Path(__file__).resolve().parents[1]

ASKS = """
import json, sys
import torch.utils.cpp_extension as ext
calls = []
def load(*args, **kwargs):  # record, build nothing: BoTorch falls back to its pure-PyTorch path
    calls.append(kwargs.get("name", "?"))
    raise RuntimeError("no compiling in this test")
ext.load = load
from tests.test_bo_bounded_fit import LIGHT, fed
loads = {}
for algorithm, options in json.loads(sys.argv[1]):
    proposer, _ = fed(algorithm, options, 10)
    before = len(calls)
    assert len(proposer.ask(2)) == 2
    loads[algorithm + json.dumps(options)] = calls[before:]
print(json.dumps(loads))
"""


def loads_in_fresh_process(asks: list[tuple[str, dict]]) -> dict[str, list[str]]:
    """The C++ extensions each ask (in order, one new process) tried to load, by algorithm and options."""
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", ASKS, json.dumps(asks)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


LIGHT = {"num_restarts": 2, "raw_samples": 32, "initial_design": 8}
MO = {**LIGHT, "measures": ["ma"]}


def test_no_bayesian_ask_compiles_a_cpp_extension_by_default() -> None:
    asks = [("bo", LIGHT), ("qd-bo", {"initial_design": 8, "candidates": 64}), ("mo-bo", MO)]
    assert loads_in_fresh_process(asks) == {a + json.dumps(o): [] for a, o in asks}


def test_fused_kernel_true_lets_botorch_build_it_after_an_ask_without() -> None:
    loads = loads_in_fresh_process([("mo-bo", MO), ("mo-bo", {**MO, "fused_kernel": True})])
    assert list(loads.values()) == [[], ["logei_fused_ext"]]


@pytest.fixture
def logei(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    """A stand-in for BoTorch's ``logei`` module (its loader not yet run), and a fresh record of what was hidden."""
    fake = types.SimpleNamespace(_load_attempted=False, _C=None)
    monkeypatch.setattr(mo_bo, "logei", fake)
    monkeypatch.setattr(mo_bo._Kernel, "hidden", None)
    monkeypatch.setattr(mo_bo._Kernel, "blocked", False)
    return fake


def test_off_hides_a_kernel_loaded_before_and_on_puts_it_back(logei: types.SimpleNamespace) -> None:
    kernel = object()
    logei._load_attempted, logei._C = True, kernel  # an opted-in proposer loaded it
    mo_bo.fused_kernel(False)
    assert logei._C is None and logei._load_attempted
    mo_bo.fused_kernel(True)
    assert logei._C is kernel


def test_off_blocks_the_load_and_on_allows_it_again(logei: types.SimpleNamespace) -> None:
    mo_bo.fused_kernel(False)
    assert logei._load_attempted and logei._C is None
    mo_bo.fused_kernel(True)
    assert not logei._load_attempted


def test_a_load_botorch_tried_and_failed_is_not_retried(logei: types.SimpleNamespace) -> None:
    logei._load_attempted = True  # BoTorch's own failed attempt (no compiler): not ours to undo
    mo_bo.fused_kernel(True)
    assert logei._load_attempted


def test_a_botorch_without_the_private_switch_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    changed = types.SimpleNamespace(_C=None)  # a BoTorch that renamed ``_load_attempted``
    monkeypatch.setattr(mo_bo, "logei", changed)
    mo_bo.fused_kernel(False)
    assert vars(changed) == {"_C": None}
