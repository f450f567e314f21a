"""A read in a forked process beside other work (search.forked): its answer, its errors,
a reader that dies, and no fork where none is safe. Each case runs in a fresh interpreter:
the test runner's own threads make a fork unsafe in it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import functools, os, sys
from search.forked import fork_is_safe, read_beside
from entropy_atlas.errors import AtlasError
parent = os.getpid()
def where():
    return os.getpid()
def fails():
    raise AtlasError("no campaign named 'x'")
def dies_unless_in(pid):
    if os.getpid() != pid:
        os._exit(3)
    return "read here"
done = []
"""


def run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", PRELUDE + code], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_the_read_runs_in_another_process_beside_the_work_here() -> None:
    out = run("pid = read_beside(where, lambda: done.append(os.getpid()))\n"
              "print(fork_is_safe(), pid != parent, done == [parent])")
    assert out == "True True True"


def test_the_reader_s_error_is_raised_here_as_it_was() -> None:
    out = run("try:\n    read_beside(fails, lambda: None)\n"
              "except AtlasError as exc:\n    print(type(exc).__name__, exc)")
    assert out == "AtlasError no campaign named 'x'"


def test_a_reader_that_dies_is_read_again_here() -> None:
    out = run("print(read_beside(functools.partial(dies_unless_in, parent), lambda: done.append(1)), done)")
    assert out == "read here [1]"


def test_with_another_thread_running_nothing_is_forked() -> None:
    out = run("import threading\nthreading.Thread(target=threading.Event().wait, daemon=True).start()\n"
              "print(fork_is_safe(), read_beside(where, lambda: None) == parent)")
    assert out == "False True"
