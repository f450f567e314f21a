"""Per-evaluation seeds: the batch form equals NumPy's ``SeedSequence`` one by one."""

from __future__ import annotations

import numpy as np
import pytest

from search.seeds import evaluation_seeds


def numpy_seed(campaign_seed: int, seq: int) -> int:
    return int(np.random.SeedSequence([campaign_seed, seq]).generate_state(1)[0] & 0x7FFFFFFF)


@pytest.mark.parametrize("campaign_seed", [0, 1, 12345, 2**31 - 1, 2**32 - 1, 2**32, 2**40 + 5, 2**70 + 3])
def test_the_batch_equals_numpy_seed_sequence(campaign_seed: int) -> None:
    rng = np.random.default_rng(campaign_seed % 2**32)
    seqs = list(range(200)) + rng.integers(0, 2**32, size=200).tolist() + [2**32 - 1]
    assert evaluation_seeds(campaign_seed, seqs) == [numpy_seed(campaign_seed, q) for q in seqs]


def test_seeds_past_one_word_fall_back_to_numpy_and_differ_per_seq() -> None:
    seqs = [2**32, 2**40 + 1, 3]
    seeds = evaluation_seeds(7, seqs)
    assert seeds == [numpy_seed(7, q) for q in seqs]
    assert len(set(evaluation_seeds(7, list(range(1000))))) == 1000
    assert evaluation_seeds(7, []) == []
