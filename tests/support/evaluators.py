"""Small real evaluators for tests: each one exercises one rule of the evaluator contract."""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from workers.contract import EvalContext, Evaluator


def quadratic(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """objective = 1 - (a - 0.3)^2 - (b - 0.6)^2; measures (a, b)."""
    a, b = float(params["a"]), float(params["b"])
    return {"objective": 1 - (a - 0.3) ** 2 - (b - 0.6) ** 2, "measures": {"ma": a, "mb": b},
            "metrics": {"seed": ctx.seed}}


def slow_quadratic(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """quadratic, after a pause; logs each finished evaluation to $ATLAS_TEST_LOG. While it
    pauses, $ATLAS_TEST_BUSY_DIR (when set) holds a file named after this process's id."""
    busy_dir = os.environ.get("ATLAS_TEST_BUSY_DIR")
    marker = Path(busy_dir, str(os.getpid())) if busy_dir else None
    if marker is not None:
        marker.touch()
    try:
        time.sleep(float(os.environ.get("ATLAS_TEST_SLEEP", "0.02")))
    finally:
        if marker is not None:
            marker.unlink(missing_ok=True)
    out = quadratic(params, ctx)
    log = os.environ.get("ATLAS_TEST_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{params['a']!r} {params['b']!r} {os.getpid()}\n")
    return out


def flaky(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Fails in every way the contract names, by region of the space."""
    a = float(params["a"])
    if a < 0.1:
        raise RuntimeError("boom: a < 0.1")
    if a < 0.2:
        return {"objective": math.nan, "measures": {"ma": a, "mb": 0.5}}
    if a < 0.3:
        return {"objective": 1.0, "measures": {"ma": a}}
    return quadratic(params, ctx)


def sleepy(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Hangs (far past any test timeout) when a > 0.9."""
    if float(params["a"]) > 0.9:
        time.sleep(3600)
    return quadratic(params, ctx)


def crash_once(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Kills its own worker process on the first attempt of each evaluation with a > 0.5."""
    if float(params["a"]) > 0.5 and ctx.attempt == 1:
        os._exit(17)
    return quadratic(params, ctx)


_LEAKED: list[bytearray] = []


def memory_leak(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Keeps 40 MiB of every evaluation for ever (a leak in its worker); otherwise
    quadratic, reporting its process id."""
    _LEAKED.append(bytearray(40 * 2**20))
    out = quadratic(params, ctx)
    out["metrics"]["pid"] = os.getpid()
    return out


def memory_hog(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Fills 3 GiB of memory when a > 0.9 (an evaluation that exhausts its worker's memory);
    otherwise quadratic, reporting its process id."""
    if float(params["a"]) > 0.9:
        import numpy as np

        block = np.ones(3 * 2**30, dtype=np.uint8)
        return {"objective": float(block[-1]), "measures": {"ma": 1.0, "mb": 1.0}}
    out = quadratic(params, ctx)
    out["metrics"]["pid"] = os.getpid()
    return out


def noop(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    return {"objective": float(params["a"]), "measures": {"ma": float(params["a"]), "mb": float(params["b"])}}


class CountingEvaluator(Evaluator):
    """Class form: records how often ``setup`` ran in this process (metrics.setups)."""

    setups = 0

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        type(self).setups += 1
        self.offset = float(config.get("offset", 0.0))
        marker = config.get("marker_dir")
        if marker:
            Path(marker, f"setup-{os.getpid()}-{time.time_ns()}").touch()

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        out = quadratic(params, ctx)
        out["objective"] += self.offset
        out["metrics"] = {"setups": type(self).setups, "pid": os.getpid()}
        return out


def export_probe(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Every kind of value an export must carry: a categorical (``mode``), a conditional
    ``b`` (only when mode is "wide"), nested metrics, a NaN metric; raises when a > 0.8."""
    a, b = float(params["a"]), float(params.get("b", 0.5))
    if a > 0.8:
        raise RuntimeError(f"export probe: a = {a!r} is out of range")
    return {"objective": 1 - (a - 0.3) ** 2 - (b - 0.6) ** 2, "measures": {"ma": a, "mb": b},
            "metrics": {"mode": params["mode"], "curve": [a / 3, {"b": params.get("b")}], "diverged": math.nan}}


def always_fails(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    raise ValueError(f"always broken (a = {params['a']:.3f})")


def exits_when_a_is_high(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """Calls ``sys.exit(3)`` when a > 0.5: a failed evaluation, not a dead worker."""
    if float(params["a"]) > 0.5:
        sys.exit(3)
    return quadratic(params, ctx)


_calls = {"n": 0}


def dies_on_third_call(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """SIGKILL to this process on its third evaluation: the scheduler dies with it (inline; an
    ``os._exit`` would fail the evaluation there, :mod:`workers.exit_guard`)."""
    _calls["n"] += 1
    if _calls["n"] == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return quadratic(params, ctx)


def dies_once(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """SIGKILL to this process on its ``ATLAS_TEST_DIE_AT``-th evaluation, until the file
    ``ATLAS_TEST_DIED`` names exists (it is written just before dying): a resumed scheduler
    then runs to the end."""
    marker = Path(os.environ["ATLAS_TEST_DIED"])
    _calls["n"] += 1
    if _calls["n"] == int(os.environ["ATLAS_TEST_DIE_AT"]) and not marker.exists():
        marker.write_text("died")
        os.kill(os.getpid(), signal.SIGKILL)
    return quadratic(params, ctx)


class BrokenSetup(Evaluator):
    """An evaluator whose ``setup`` always raises (a model that is not there)."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        raise FileNotFoundError("no model at /nowhere/model.bin")

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:  # pragma: no cover
        return quadratic(params, ctx)


class NeedsFile(Evaluator):
    """Sets up only while the file its config names (``path``) exists: a model moved away."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        path = Path(config["path"])
        if not path.exists():
            raise FileNotFoundError(f"no model at {path}")

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        return quadratic(params, ctx)


class Marking(Evaluator):
    """Leaves a file ``<marker_dir>/<seed>`` for each evaluation it finishes (seen from
    outside the worker without asking the driver)."""

    def setup(self, config: dict[str, Any], ctx: EvalContext) -> None:
        self.marker_dir = Path(config["marker_dir"])

    def evaluate(self, params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
        out = quadratic(params, ctx)
        (self.marker_dir / str(ctx.seed)).touch()
        return out


def leaves_a_thread(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """:func:`quadratic`, after starting a thread (not a daemon) that sleeps for an hour."""
    import threading
    import time

    threading.Thread(target=time.sleep, args=(3600,), name="leaky-worker").start()
    return quadratic(params, ctx)


INTERRUPT_AT = {"call": 0, "calls": 0}  # interrupts_once: the call to stop at (0: never), the calls made


def interrupts_once(params: dict[str, Any], ctx: EvalContext) -> dict[str, Any]:
    """:func:`quadratic`, but its ``INTERRUPT_AT["call"]``-th call in this process raises
    :class:`KeyboardInterrupt`, as a Ctrl-C during that evaluation would."""
    INTERRUPT_AT["calls"] += 1
    if INTERRUPT_AT["calls"] == INTERRUPT_AT["call"]:
        raise KeyboardInterrupt
    return quadratic(params, ctx)
