"""The built-in model names the campaign check knows are the ones the model code builds, and
the check imports no torch (``workers/builtin_models.py``)."""

from __future__ import annotations

import subprocess
import sys

from workers.builtin_models import BUILTIN_NAMES, builtin_model_problem
from workers.decoding import arith


def test_the_names_are_the_model_codes() -> None:
    assert tuple(arith.BUILTIN_MODELS) == BUILTIN_NAMES
    assert all(builtin_model_problem(arith.BUILTIN_PREFIX + name) is None for name in arith.BUILTIN_MODELS)


def test_a_name_not_built_in_is_refused_and_a_local_path_left_to_the_loader() -> None:
    assert builtin_model_problem("builtin:Arith-Nano") == (
        "unknown built-in model 'Arith-Nano' (built-in: builtin:arith-tiny, builtin:arith-nano, "
        "builtin:arith-tiny-rl; did you mean builtin:arith-nano?)")
    assert builtin_model_problem("builtin:") is not None
    assert builtin_model_problem("/models/arith-tny-rl") is None  # a directory: looked for where the model loads


def test_checking_a_name_imports_no_torch() -> None:
    code = ("import sys; from workers.builtin_models import builtin_model_problem as p; "
            "p('builtin:arith-tny'); print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "False"
