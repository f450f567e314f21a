"""Every sampler's kept set and sampling distribution against the slow reference
(tests/decoding/reference.py, written from REFERENCE.md) on random logits drawn by
hypothesis, in both orders; and against transformers' own processor chain where it has one."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from transformers import GenerationConfig
from transformers.generation.logits_process import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopHLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from tests.decoding import reference as ref
from workers.decoding.samplers import (
    ArgmaxLogitsWarper,
    MirostatLogitsWarper,
    MirostatV2LogitsWarper,
    Sampler,
    SamplerConfig,
    StableTemperatureLogitsWarper,
    TopHPaperLogitsWarper,
    entropy_bits,
    entropy_nats,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MARGIN = 1e-4


@st.composite
def logit_batches(draw: st.DrawFn, max_vocab: int = 300) -> np.ndarray:
    """float32 logits (batch 1-3, vocab 2-max_vocab): Gaussian, Zipf-shaped or spiky rows."""
    batch = draw(st.integers(1, 3))
    vocab = draw(st.integers(2, max_vocab))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.floats(0.2, 6.0))
    family = draw(st.sampled_from(["gaussian", "zipf", "spiky"]))
    if family == "gaussian":
        x = rng.standard_normal((batch, vocab)) * scale
    elif family == "zipf":
        s = draw(st.floats(0.6, 2.5))
        base = -s * np.log(np.arange(1, vocab + 1))
        x = np.stack([rng.permutation(base) for _ in range(batch)]) + 0.05 * rng.standard_normal((batch, vocab))
    else:
        x = rng.standard_normal((batch, vocab)) * scale
        x[np.arange(batch), rng.integers(0, vocab, batch)] += draw(st.floats(2.0, 15.0))
    return x.astype(np.float32)


temperatures = st.one_of(st.just(1.0), st.just(0.0), st.floats(0.3, 3.0))


def check_against_reference(config: SamplerConfig, logits: np.ndarray, names: list[str], params: dict) -> None:
    """Our chain's kept set equals the reference's on every row far enough from a
    threshold, and the sampling distributions agree."""
    scores = Sampler(config).warp(torch.from_numpy(logits))
    ours_keep = torch.isfinite(scores).numpy()
    ours_q = torch.softmax(scores.double(), dim=-1).numpy()
    compared = 0
    for row in range(logits.shape[0]):
        keep, q, margin = ref.chain(logits[row], names, params, config.temperature, config.order,
                                    config.top_h_variant)
        if margin < MARGIN:
            continue
        compared += 1
        np.testing.assert_array_equal(ours_keep[row], keep, err_msg=f"row {row}: kept sets differ")
        np.testing.assert_allclose(ours_q[row], q, rtol=2e-4, atol=1e-6, err_msg=f"row {row}: q differs")
    assume(compared > 0)


ORDERS = ["hf", "llama.cpp"]


@pytest.mark.parametrize("order", ORDERS)
@SETTINGS
@given(logits=logit_batches(), t=temperatures, k=st.integers(1, 60))
def test_top_k_matches_reference(order: str, logits: np.ndarray, t: float, k: int) -> None:
    check_against_reference(SamplerConfig(sampler="top_k", top_k=k, temperature=t, order=order), logits,
                            ["top_k"], {"top_k": k})


@pytest.mark.parametrize("order", ORDERS)
@SETTINGS
@given(logits=logit_batches(), t=temperatures, p=st.floats(0.05, 0.99))
def test_top_p_matches_reference(order: str, logits: np.ndarray, t: float, p: float) -> None:
    check_against_reference(SamplerConfig(sampler="top_p", top_p=p, temperature=t, order=order), logits,
                            ["top_p"], {"top_p": p})


@pytest.mark.parametrize("order", ORDERS)
@SETTINGS
@given(logits=logit_batches(), t=temperatures, p=st.floats(0.001, 0.9))
def test_min_p_matches_reference(order: str, logits: np.ndarray, t: float, p: float) -> None:
    check_against_reference(SamplerConfig(sampler="min_p", min_p=p, temperature=t, order=order), logits,
                            ["min_p"], {"min_p": p})


@pytest.mark.parametrize("order", ORDERS)
@SETTINGS
@given(logits=logit_batches(), t=temperatures, mass=st.floats(0.05, 0.99))
def test_typical_matches_reference(order: str, logits: np.ndarray, t: float, mass: float) -> None:
    check_against_reference(SamplerConfig(sampler="typical", typical_p=mass, temperature=t, order=order), logits,
                            ["typical"], {"typical": mass})


@pytest.mark.parametrize("order", ORDERS)
@SETTINGS
@given(logits=logit_batches(), t=temperatures, eps=st.floats(1e-4, 0.2))
def test_epsilon_matches_reference(order: str, logits: np.ndarray, t: float, eps: float) -> None:
    check_against_reference(SamplerConfig(sampler="epsilon", epsilon_cutoff=eps, temperature=t, order=order),
                            logits, ["epsilon"], {"epsilon": eps})


@pytest.mark.parametrize("order", ORDERS)
@SETTINGS
@given(logits=logit_batches(), t=temperatures, eps=st.floats(1e-4, 0.2))
def test_eta_matches_reference(order: str, logits: np.ndarray, t: float, eps: float) -> None:
    check_against_reference(SamplerConfig(sampler="eta", eta_cutoff=eps, temperature=t, order=order), logits,
                            ["eta"], {"eta": eps})


@pytest.mark.parametrize("variant", ["paper", "hf"])
@pytest.mark.parametrize("order", ORDERS)
@SETTINGS
@given(logits=logit_batches(max_vocab=400), t=temperatures, alpha=st.floats(0.05, 1.0))
def test_top_h_matches_its_own_reference(variant: str, order: str, logits: np.ndarray, t: float,
                                         alpha: float) -> None:
    config = SamplerConfig(sampler="top_h", top_h=alpha, top_h_variant=variant, temperature=t, order=order)
    check_against_reference(config, logits, ["top_h"], {"top_h": alpha})


@SETTINGS
@given(logits=logit_batches(), t=st.floats(0.3, 3.0), k=st.integers(1, 40), p=st.floats(0.1, 0.95))
def test_two_truncations_apply_in_order(logits: np.ndarray, t: float, k: int, p: float) -> None:
    for order in ORDERS:
        check_against_reference(SamplerConfig(sampler=("top_p", "top_k"), top_k=k, top_p=p, temperature=t,
                                              order=order), logits, ["top_k", "top_p"], {"top_k": k, "top_p": p})


def test_top_h_variants_differ_where_the_reference_says() -> None:
    """The paper rule does not renormalise the top N: with many tokens beyond the top 100
    the two variants keep different numbers of tokens (each matching its own reference)."""
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((64, 5000)).astype(np.float32)
    paper = torch.isfinite(TopHPaperLogitsWarper(0.4)(None, torch.from_numpy(logits))).sum(-1).numpy()
    hf = torch.isfinite(TopHLogitsWarper(0.4)(None, torch.from_numpy(logits))).sum(-1).numpy()
    assert (paper != hf).any()
    for row in range(8):
        assert paper[row] == ref.top_h_paper(logits[row], 0.4)[0].sum()
        assert hf[row] == ref.top_h_hf(logits[row], 0.4)[0].sum()


def test_top_h_paper_keeps_all_top_n_at_alpha_one_and_handles_underflow() -> None:
    logits = torch.zeros(1, 150)
    assert int(torch.isfinite(TopHPaperLogitsWarper(1.0)(None, logits)).sum()) == 100
    spiky = torch.full((1, 120), -1e4)
    spiky[0, 3] = 0.0  # every other probability underflows to 0 in float32
    out = TopHPaperLogitsWarper(0.4)(None, spiky)
    assert torch.isfinite(out).sum() == 1 and torch.isfinite(out[0, 3])


def official_rows(seed: int, rows: int) -> np.ndarray:
    """Model-like logit rows (V = 5,000): Gaussian at several scales and Zipf-shaped."""
    rng = np.random.default_rng(seed)
    gauss = rng.standard_normal((rows // 2, 5000)) * rng.uniform(0.5, 3.0, (rows // 2, 1))
    base = -1.1 * np.log(np.arange(1, 5001))
    zipf = np.stack([rng.permutation(base) for _ in range(rows - rows // 2)]) + 0.1 * rng.standard_normal(
        (rows - rows // 2, 5000))
    return np.concatenate([gauss, zipf]).astype(np.float32)


@pytest.mark.parametrize("order", ORDERS)
def test_top_h_paper_equals_the_official_processor_pipeline(order: str) -> None:
    """The default Top-H (``top_h_variant: paper``) keeps, in both orders, exactly the set the
    official ``TopH_LogitsProcessor(temperature=T)`` keeps before ``generate``'s temperature
    warper, i.e. from softmax(logits / T), and samples from the same distribution: 2,000 rows,
    T in {0.5, 0.8, 1, 1.5, 2}, α in {0.2, 0.4, 0.6, 0.9}; 0 mismatches outside float32 ties.
    (Before, the llama.cpp order computed the set from the untempered logits; see the next test.)"""
    compared = 0
    for t_index, t in enumerate((0.5, 0.8, 1.0, 1.5, 2.0)):
        for a_index, alpha in enumerate((0.2, 0.4, 0.6, 0.9)):
            logits = official_rows(10 * t_index + a_index, 100)
            scores = Sampler(SamplerConfig(sampler="top_h", top_h=alpha, temperature=t, order=order)).warp(
                torch.from_numpy(logits))
            ours_keep = torch.isfinite(scores).numpy()
            ours_q = torch.softmax(scores.double(), dim=-1).numpy()
            for row in range(len(logits)):
                if ref.top_h_paper(logits[row].astype(np.float64) / t, alpha)[1] < MARGIN:
                    continue  # a float32 tie at the threshold
                keep, q = ref.official_top_h_pipeline(logits[row], alpha, t)
                compared += 1
                np.testing.assert_array_equal(ours_keep[row], keep, err_msg=f"T={t} alpha={alpha} row {row}")
                np.testing.assert_allclose(ours_q[row], q, rtol=2e-4, atol=1e-7)
    assert compared >= 1900


def test_top_h_paper_kept_count_at_t2_is_the_official_one() -> None:
    """The mean kept-set size at T = 2, α = 0.4 in the llama.cpp order equals the official
    processor's: 24.9 tokens on these 200 rows (the old rule, from the untempered logits, kept 13.5)."""
    logits = official_rows(99, 200)
    scores = Sampler(SamplerConfig(sampler="top_h", top_h=0.4, temperature=2.0, order="llama.cpp")).warp(
        torch.from_numpy(logits))
    ours = torch.isfinite(scores).sum(-1).double().mean().item()
    official = float(np.mean([ref.official_top_h_pipeline(row, 0.4, 2.0)[0].sum() for row in logits]))
    assert ours == pytest.approx(official, abs=0.05)
    assert official == pytest.approx(24.86, abs=0.01)


def test_top_h_defaults_to_the_paper_variant() -> None:
    assert SamplerConfig().top_h_variant == "paper"
    assert SamplerConfig.from_params({"sampler": "top_h"}).top_h_variant == "paper"
    (paper,) = SamplerConfig(sampler="top_h").logits_processors()
    assert isinstance(paper, TopHPaperLogitsWarper) and paper.temperature == 1.0
    hf_chain_types = [type(p) for p in SamplerConfig(sampler="top_h", top_h_variant="hf",
                                                     temperature=2.0).logits_processors()]
    assert hf_chain_types == [StableTemperatureLogitsWarper, TopHLogitsWarper]
    # llama.cpp order: the paper Top-H divides by T itself, then temperature reshapes what is kept
    llama = SamplerConfig(sampler="top_h", temperature=2.0, order="llama.cpp").logits_processors()
    assert [type(p) for p in llama] == [TopHPaperLogitsWarper, StableTemperatureLogitsWarper]
    assert llama[0].temperature == 2.0
    greedy = SamplerConfig(sampler="top_h", temperature=0.0, order="llama.cpp").logits_processors()
    assert greedy[0].temperature == 1.0 and isinstance(greedy[1], ArgmaxLogitsWarper)


# ----------------------------------------------------------------------- vs transformers


def hf_chain(tiny_model: torch.nn.Module, **kwargs: float) -> list:
    config = GenerationConfig(do_sample=True, **{"top_k": None, **kwargs})
    return tiny_model._get_logits_processor(generation_config=config, input_ids_seq_length=1,
                                            encoder_input_ids=None, prefix_allowed_tokens_fn=None,
                                            logits_processor=None, device="cpu", model_kwargs={})


HF_CASES = [
    ("top_k", "top_k", st.integers(1, 60)),
    ("top_p", "top_p", st.floats(0.05, 0.99)),
    ("min_p", "min_p", st.floats(0.001, 0.9)),
    ("typical", "typical_p", st.floats(0.05, 0.99)),
    ("epsilon", "epsilon_cutoff", st.floats(1e-4, 0.2)),
    ("eta", "eta_cutoff", st.floats(1e-4, 0.2)),
    ("top_h", "top_h", st.floats(0.05, 1.0)),
]


@pytest.mark.parametrize(("sampler", "field", "values"), HF_CASES, ids=[c[0] for c in HF_CASES])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_hf_order_equals_transformers_generate_chain(tiny, sampler: str, field: str, values: st.SearchStrategy,
                                                     data: st.DataObject) -> None:
    """``order: hf`` builds exactly the chain ``generate`` builds for the same GenerationConfig."""
    logits = torch.from_numpy(data.draw(logit_batches()))
    value = data.draw(values)
    t = data.draw(st.floats(0.3, 3.0))
    # transformers' Top-H is the hf variant (the default is the paper's, tested against the official rule above)
    variant = {"top_h_variant": "hf"} if sampler == "top_h" else {}
    params = {"sampler": sampler, field: value, "temperature": t, **variant}
    ours = SamplerConfig.from_params(params).logits_processors()
    theirs = hf_chain(tiny.model, temperature=t, **{field: value})
    # the same processors in the same order (ours a subclass where it computes the same
    # distribution more stably: StableTemperatureLogitsWarper); the scores compared below
    assert len(ours) == len(theirs) and all(isinstance(o, type(t)) for o, t in zip(ours, theirs, strict=True))
    a, b = logits.clone(), logits.clone()
    for p in ours:
        a = p(None, a)
    for p in theirs:
        b = p(None, b)
    assert torch.equal(torch.isfinite(a), torch.isfinite(b))
    torch.testing.assert_close(torch.softmax(a, -1), torch.softmax(b, -1))


def hard_rows(vocab: int = 400, seed: int = 0) -> torch.Tensor:
    """Rows a random draw rarely gives: all tied, nearly flat, one token far ahead, many
    ties, a third of the vocabulary at −inf, only 5 finite entries."""
    rng = np.random.default_rng(seed)
    peaked, masked, few = (rng.standard_normal(vocab) * 3 for _ in range(3))
    peaked[7] += 30.0
    masked[rng.choice(vocab, vocab // 3, replace=False)] = -np.inf
    few[5:] = -np.inf
    rows = [np.zeros(vocab), rng.standard_normal(vocab) * 0.01, peaked, np.round(rng.standard_normal(vocab) * 2) / 2,
            masked, few]
    return torch.tensor(np.stack(rows), dtype=torch.float32)


WARPERS = {"top_k": ("top_k", TopKLogitsWarper, "top_k", (1, 5, 50)),
           "top_p": ("top_p", TopPLogitsWarper, "top_p", (0.05, 0.5, 0.95)),
           "min_p": ("min_p", MinPLogitsWarper, "min_p", (0.001, 0.1, 0.9)),
           "typical": ("typical_p", TypicalLogitsWarper, "mass", (0.05, 0.5, 0.95)),
           "epsilon": ("epsilon_cutoff", EpsilonLogitsWarper, "epsilon", (3e-4, 4e-3, 0.2)),
           "eta": ("eta_cutoff", EtaLogitsWarper, "epsilon", (3e-4, 4e-3, 0.2))}


@pytest.mark.parametrize("sampler", list(WARPERS))
def test_min_tokens_to_keep_and_hard_rows_equal_transformers_warpers(sampler: str) -> None:
    """``min_tokens_to_keep`` (1, 3, 10) reaches each transformers warper, and on tied, flat,
    peaked and −inf rows the hf chain is Temperature → warper built by hand: the same kept set
    and the same distribution, exactly (REFERENCE.md §3's rules are those classes' own)."""
    field, cls, arg, values = WARPERS[sampler]
    logits = hard_rows()
    for value in values:
        for t in (0.5, 1.0, 1.7):
            for keep in (1, 3, 10):
                ours = Sampler(SamplerConfig(sampler=sampler, temperature=t, min_tokens_to_keep=keep,
                                             **{field: value})).warp(logits)
                theirs = TemperatureLogitsWarper(t)(None, logits.clone()) if t != 1.0 else logits.clone()
                theirs = cls(**{arg: value, "min_tokens_to_keep": keep})(None, theirs)
                assert torch.equal(torch.isfinite(ours), torch.isfinite(theirs)), (value, t, keep)
                assert torch.equal(torch.softmax(ours, -1), torch.softmax(theirs, -1)), (value, t, keep)
                # every row keeps at least min(keep, its finite tokens)
                finite = torch.isfinite(logits).sum(-1).clamp(max=keep)
                assert bool((torch.isfinite(ours).sum(-1) >= finite).all()), (value, t, keep)


# ----------------------------------------------------------------------- mirostat vs reference


@SETTINGS
@given(logits=logit_batches(max_vocab=400), mu=st.floats(0.0, 12.0))
def test_mirostat_v1_kept_set_matches_reference(logits: np.ndarray, mu: float) -> None:
    proc = MirostatLogitsWarper(tau=3.0, eta=0.1)
    proc.reset(logits.shape[0])
    proc.mu.fill_(mu)  # type: ignore[union-attr]
    out = proc(None, torch.from_numpy(logits))
    compared = 0
    for row in range(logits.shape[0]):
        keep, margin = ref.mirostat_v1(logits[row], mu)
        if margin < MARGIN:
            continue
        compared += 1
        np.testing.assert_array_equal(torch.isfinite(out[row]).numpy(), keep)
        k = float(proc.k(torch.from_numpy(logits[row : row + 1]), torch.tensor([mu], dtype=torch.float64))[0])
        assert math.isclose(min(k, logits.shape[1]), min(ref.mirostat_k(logits[row], mu), logits.shape[1]),
                            rel_tol=1e-4)
    assume(compared > 0)


@SETTINGS
@given(logits=logit_batches(max_vocab=400), mu=st.floats(0.0, 12.0))
def test_mirostat_v2_kept_set_matches_reference(logits: np.ndarray, mu: float) -> None:
    proc = MirostatV2LogitsWarper(tau=3.0, eta=0.1)
    proc.reset(logits.shape[0])
    proc.mu.fill_(mu)  # type: ignore[union-attr]
    out = proc(None, torch.from_numpy(logits))
    compared = 0
    for row in range(logits.shape[0]):
        keep, margin = ref.mirostat_v2(logits[row], mu)
        if margin < MARGIN:
            continue
        compared += 1
        np.testing.assert_array_equal(torch.isfinite(out[row]).numpy(), keep)
    assume(compared > 0)


@pytest.mark.parametrize("variant", ["mirostat", "mirostat_v2"])
def test_mirostat_applies_temperature_first_in_both_orders(variant: str) -> None:
    for order in ORDERS:
        chain = SamplerConfig(sampler=variant, temperature=0.7, order=order).logits_processors()
        assert isinstance(chain[0], TemperatureLogitsWarper)
        assert isinstance(chain[1], MirostatLogitsWarper | MirostatV2LogitsWarper)


# ----------------------------------------------------------------------- order and config


def test_order_puts_temperature_first_or_last() -> None:
    hf = SamplerConfig(sampler=("min_p", "top_k", "typical", "top_p"), temperature=0.5).logits_processors()
    assert [type(p) for p in hf] == [StableTemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper,
                                     MinPLogitsWarper, TypicalLogitsWarper]
    llama = SamplerConfig(sampler=("min_p", "top_k", "typical", "top_p"), temperature=0.5,
                          order="llama.cpp").logits_processors()
    assert [type(p) for p in llama] == [TopKLogitsWarper, TypicalLogitsWarper, TopPLogitsWarper,
                                        MinPLogitsWarper, StableTemperatureLogitsWarper]


def test_min_p_keeps_different_sets_in_the_two_orders() -> None:
    """p ∝ exp([2, 0.5, -1]); min_p 0.2. Untempered (llama.cpp): p₂/p₀ = e⁻³ = 0.05 < 0.2, so
    token 2 goes (p₁/p₀ = e⁻¹·⁵ = 0.22 stays). At T = 2 first (hf): p₂/p₀ = e⁻¹·⁵ ≥ 0.2 stays."""
    logits = torch.tensor([[2.0, 0.5, -1.0]])
    hf = Sampler(SamplerConfig(sampler="min_p", min_p=0.2, temperature=2.0)).warp(logits)
    llama = Sampler(SamplerConfig(sampler="min_p", min_p=0.2, temperature=2.0, order="llama.cpp")).warp(logits)
    assert torch.isfinite(hf).tolist() == [[True, True, True]]
    assert torch.isfinite(llama).tolist() == [[True, True, False]]
    # llama.cpp's sampling distribution: the two kept logits divided by T = 2, renormalised
    torch.testing.assert_close(torch.softmax(llama, -1)[0, :2], torch.softmax(torch.tensor([1.0, 0.25]), -1))


def test_temperature_zero_is_greedy() -> None:
    logits = torch.tensor([[0.1, 3.0, 2.9], [5.0, -1.0, 4.0]])
    out = Sampler(SamplerConfig(sampler="top_p", top_p=0.99, temperature=0.0))(logits)
    assert out.tokens.tolist() == [1, 0]
    assert out.kept.tolist() == [1, 1]
    assert out.sampling_entropy.tolist() == [0.0, 0.0]
    assert isinstance(SamplerConfig(temperature=0.0).logits_processors()[0], ArgmaxLogitsWarper)


def test_step_measures() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.125, 0.125]]))
    out = Sampler(SamplerConfig(sampler="top_k", top_k=2))(logits, generator=torch.Generator().manual_seed(0))
    assert math.isclose(float(out.model_entropy[0]), 1.75 * math.log(2), rel_tol=1e-6)  # 1.75 bits
    q = torch.tensor([2 / 3, 1 / 3])
    assert math.isclose(float(out.sampling_entropy[0]), float(-(q * q.log()).sum()), rel_tol=1e-6)
    assert int(out.kept[0]) == 2
    assert int(out.tokens[0]) in (0, 1)
    assert math.isclose(float(out.logprob[0]), float(logits[0, out.tokens[0]]), rel_tol=1e-6)
    assert math.isclose(float(entropy_bits(logits)[0]), 1.75, rel_tol=1e-6)
    assert math.isclose(float(entropy_nats(logits)[0]), 1.75 * math.log(2), rel_tol=1e-6)


def test_sampling_follows_the_truncated_distribution() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])).repeat(20000, 1)
    out = Sampler(SamplerConfig(sampler="top_p", top_p=0.75))(logits, generator=torch.Generator().manual_seed(1))
    freq = torch.bincount(out.tokens, minlength=4).double() / 20000
    torch.testing.assert_close(freq, torch.tensor([0.625, 0.375, 0.0, 0.0], dtype=torch.float64), atol=0.015,
                               rtol=0)


@pytest.mark.parametrize(("params", "message"), [
    ({"sampler": "nucleus"}, "sampler must be one of"),
    ({"sampler": "top_p", "top_p": 0.0}, "top_p must be in"),
    ({"sampler": "top_h", "top_h": 1.5}, "top_h must be in"),
    ({"sampler": "typical", "typical_p": -1}, "typical_p must be in"),
    ({"temperature": -0.1}, "temperature must be"),
    ({"order": "vllm"}, "order must be one of"),
    ({"top_h_variant": "v3"}, "top_h_variant"),
    ({"sampler": "ead", "ead_sampler": "mirostat"}, "ead_sampler"),
    ({"sampler": "mirostat", "mirostat_tau": 0}, "mirostat_tau"),
    ({"sampler": "top_k", "top_k": "ten"}, "top_k must be a number"),
    ({"temprature": 1.0}, "unknown decoding parameter"),
])
def test_bad_parameters_are_refused(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SamplerConfig.from_params(params)


def test_from_params_rounds_integers_and_ignores_none() -> None:
    config = SamplerConfig.from_params({"sampler": "top_k", "top_k": 12.4, "top_p": None}, {"order": "llama.cpp"})
    assert config.top_k == 12 and config.top_p == 0.9 and config.order == "llama.cpp"
    # only the chosen sampler's own parameter is used
    assert [type(p) for p in config.logits_processors()] == [TopKLogitsWarper]


@pytest.mark.parametrize("order", ["hf", "llama.cpp"])
@pytest.mark.parametrize("sampler", ["none", "top_p", "top_h", "mirostat_v2"])
def test_a_tiny_temperature_is_greedy_not_nan(order: str, sampler: str) -> None:
    """softmax(s / T) at T = 1e-40: s / T passes float32's range (inf − inf: NaN, and
    multinomial refused the whole batch); shifted by the row's largest score it is greedy."""
    logits = torch.tensor([[2.0, 5.0, 1.0, 5.0 - 1e-3], [0.1, 0.0, 3.0, -1.0]])
    out = Sampler(SamplerConfig(sampler=sampler, temperature=1e-40, order=order))(
        logits, generator=torch.Generator().manual_seed(0))
    assert out.tokens.tolist() == [1, 2]
    assert torch.isfinite(out.sampling_entropy).all() and out.sampling_entropy.abs().max() < 1e-6
    assert torch.isfinite(out.tempered_entropy).all()


@pytest.mark.parametrize("order", ["hf", "llama.cpp"])
@pytest.mark.parametrize("temperature", [1e-40, 1e-3])
def test_the_kept_set_counts_the_tokens_that_can_be_drawn(order: str, temperature: float) -> None:
    """kept = |{i : q_i > 0}|. At T = 1e-3 every score stays finite while q underflows to 0
    for all but the top token (a gap of 0.5 is 500 nats), so counting finite scores gave the
    whole vocabulary for what is greedy decoding."""
    logits = torch.tensor([[2.0, 5.0, 1.0, 4.5], [0.1, 0.0, 3.0, -1.0]])
    cold = Sampler(SamplerConfig(sampler="none", temperature=temperature, order=order))(logits)
    assert cold.kept.tolist() == [1, 1]
    warm = Sampler(SamplerConfig(sampler="none", temperature=1.0, order=order))(logits)
    assert warm.kept.tolist() == [4, 4]


def test_the_stable_temperature_is_transformers_distribution() -> None:
    scores = torch.randn(4, 50, generator=torch.Generator().manual_seed(1)) * 4
    for t in (0.3, 1.7, 25.0):
        ours = torch.softmax(StableTemperatureLogitsWarper(t)(None, scores), -1)
        theirs = torch.softmax(TemperatureLogitsWarper(t)(None, scores), -1)
        assert torch.allclose(ours, theirs, atol=1e-6)
