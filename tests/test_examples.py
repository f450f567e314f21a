"""Every example campaign is a valid file whose evaluator and proposer exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.proposers import proposer_class
from search.spec import load_spec
from workers import registry

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_valid(path: Path) -> None:
    spec = load_spec(path)
    assert spec.evaluator.kind in registry.available()
    assert proposer_class(spec.search.algorithm) is not None

