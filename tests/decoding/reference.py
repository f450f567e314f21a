"""Slow reference samplers, written from REFERENCE.md sections 2-3 (not from the code under
test): NumPy, float64, one row at a time, loops where the rule is a loop.

Each rule returns ``(keep, margin)``: the boolean kept set of one row and how far the
row's decisive quantities are from the rule's threshold (relative where natural). Tests
skip rows whose margin is tiny, where float32 and float64 may honestly disagree.
"""

from __future__ import annotations

import math

import numpy as np

LN2 = math.log(2.0)


def softmax(x: np.ndarray) -> np.ndarray:
    """softmax of one row; -inf entries get probability 0."""
    x = np.asarray(x, dtype=np.float64)
    m = np.max(x[np.isfinite(x)])
    e = np.where(np.isfinite(x), np.exp(x - m), 0.0)
    return e / e.sum()


def entropy(p: np.ndarray, base: float = math.e) -> float:
    """−Σ p log p (0 log 0 = 0)."""
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(base))


def order_desc(x: np.ndarray) -> np.ndarray:
    return np.argsort(-np.asarray(x), kind="stable")


def _force_top(keep: np.ndarray, scores: np.ndarray, min_keep: int) -> np.ndarray:
    keep = keep.copy()
    keep[order_desc(scores)[:min_keep]] = True
    return keep


def top_k(scores: np.ndarray, k: int, min_keep: int = 1) -> tuple[np.ndarray, float]:
    """Keep tokens whose score is >= the k-th largest (k = max(k, min_keep), capped at V)."""
    k = min(max(k, min_keep), len(scores))
    srt = np.sort(scores)[::-1]
    kth = srt[k - 1]
    margin = float(srt[k - 1] - srt[k]) if k < len(scores) else math.inf
    return scores >= kth, margin


def top_p(scores: np.ndarray, p: float, min_keep: int = 1) -> tuple[np.ndarray, float]:
    """The smallest top set with mass >= p (the crossing token included); >= min_keep tokens."""
    probs = softmax(scores)
    keep = np.zeros(len(scores), dtype=bool)
    cum = 0.0
    margin = math.inf
    for rank, i in enumerate(order_desc(scores)):
        if cum >= p and rank >= min_keep:
            break
        keep[i] = True
        cum += probs[i]
        margin = min(margin, abs(cum - p))
    return keep, margin


def min_p(scores: np.ndarray, mp: float, min_keep: int = 1) -> tuple[np.ndarray, float]:
    """Keep p_i >= min_p * p_max (of the scores as given); keep the top min_keep."""
    probs = softmax(scores)
    cut = mp * probs.max()
    keep = probs >= cut
    margin = float(np.min(np.abs(probs[probs > 0] - cut)) / probs.max())
    return _force_top(keep, scores, min_keep), margin


def typical(scores: np.ndarray, mass: float, min_keep: int = 1) -> tuple[np.ndarray, float]:
    """Sort by |−log p_i − H| ascending; keep the shortest prefix whose mass reaches ``mass``
    (crossing token included); at least min_keep tokens."""
    probs = softmax(scores)
    h = entropy(probs)
    with np.errstate(divide="ignore"):
        dev = np.abs(-np.log(probs) - h)
    order = np.argsort(dev, kind="stable")
    keep = np.zeros(len(scores), dtype=bool)
    cum = 0.0
    margin = math.inf
    for rank, i in enumerate(order):
        keep[i] = True
        cum += probs[i]
        margin = min(margin, abs(cum - mass))
        if cum >= mass and rank + 1 >= min_keep:
            break
    return keep, margin


def epsilon(scores: np.ndarray, eps: float, min_keep: int = 1) -> tuple[np.ndarray, float]:
    """Remove p_i < ε; keep the top min_keep."""
    probs = softmax(scores)
    margin = float(np.min(np.abs(probs - eps)) / eps)
    return _force_top(probs >= eps, scores, min_keep), margin


def eta(scores: np.ndarray, eps: float, min_keep: int = 1) -> tuple[np.ndarray, float]:
    """η = min(ε, √ε · exp(−H)) with H in nats; remove p_i < η; keep the top min_keep."""
    probs = softmax(scores)
    cut = min(eps, math.sqrt(eps) * math.exp(-entropy(probs)))
    margin = float(np.min(np.abs(probs - cut)) / cut)
    return _force_top(probs >= cut, scores, min_keep), margin


#: Absolute error of an entropy partial sum that the processors compute in float32: the top
#: token's -q log q is about 1 - q, and q rounds to within 6e-8 of 1.
FLOAT32_ENTROPY_RESOLUTION = 1e-6


def _top_h(terms: np.ndarray, tau: float) -> tuple[int, float]:
    count, acc, margin = 1, terms[0], abs(terms[0] - tau)
    for term in terms[1:]:
        acc += term
        margin = min(margin, abs(acc - tau))
        if acc > tau:
            break
        count += 1
    if margin < FLOAT32_ENTROPY_RESOLUTION:
        return count, 0.0  # decided by float32 rounding of -q log q in the processor, not by the rule
    return count, margin / max(tau, 1e-12)


def top_h_paper(scores: np.ndarray, alpha: float, top_n: int = 100) -> tuple[np.ndarray, float]:
    """Official-repo Top-H: p over the whole vocabulary, top N not renormalised,
    τ = α Σ_{j≤N} −p_j log₂ p_j; keep the largest prefix with partial sum <= τ (token 1 always)."""
    probs = softmax(scores)
    idx = order_desc(scores)[:top_n]
    ps = probs[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(ps > 0, -ps * np.log2(ps), 0.0)
    count, margin = _top_h(terms, alpha * terms.sum())
    keep = np.zeros(len(scores), dtype=bool)
    keep[idx[:count]] = True
    keep[idx[1:]] &= ps[1:] > 0  # a probability that underflowed to 0 adds no mass: not kept
    return keep, margin


def top_h_official(logits: np.ndarray, alpha: float, temperature: float = 1.0, top_n: int = 100) -> np.ndarray:
    """The official ``TopH_LogitsProcessor`` (ErfanBaghaei/Top-H-Decoding ``logit_processor.py``),
    rewritten from its rule in float64: p = softmax(logits / T); over the top N sorted p
    (not renormalised) with S = Σ p_j and τ = (H(p/S) − log₂ S) · S · α, walk the prefix
    keeping token j+1 unless, with H_σ = Σ_{i≤j+1} −p_i log₂ p_i and σ = Σ_{i≤j+1} p_i,
    H_σ/σ + log₂ σ > τ/σ + log₂ σ. Token 1 is always kept. Returns the kept set
    (the official code returns the unscaled logits masked to it)."""
    probs = softmax(np.asarray(logits, dtype=np.float64) / temperature)
    idx = order_desc(probs)[:top_n]
    ps = probs[idx]
    total = ps.sum()
    renorm = ps / total
    with np.errstate(divide="ignore", invalid="ignore"):
        h_renorm = float(-np.nansum(renorm * np.log2(renorm)))
        tau = (h_renorm - math.log2(total)) * total * alpha
        kept = [int(idx[0])]
        h_acc, sigma = float(-ps[0] * np.log2(ps[0])), float(ps[0])
        for j in range(1, len(ps)):  # the official loop reads ps[j] after keeping token j-1
            h_acc += float(-ps[j] * np.log2(ps[j])) if ps[j] > 0 else 0.0
            sigma += float(ps[j])
            if h_acc / sigma + math.log2(sigma) > tau / sigma + math.log2(sigma):
                break
            kept.append(int(idx[j]))
    keep = np.zeros(len(probs), dtype=bool)
    keep[kept] = True
    return keep


def official_top_h_pipeline(logits: np.ndarray, alpha: float, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """What the official scripts sample from: ``TopH_LogitsProcessor(temperature=T)`` passed to
    ``generate(logits_processor=[...], temperature=T)`` runs before transformers' warpers, so the
    kept set comes from softmax(logits / T) and the draw from softmax(masked logits / T).
    Returns (kept set, sampling distribution)."""
    keep = top_h_official(logits, alpha, temperature)
    masked = np.where(keep, np.asarray(logits, dtype=np.float64), -np.inf)
    return keep, softmax(masked / temperature)


def top_h_hf(scores: np.ndarray, alpha: float, top_n: int = 100) -> tuple[np.ndarray, float]:
    """transformers' Top-H: the top N renormalised (q), natural log, τ = α H(q);
    keep the largest prefix with Σ −q_j ln q_j <= τ (token 1 always)."""
    idx = order_desc(scores)[:top_n]
    q = softmax(scores[idx])
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, -q * np.log(q), 0.0)
    count, margin = _top_h(terms, alpha * terms.sum())
    keep = np.zeros(len(scores), dtype=bool)
    keep[idx[:count]] = True
    return keep, margin


def mirostat_k(scores: np.ndarray, mu: float, m: int = 100) -> float:
    """Mirostat v1's k: the Zipf fit over the top m sorted probabilities and
    k = ((ε̂ 2^μ) / (1 − N^(−ε̂)))^(1/ŝ)."""
    probs = np.sort(softmax(scores))[::-1]
    n = len(probs)
    num = den = 0.0
    for i in range(min(m, n) - 1):
        t = math.log((i + 2) / (i + 1))
        b = math.log(probs[i] / probs[i + 1])
        num += t * b
        den += t * t
    s_hat = num / den
    eps = s_hat - 1.0
    ratio = 2.0**mu / math.log(n) if eps == 0 else (eps * 2.0**mu) / (1.0 - n ** (-eps))
    log_k = math.log(ratio) / s_hat if s_hat > 0 else math.inf
    return math.exp(min(log_k, 700.0))


def mirostat_v1(scores: np.ndarray, mu: float, m: int = 100) -> tuple[np.ndarray, float]:
    """Keep exactly max(floor(k), 1) most probable tokens (at most V)."""
    k = mirostat_k(scores, mu, m)
    count = int(min(max(math.floor(k), 1), len(scores)))
    keep = np.zeros(len(scores), dtype=bool)
    keep[order_desc(scores)[:count]] = True
    frac = k - math.floor(k)
    margin = min(frac, 1 - frac) / max(k, 1.0) if k < len(scores) else math.inf
    return keep, margin


def mirostat_v2(scores: np.ndarray, mu: float) -> tuple[np.ndarray, float]:
    """Keep tokens with surprise −log₂ p_i <= μ; the most probable one at least."""
    probs = softmax(scores)
    with np.errstate(divide="ignore"):
        surprise = -np.log2(probs)
    keep = surprise <= mu
    keep[int(np.argmax(probs))] = True
    margin = float(np.min(np.abs(surprise[np.isfinite(surprise)] - mu)))
    return keep, margin


TRUNCATION = {"top_k": top_k, "top_p": top_p, "min_p": min_p, "typical": typical, "epsilon": epsilon, "eta": eta}


def chain(logits: np.ndarray, names: list[str], params: dict, temperature: float, order: str,
          top_h_variant: str = "paper") -> tuple[np.ndarray, np.ndarray, float]:
    """The kept set, the sampling distribution q and the smallest margin of one row.

    hf: scores = logits / T, then each truncation on the (masked) scores in turn.
    llama.cpp: the truncations on the untempered logits, then q = softmax(masked / T); the paper
    Top-H alone computes its kept set from softmax(logits / T), as the official processor does.
    T = 0 is greedy: the argmax of the logits (hf), of the tokens the truncations left (llama.cpp).
    """
    scores = np.asarray(logits, dtype=np.float64)
    if temperature == 0 and order == "hf":  # greedy first: the truncations see one token
        keep = np.zeros(len(logits), dtype=bool)
        keep[int(np.argmax(logits))] = True
        return keep, keep.astype(np.float64), math.inf
    if order == "hf":
        scores = scores / temperature
    margin = math.inf
    for name in names:
        if name == "top_h" and top_h_variant == "paper":
            # the official processor divides by T itself, in either order (in hf the scores already are)
            tempered = scores / temperature if order == "llama.cpp" and temperature > 0 else scores
            keep, mg = top_h_paper(tempered, params["top_h"])
        elif name == "top_h":
            keep, mg = top_h_hf(scores, params["top_h"])
        else:
            keep, mg = TRUNCATION[name](scores, params[name])
        margin = min(margin, mg)
        scores = np.where(keep, scores, -np.inf)
    if order == "llama.cpp":
        if temperature == 0:  # llama.cpp's temp <= 0: the argmax of the tokens left
            best = int(np.argmax(scores))
            scores = np.where(np.arange(len(scores)) == best, scores, -np.inf)
        else:
            scores = scores / temperature
    keep = np.isfinite(scores)
    return keep, softmax(scores), margin
