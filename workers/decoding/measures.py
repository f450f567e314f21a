"""Diversity and repetition of generated token sequences.

- ``distinct_n`` (per prompt): for each prompt, the number of distinct n-grams among
  all its samples divided by the number of n-grams in them, averaged over prompts (Li et
  al. 2016's distinct-n, taken within a prompt's samples so that it measures how much a
  decoding configuration varies its answers, not how varied the prompts are). With one
  sample per prompt it is the distinct-n of that output.
- ``corpus_distinct_n``: the same ratio over every output of every prompt at once.
- ``repetition_rate``: seq-rep-n (Welleck et al. 2019): the share of a sequence's
  n-grams that repeat an earlier n-gram of the same sequence, pooled over sequences.

All take token ids without the stop token. Ratios with nothing to count are 0.
"""

from __future__ import annotations

from collections.abc import Sequence


def ngrams(tokens: Sequence[int], n: int) -> list[tuple[int, ...]]:
    """The n-grams of ``tokens`` in order (none if shorter than n)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _ratio(outputs: Sequence[Sequence[int]], n: int) -> tuple[int, int]:
    grams = [g for out in outputs for g in ngrams(out, n)]
    return len(set(grams)), len(grams)


def distinct_n(outputs_by_prompt: Sequence[Sequence[Sequence[int]]], n: int) -> float:
    """Mean over prompts of distinct / total n-grams among that prompt's samples
    (prompts whose samples hold no n-gram are left out)."""
    ratios = [u / t for u, t in (_ratio(samples, n) for samples in outputs_by_prompt) if t > 0]
    return sum(ratios) / len(ratios) if ratios else 0.0


def corpus_distinct_n(outputs: Sequence[Sequence[int]], n: int) -> float:
    """Distinct / total n-grams over all ``outputs`` together."""
    unique, total = _ratio(outputs, n)
    return unique / total if total else 0.0


def repetition_rate(outputs: Sequence[Sequence[int]], n: int = 4) -> float:
    """Σ (n-grams equal to an earlier n-gram of the same output) / Σ n-grams."""
    repeated = total = 0
    for out in outputs:
        seen: set[tuple[int, ...]] = set()
        for gram in ngrams(out, n):
            repeated += gram in seen
            seen.add(gram)
            total += 1
    return repeated / total if total else 0.0
