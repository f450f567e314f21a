"""Mirostat's μ update on scripted token sequences; EAD's switching on a scripted entropy
sequence; EAD generation with the two built-in models (caches valid across switches)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from workers.decoding import ead
from workers.decoding.generate import Request, generate
from workers.decoding.models import LanguageModel, position_ids_from_mask
from workers.decoding.samplers import LN2, MirostatLogitsWarper, MirostatV2LogitsWarper, Sampler, SamplerConfig

P4 = torch.tensor([0.5, 0.25, 0.125, 0.125])


def test_mirostat_v2_mu_follows_the_scripted_tokens() -> None:
    """τ = 1.5 bits, η = 0.5, p = (1/2, 1/4, 1/8, 1/8): surprises 1, 2, 3, 3 bits.

    step  μ before     kept    token  S (bits) on the kept, renormalised set   μ after
    1     3            all 4   1      2                                        2.75
    2     2.75         {0,1}   0      log2(3/2) = 0.58496                      3.20752
    3     3.20752      all 4   3      3                                        2.45752
    4     2.45752      {0,1}   1      log2(3) = 1.58496                        2.41504
    """
    proc = MirostatV2LogitsWarper(tau=1.5, eta=0.5)
    logits = P4.log().unsqueeze(0)
    expected = [(4, 2.75), (2, 3.2075187496), (4, 2.4575187496), (2, 2.4150374993)]
    for token, (kept, mu_after) in zip([1, 0, 3, 1], expected, strict=True):
        out = proc(None, logits)
        assert int(torch.isfinite(out).sum()) == kept
        proc.update(torch.tensor([token]))
        assert math.isclose(float(proc.mu[0]), mu_after, rel_tol=1e-6)  # type: ignore[index]


def test_mirostat_v2_is_batched_with_one_mu_per_row_and_inactive_rows_frozen() -> None:
    proc = MirostatV2LogitsWarper(tau=1.5, eta=0.5)
    logits = P4.log().repeat(3, 1)
    proc(None, logits)
    proc.update(torch.tensor([1, 0, 3]), active=torch.tensor([True, True, False]))
    mu = proc.mu.tolist()  # type: ignore[union-attr]
    assert mu[0] == pytest.approx(2.75)
    assert mu[1] == pytest.approx(3.0 - 0.5 * (1.0 - 1.5))  # token 0: S = 1 bit
    assert mu[2] == 3.0  # inactive: unchanged


def test_mirostat_update_through_generate_style_calls_matches_explicit_updates() -> None:
    """Used inside ``model.generate``, μ is updated from the last column of ``input_ids``
    on the next call; a call that is not one token longer starts over at 2τ."""
    explicit = MirostatV2LogitsWarper(tau=1.5, eta=0.5)
    implicit = MirostatV2LogitsWarper(tau=1.5, eta=0.5)
    logits = P4.log().unsqueeze(0)
    ids = torch.tensor([[7, 7]])
    for token in [1, 0, 3, 1]:
        explicit(None, logits)
        explicit.update(torch.tensor([token]))
        implicit(ids, logits)
        ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
    implicit(ids, logits)  # applies the last pending update
    assert float(implicit.mu[0]) == pytest.approx(float(explicit.mu[0]))  # type: ignore[index]
    implicit(torch.tensor([[1, 2, 3]]), logits)  # a new generation
    assert float(implicit.mu[0]) == 3.0  # type: ignore[index]


def test_mirostat_v1_recovers_the_zipf_exponent_and_updates_mu() -> None:
    """On an exact Zipf distribution p_i ∝ (i+1)^(−s) the fit gives ŝ = s, so
    k = ((ε 2^μ)/(1 − N^(−ε)))^(1/s) with ε = s − 1, in closed form."""
    n, s, tau, eta = 1000, 1.2, 3.0, 0.1
    ranks = torch.arange(1, n + 1, dtype=torch.float64)
    logits = (-s * ranks.log()).float()[torch.randperm(n, generator=torch.Generator().manual_seed(0))]
    logits = logits.unsqueeze(0)
    mu = 2 * tau
    k_closed = ((s - 1) * 2**mu / (1 - n ** (-(s - 1)))) ** (1 / s)  # 10.65
    proc = MirostatLogitsWarper(tau=tau, eta=eta)
    out = proc(None, logits)
    assert float(proc.k(logits, torch.tensor([mu], dtype=torch.float64))[0]) == pytest.approx(k_closed, rel=1e-4)
    kept = int(torch.isfinite(out).sum())
    assert kept == math.floor(k_closed) == 10
    top = int(logits.argmax())
    proc.update(torch.tensor([top]))
    z = sum((i + 1) ** (-s) for i in range(kept))
    surprise = -math.log2(1.0 / z)  # the top token's probability on the kept, renormalised set
    assert float(proc.mu[0]) == pytest.approx(mu - eta * (surprise - tau), rel=1e-5)  # type: ignore[index]


def test_mirostat_in_the_sampler_targets_tau() -> None:
    """Over many steps the mean observed surprise approaches τ (the controller's point)."""
    torch.manual_seed(0)
    logits = torch.randn(64, 500) * 2.5
    sampler = Sampler(SamplerConfig(sampler="mirostat_v2", mirostat_tau=3.0, mirostat_eta=0.2))
    gen = torch.Generator().manual_seed(0)
    surprises = []
    for _ in range(300):
        scores = sampler.warp(logits)
        tokens = torch.multinomial(torch.softmax(scores, -1), 1, generator=gen).squeeze(-1)
        surprises.append(sampler.mirostat.update(tokens))  # type: ignore[union-attr]
    late = torch.stack(surprises[100:]).mean()
    assert abs(float(late) - 3.0) < 0.1


# ----------------------------------------------------------------------- EAD controller


def run_script(entropies: list[float], threshold: float, window: int, min_run: int) -> tuple[list[bool], ...]:
    ctl = ead.EADController(1, threshold, window, min_run)
    generated_by, after = [], []
    for h in entropies:
        generated_by.append(bool(ctl.use_large[0]))
        ctl.observe(torch.tensor([h]))
        after.append(bool(ctl.use_large[0]))
    return generated_by, after, ctl


def test_ead_switches_on_the_rolling_mean_with_a_minimum_run() -> None:
    """τ = 1 bit, w = 3, d_min = 2, entropies 0.5, 2, 2, 2, 0, 0, 0:

    step  window        H̄       target  run  switch?  model after
    1     .5            0.5      S       1    -        S
    2     .5 2          1.25     L       2    yes      L (run 0)
    3     .5 2 2        1.5      L       1    -        L
    4     2 2 2         2.0      L       2    -        L
    5     2 2 0         1.33     L       3    -        L
    6     2 0 0         0.67     S       4    yes      S (run 0)
    7     0 0 0         0        S       1    -        S
    """
    generated_by, after, ctl = run_script([0.5, 2, 2, 2, 0, 0, 0], 1.0, 3, 2)
    assert after == [False, True, True, True, True, False, False]
    assert generated_by == [False, False, True, True, True, True, False]
    assert int(ctl.switches[0]) == 2
    assert int(ctl.large_tokens[0]) == 4 and int(ctl.tokens[0]) == 7
    assert float(ctl.rolling_mean()[0]) == 0.0


def test_ead_minimum_run_delays_a_switch() -> None:
    """Same script with d_min = 3: at step 2 the run is only 2, so the switch waits for step 3;
    at step 6 the large model has run 3 tokens (4, 5, 6) and may switch back."""
    _, after, _ = run_script([0.5, 2, 2, 2, 0, 0, 0], 1.0, 3, 3)
    assert after == [False, False, True, True, True, False, False]
    _, after, _ = run_script([0.5, 2, 2, 0, 0, 0, 0], 1.0, 3, 3)
    # step 3 switches to L (H̄ = 1.5); steps 4-5: H̄ = 1.33, 0.67 -> target S but run 1, 2 < 3; step 6 switches
    assert after == [False, False, True, True, True, False, False]


def test_ead_a_mean_equal_to_the_threshold_selects_the_small_model() -> None:
    """REFERENCE.md §4: M_L only if H̄ > τ, strictly; H̄ ≤ τ (equality included) is M_S. A row
    on the large model with H̄ = τ switches to the small one; a row on the small one stays."""
    ctl = ead.EADController(2, threshold_bits=1.0, window=1, min_run=1)
    ctl.use_large = torch.tensor([True, False])
    ctl.observe(torch.tensor([1.0, 1.0]))
    assert ctl.use_large.tolist() == [False, False]
    assert ctl.switches.tolist() == [1, 0]
    ctl.observe(torch.tensor([1.0 + 2 ** -20, 1.0]))  # just above τ: the large model
    assert ctl.use_large.tolist() == [True, False]


def test_ead_rows_are_independent_and_inactive_rows_frozen() -> None:
    ctl = ead.EADController(3, 1.0, window=2, min_run=1)
    ctl.observe(torch.tensor([5.0, 0.0, 5.0]), active=torch.tensor([True, True, False]))
    assert ctl.use_large.tolist() == [True, False, False]
    assert ctl.tokens.tolist() == [1, 1, 0]
    ctl.observe(torch.tensor([0.0, 0.0, 5.0]))
    assert ctl.rolling_mean().tolist() == [2.5, 0.0, 5.0]  # row 2 has seen one value
    assert ctl.use_large.tolist() == [True, False, True]


def test_compute_saved_reproduces_the_papers_headline_pairs() -> None:
    assert ead.compute_saved(0.43, 3, 11) == pytest.approx(0.415, abs=0.005)
    assert ead.compute_saved(0.25, 15, 140) == pytest.approx(0.67, abs=0.005)


# ----------------------------------------------------------------------- EAD generation


def prompts(lm: LanguageModel, n: int = 12) -> list[list[int]]:
    return [lm.encode(f"{a:02d}+{b:02d}=") for a, b in zip(range(3, 3 + 7 * n, 7), range(90, 90 - 5 * n, -5),
                                                            strict=True)]


def test_ead_with_infinite_threshold_is_the_small_model_alone(tiny: LanguageModel, nano: LanguageModel) -> None:
    rows = prompts(tiny)
    (both,) = generate(tiny, [Request(SamplerConfig(sampler="ead", ead_threshold=math.inf), rows, 5)], 5,
                       small_model=nano)
    (alone,) = generate(nano, [Request(SamplerConfig(), rows, 5)], 5)
    assert both.outputs == alone.outputs
    assert both.logprob_sum == pytest.approx(alone.logprob_sum, abs=1e-5)
    assert sum(both.large_tokens) == 0 and sum(both.work_large) == 0  # the large model never ran


def test_ead_with_minus_infinite_threshold_hands_over_after_the_first_token(tiny: LanguageModel,
                                                                           nano: LanguageModel) -> None:
    config = SamplerConfig(sampler="ead", ead_threshold=-math.inf, ead_min_run=1, temperature=0.0)
    (gen,) = generate(tiny, [Request(config, prompts(tiny), 0)], 5, small_model=nano)
    for sources in gen.from_large:
        assert sources[0] is False and all(sources[1:])


def test_ead_caches_stay_valid_across_switches(tiny: LanguageModel, nano: LanguageModel) -> None:
    """With w = 1 and d_min = 1 the models alternate (the small one's entropy is above τ,
    the large one's below). Every token's log-probability, recorded from the cached
    forward pass of the model that generated it, equals a full, cache-free forward pass
    of that model over the whole prefix."""
    config = SamplerConfig(sampler="ead", ead_threshold=0.05, ead_window=1, ead_min_run=1, temperature=1.5)
    rows = prompts(tiny, 24)
    (gen,) = generate(tiny, [Request(config, rows, 3)], 5, small_model=nano)
    switches_back = sum(any(a and not b for a, b in itertools.pairwise(s)) for s in gen.from_large)
    assert sum(gen.switches) > len(rows) and switches_back > 0  # both directions happened
    for row, prompt in enumerate(rows):
        stop = [gen.stop_tokens[row]] if gen.stopped[row] else []
        tokens = prompt + gen.outputs[row] + stop
        total = 0.0
        for t, large in enumerate(gen.from_large[row]):
            lm = tiny if large else nano
            ids = torch.tensor([tokens[: len(prompt) + t]])
            mask = torch.ones_like(ids)
            with torch.no_grad():
                logits = lm.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)).logits
            total += float(torch.log_softmax(logits[0, -1].float(), -1)[tokens[len(prompt) + t]])
        assert total == pytest.approx(gen.logprob_sum[row], abs=1e-4)


def test_ead_needs_a_small_model_with_the_same_vocabulary(tiny: LanguageModel, char_lm: LanguageModel) -> None:
    config = SamplerConfig(sampler="ead")
    with pytest.raises(ValueError, match="small model"):
        generate(tiny, [Request(config, prompts(tiny), 0)], 3)
    with pytest.raises(ValueError, match="one vocabulary"):
        generate(tiny, [Request(config, prompts(tiny), 0)], 3, small_model=char_lm)


def test_entropy_unit_of_ead_is_bits() -> None:
    assert pytest.approx(math.log(2)) == LN2


def test_ead_is_fed_the_models_entropy_in_bits(tiny: LanguageModel, nano: LanguageModel,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """REFERENCE.md §4 ("Entropy in bits") and the ead.py docstring: EAD's rolling entropy is in
    bits, so each value the controller observes is the model entropy the sampler measured (nats)
    divided by ln 2. Spies on ``EADController.observe`` and ``Sampler.__call__`` (internal seams)."""
    observed: list[torch.Tensor] = []
    measured: list[torch.Tensor] = []
    observe, call = ead.EADController.observe, Sampler.__call__

    def spy_observe(self: ead.EADController, entropy_bits: torch.Tensor, active: torch.Tensor | None = None) -> None:
        observed.append(entropy_bits.detach().clone())
        observe(self, entropy_bits, active)

    def spy_call(self: Sampler, *args: object, **kwargs: object) -> object:
        out = call(self, *args, **kwargs)
        measured.append(out.model_entropy.detach().clone())
        return out

    monkeypatch.setattr(ead.EADController, "observe", spy_observe)
    monkeypatch.setattr(Sampler, "__call__", spy_call)
    config = SamplerConfig.from_params({"sampler": "ead", "ead_threshold": 0.5, "ead_window": 1, "ead_min_run": 1,
                                        "temperature": 1.0}, {})
    generate(tiny, [Request(config, [tiny.encode("12+30="), tiny.encode("45+11=")], 0)], 4, small_model=nano)
    assert observed and len(observed) == len(measured)
    assert any(float(m.max()) > 0.01 for m in measured)
    for bits, nats in zip(observed, measured, strict=True):
        torch.testing.assert_close(bits.double(), nats.double() / LN2, rtol=1e-6, atol=1e-9)
