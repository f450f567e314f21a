"""The ``decoding`` evaluator end to end (built-in arithmetic model, a local English model),
its tasks, its measures, and the runner's contract checks."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from workers.contract import EvalContext
from workers.decoding import arith
from workers.decoding.generate import Generation
from workers.decoding.measures import corpus_distinct_n, distinct_n, repetition_rate
from workers.decoding.models import load_model
from workers.decoding.tasks import ArithmeticTask, Item, extract_number, pydoc_paragraphs
from workers.evaluators.decoding import MEASURES, DecodingEvaluator
from workers.runner import EvaluationTask, run_tasks


@pytest.fixture(scope="module")
def arith_eval() -> DecodingEvaluator:
    ev = DecodingEvaluator()
    ev.setup({"model": "builtin:arith-tiny", "task": "arithmetic", "num_prompts": 24, "samples_per_prompt": 4},
             EvalContext())
    return ev


def run(ev: DecodingEvaluator, params: list[dict], seeds: list[int] | None = None) -> list[dict]:
    seeds = seeds or list(range(len(params)))
    return ev.evaluate_batch(params, EvalContext(seed=seeds[0], seeds=seeds))


def test_temperature_and_truncation_trade_accuracy_against_diversity(arith_eval: DecodingEvaluator) -> None:
    greedy, hot, hot_min_p, mirostat = run(arith_eval, [
        {"sampler": "none", "temperature": 0.0},
        {"sampler": "none", "temperature": 6.0},
        {"sampler": "min_p", "min_p": 0.3, "temperature": 6.0},
        {"sampler": "mirostat_v2", "mirostat_tau": 0.5, "temperature": 6.0},
    ])
    for result in (greedy, hot, hot_min_p, mirostat):
        assert set(MEASURES) <= set(result["measures"])
        assert all(math.isfinite(v) for v in result["measures"].values())
        assert result["metrics"]["tokens_per_s"] > 0
    assert greedy["objective"] >= 0.9
    assert greedy["measures"]["mean_entropy"] == 0.0 and greedy["measures"]["kept_set_size"] == 1.0
    assert greedy["measures"]["distinct_2"] <= 0.3  # four identical samples per prompt
    assert hot["objective"] < 0.5 < greedy["objective"]
    assert hot["measures"]["mean_entropy"] > 1.0 and hot["measures"]["distinct_2"] > 0.8
    assert hot["measures"]["kept_set_size"] == arith.VOCAB_SIZE
    # truncation buys accuracy back at the same temperature, with less entropy and a smaller kept set
    assert hot_min_p["objective"] > hot["objective"]
    assert hot_min_p["measures"]["mean_entropy"] < hot["measures"]["mean_entropy"]
    assert hot_min_p["measures"]["kept_set_size"] < hot["measures"]["kept_set_size"]
    assert mirostat["objective"] > hot["objective"] and "mirostat_mu_final" in mirostat["metrics"]
    # the model's own entropy does not depend on the decoding; the tempered one does
    assert hot["measures"]["tempered_entropy"] > 10 * hot["measures"]["model_entropy"]
    assert greedy["measures"]["ead_large_fraction"] == 1.0 and greedy["measures"]["ead_compute_saved"] == 0.0


def test_same_seed_same_result_other_seed_other_samples(arith_eval: DecodingEvaluator) -> None:
    params = {"sampler": "top_p", "top_p": 0.95, "temperature": 5.0}
    a, b, c = run(arith_eval, [params, params, params], seeds=[1, 1, 2])
    # the same tokens; the entropies agree to float rounding (the rows sit at other places of the batch)
    assert a["objective"] == b["objective"] and a["metrics"]["examples"] == b["metrics"]["examples"]
    assert a["measures"] == pytest.approx(b["measures"], rel=1e-6)
    (alone,) = run(arith_eval, [params], seeds=[1])
    assert alone["measures"] == pytest.approx(a["measures"], rel=1e-6)
    assert (a["measures"], a["metrics"]["examples"]) != (c["measures"], c["metrics"]["examples"])


def test_a_bad_configuration_fails_alone(arith_eval: DecodingEvaluator) -> None:
    results = run(arith_eval, [{"sampler": "top_p", "top_p": 2.0}, {"sampler": "none", "temperature": 0.0}])
    assert math.isnan(results[0]["objective"]) and "top_p must be in" in results[0]["metrics"]["error"]
    assert results[1]["objective"] >= 0.9


def test_a_campaigns_own_parameter_is_left_unread_and_a_misspelt_one_fails(arith_eval: DecodingEvaluator) -> None:
    """``layers`` (a space parameter the check took: not a decoding parameter, nor like
    one) is passed by and leaves the decoding as it was; ``top_pp`` (a misspelling the
    check refuses) still fails its configuration alone, as an unknown parameter."""
    params = {"sampler": "top_p", "top_p": 0.9, "temperature": 1.0}
    with_layers, misspelt, alone = run(arith_eval, [{**params, "layers": 5, "w": [0.0, 1.0]},
                                                   {**params, "top_pp": 0.5}, params], seeds=[3, 4, 3])
    assert math.isfinite(with_layers["objective"])
    assert with_layers["metrics"]["examples"] == alone["metrics"]["examples"]
    assert with_layers["measures"] == pytest.approx(alone["measures"], rel=1e-6)
    assert math.isnan(misspelt["objective"])
    assert "unknown decoding parameter(s) top_pp" in misspelt["metrics"]["error"]


def test_a_tiny_temperature_is_greedy_and_its_batch_goes_on(arith_eval: DecodingEvaluator) -> None:
    """T = 1e-40 passed float32's range in scores / T, and the NaN failed every configuration
    of the batch; now it decodes as greedy does, and the others of the batch are done."""
    tiny, warm, greedy = run(arith_eval, [{"sampler": "none", "temperature": 1e-40},
                                          {"sampler": "none", "temperature": 0.7},
                                          {"sampler": "none", "temperature": 0.0}])
    assert tiny["objective"] == greedy["objective"] >= 0.9
    assert tiny["measures"]["mean_entropy"] == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(warm["objective"])


@pytest.mark.parametrize(("sampler", "error"), [
    ("mirostat", RuntimeError("probability tensor contains either inf, nan or element < 0")),
    ("typical", OverflowError("int too big to convert")),
], ids=["torch-error", "overflow"])
def test_a_row_that_fails_the_batched_step_fails_alone(arith_eval: DecodingEvaluator, monkeypatch: pytest.MonkeyPatch,
                                                       sampler: str, error: Exception) -> None:
    """An error raised for the whole batch (torch's multinomial on one bad row) is found by
    running each configuration alone: only its own evaluation fails, with its message. Any
    error: an ``OverflowError`` (``ead_min_run: 1e20`` rounded past 64 bits had raised one)
    escaped the evaluator and failed every configuration of the batch, the plain ones too."""
    import workers.evaluators.decoding as module

    real = module.generate

    def fails_with(model: Any, requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        if any(r.config.sampler == sampler for r in requests):
            raise error
        return real(model, requests, *args, **kwargs)

    monkeypatch.setattr(module, "generate", fails_with)
    bad, good = run(arith_eval, [{"sampler": sampler}, {"sampler": "none", "temperature": 0.0}])
    assert math.isnan(bad["objective"]) and bad["error"] == f"{type(error).__name__}: {error}"
    assert good["objective"] >= 0.9


def test_an_ead_run_past_its_bound_fails_alone(arith_eval: DecodingEvaluator) -> None:
    huge, plain = run(arith_eval, [{"sampler": "ead", "ead_min_run": 1e20}, {"sampler": "none", "temperature": 0.0}])
    assert huge["error"] == "ValueError: ead_min_run must be in [1, 1000000], got 100000000000000000000"
    assert plain["objective"] >= 0.9


def test_runner_keeps_an_evaluators_reason_for_failing(arith_eval: DecodingEvaluator) -> None:
    (failed,) = run_tasks(arith_eval, [EvaluationTask(1, 0, {"sampler": "top_p", "top_p": 0.0}, seed=0)],
                          ["mean_entropy", "distinct_2"], EvalContext())
    assert failed.status == "failed" and failed.error.startswith("ValueError: top_p must be in")


def test_ead_reports_its_fraction_and_savings(arith_eval: DecodingEvaluator) -> None:
    low, high = run(arith_eval, [
        {"sampler": "ead", "ead_threshold": 0.05, "ead_window": 1, "ead_min_run": 1, "temperature": 0.0},
        {"sampler": "ead", "ead_threshold": 100.0, "temperature": 0.0},
    ])
    assert 0.0 < low["measures"]["ead_large_fraction"] < 1.0
    assert high["measures"]["ead_large_fraction"] == 0.0
    ratio = high["metrics"]["ead_param_ratio"]
    for r in (low, high):
        f = r["measures"]["ead_large_fraction"]
        assert r["measures"]["ead_compute_saved"] == pytest.approx((1 - f) * (1 - ratio))
    assert high["metrics"]["ead_compute_saved_actual"] == pytest.approx(1 - ratio, abs=0.01)
    assert low["objective"] > high["objective"]  # the large model rescues accuracy
    assert low["metrics"]["ead_small_model"] == "builtin:arith-nano"


def test_runner_marks_done_and_failed(arith_eval: DecodingEvaluator) -> None:
    tasks = [EvaluationTask(1, 0, {"sampler": "min_p", "min_p": 0.1, "temperature": 2.0}, seed=0),
             EvaluationTask(2, 1, {"sampler": "mirostat", "mirostat_tau": -1.0}, seed=1)]
    done, failed = run_tasks(arith_eval, tasks, ["mean_entropy", "distinct_2"], EvalContext())
    assert done.status == "done" and set(done.measures) >= {"mean_entropy", "distinct_2"}
    assert failed.status == "failed" and "mirostat_tau" in (failed.metrics or {}).get("error", "")


def test_setup_refuses_bad_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown decoding config key"):
        DecodingEvaluator().setup({"modle": "builtin:arith-tiny"}, EvalContext())
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "gone")):
        DecodingEvaluator().setup({"model": str(tmp_path / "gone")}, EvalContext())
    with pytest.raises(ValueError, match="covers English text"):
        DecodingEvaluator().setup({"task": "continuation", "num_prompts": 2}, EvalContext())
    with pytest.raises(ValueError, match="order must be"):
        DecodingEvaluator().setup({"defaults": {"order": "sideways"}}, EvalContext())
    with pytest.raises(ValueError, match="max_new_tokens 40 does not fit"):
        DecodingEvaluator().setup({"max_new_tokens": 40}, EvalContext())


def test_defaults_set_the_order_of_every_evaluation() -> None:
    ev = DecodingEvaluator()
    ev.setup({"num_prompts": 4, "samples_per_prompt": 1, "defaults": {"order": "llama.cpp"}}, EvalContext())
    (result,) = run(ev, [{"sampler": "min_p", "min_p": 0.2, "temperature": 3.0}])
    assert result["metrics"]["config"]["order"] == "llama.cpp"


# ----------------------------------------------------------------------- tasks


def test_jsonl_task_exact_and_numeric(tmp_path: Path) -> None:
    problems = arith.heldout_problems()[1][:8].tolist()
    exact = tmp_path / "exact.jsonl"
    exact.write_text("".join(json.dumps({"prompt": arith.prompt_text(a, b), "answer": arith.answer_text(a, b)})
                             + "\n" for a, b in problems))
    numeric = tmp_path / "numeric.jsonl"
    numeric.write_text("".join(json.dumps({"q": arith.prompt_text(a, b), "a": f"so #### {arith.answer_text(a, b)}"})
                               + "\n" for a, b in problems))
    ev = DecodingEvaluator()
    ev.setup({"task": "jsonl", "data": str(exact), "samples_per_prompt": 2}, EvalContext())
    assert len(ev.task.items) == 8
    (result,) = run(ev, [{"temperature": 0.0}])
    assert result["objective"] == 1.0 and result["metrics"]["accuracy"] == 1.0
    ev = DecodingEvaluator()
    ev.setup({"task": "jsonl", "data": str(numeric), "prompt_field": "q", "answer_field": "a", "match": "numeric",
              "num_prompts": 5, "samples_per_prompt": 1}, EvalContext())
    assert len(ev.task.items) == 5
    (result,) = run(ev, [{"temperature": 0.0}])
    assert result["objective"] == 1.0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "1+1="}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: needs fields"):
        DecodingEvaluator().setup({"task": "jsonl", "data": str(bad)}, EvalContext())


def test_extract_number_gsm8k_style() -> None:
    assert extract_number("Natalia sold 48/2 = 24 clips.\n#### 72") == 72
    assert extract_number("so the answer is 1,234.5 apples, not 3") == 3
    assert extract_number("The answer: 1,234.5 apples", r"answer: ([\d,\.]+)") == 1234.5
    assert extract_number("no digits here") is None


def test_continuation_task_on_a_local_english_model(char_model_dir: Path) -> None:
    """Coherence is the mean log-likelihood per token; by default from the generating
    model's own log-probabilities, with ``reference_model`` by a teacher-forced pass:
    the same model both ways gives the same number."""
    config = {"model": str(char_model_dir), "task": "continuation", "num_prompts": 3, "samples_per_prompt": 2,
              "max_new_tokens": 12, "prompt_words": 6}
    own, scored = DecodingEvaluator(), DecodingEvaluator()
    own.setup(config, EvalContext())
    scored.setup({**config, "reference_model": str(char_model_dir)}, EvalContext())
    assert all(len(item.prompt.split()) == 6 for item in own.task.items)
    params = [{"sampler": "typical", "typical_p": 0.9, "temperature": 0.8}]
    (a,) = run(own, params)
    (b,) = run(scored, params)
    assert a["metrics"]["coherence"] == a["objective"] < 0
    assert a["objective"] == pytest.approx(b["objective"], abs=1e-4)
    assert 0 <= a["measures"]["repetition_rate"] <= 1 and a["measures"]["mean_length"] > 0


def test_pydoc_paragraphs_are_prose() -> None:
    paragraphs = pydoc_paragraphs()
    assert len(paragraphs) > 500
    assert all(len(p.split()) >= 12 and "****" not in p for p in paragraphs)


# ----------------------------------------------------------------------- measures


def test_distinct_n_is_taken_within_each_prompts_samples() -> None:
    same = [[[1, 2, 3], [1, 2, 3]]]  # two identical samples: 2 distinct bigrams of 4
    varied = [[[1, 2, 3], [3, 2, 1]]]  # all 4 bigrams distinct
    assert distinct_n(same, 2) == 0.5 and distinct_n(varied, 2) == 1.0
    assert distinct_n(same + varied, 2) == 0.75  # the mean over prompts
    assert distinct_n([[[1]]], 2) == 0.0  # nothing to count
    assert corpus_distinct_n([[1, 2, 3], [1, 2, 3]], 1) == 0.5


def test_repetition_rate_counts_repeated_ngrams_within_a_sequence() -> None:
    assert repetition_rate([[1, 2, 1, 2, 1, 2]], n=2) == pytest.approx(3 / 5)  # 12 21 12 21 12
    assert repetition_rate([[1, 2, 3, 4]], n=2) == 0.0
    assert repetition_rate([[1, 1, 1], [5]], n=1) == pytest.approx(2 / 4)


def test_repetition_rate_does_not_count_an_ngram_seen_in_another_sequence() -> None:
    """workers/decoding/measures.py: seq-rep-n counts the n-grams "that repeat an earlier n-gram
    of the same sequence"; the same n-gram in another sample is no repeat."""
    assert repetition_rate([[1, 2], [1, 2]], n=1) == 0.0
    assert repetition_rate([[7, 8, 9], [9, 8, 7], [7]], n=2) == 0.0


def scripted_generation() -> Generation:
    """Four rows (2 prompts x 2 samples) with known tokens, entropies and large-model tokens;
    ``n_tokens`` counts the stop token where a row stopped (the last one did not): 19 in all."""
    outputs = [[1, 2, 1, 2, 1], [1, 2, 1, 2, 1], [3, 4, 5], [5, 4, 3]]
    n_tokens = [6, 6, 4, 3]
    return Generation(
        outputs=outputs, stopped=[True, True, True, False], stop_tokens=[arith.EOS_ID] * 3 + [None],
        n_tokens=n_tokens, model_entropy_sum=[1.0] * 4, tempered_entropy_sum=[2.0] * 4,
        sampling_entropy_sum=[0.6, 1.2, 0.4, 0.7], kept_sum=[6.0, 6.0, 4.0, 3.0], logprob_sum=[-1.0] * 4,
        large_tokens=[6, 3, 4, 0], from_large=[[True] * n for n in n_tokens], switches=[0] * 4,
        work_large=[0] * 4, work_small=[0] * 4, mirostat_mu=None, seconds=1.0, batch_tokens=19)


def test_the_reported_measures_are_token_weighted_nats_with_the_configs_repetition_n(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """workers/evaluators/decoding.py module docstring and docs/decoding.md: the measures are
    token-weighted means over every generated token (stop token included), ``mean_entropy`` in
    nats; ``distinct_2`` within each prompt's samples; ``repetition_rate`` is seq-rep-n with the
    config's ``repetition_n``; the metrics hold corpus-level distinct-1 and distinct-2.

    The module's ``generate`` is replaced by one scripted :class:`Generation` (a seam of the
    evaluator module), so that every value is known exactly."""
    import workers.evaluators.decoding as evaluator_module

    ev = DecodingEvaluator()
    ev.setup({"model": "builtin:arith-tiny", "task": "arithmetic", "num_prompts": 2, "samples_per_prompt": 2,
              "repetition_n": 3}, EvalContext())
    monkeypatch.setattr(evaluator_module, "generate", lambda *a, **k: [scripted_generation()])
    (result,) = run(ev, [{"sampler": "none", "temperature": 1.0}])
    m, metrics = result["measures"], result["metrics"]
    assert m["mean_entropy"] == pytest.approx(2.9 / 19)  # nats per token, not bits
    assert m["ead_large_fraction"] == pytest.approx(13 / 19)
    assert m["distinct_2"] == pytest.approx((2 / 8 + 4 / 4) / 2)
    # trigrams: rows 0 and 1 ("121 212 121") repeat one of 3 each, rows 2-3 none: 2 of 8 (n = 2 gives 4/10)
    assert m["repetition_rate"] == pytest.approx(2 / 8)
    # bigrams over all outputs: 12 21 (x8 in rows 0-1), 34 45 54 43: 6 distinct of 12 (unigrams give 5/16)
    assert metrics["corpus_distinct_2"] == pytest.approx(6 / 12)
    assert metrics["corpus_distinct_1"] == pytest.approx(5 / 16)


def test_an_arithmetic_answer_is_cut_at_its_first_newline() -> None:
    """workers/decoding/tasks.py: the output "is cut at its first newline and stripped before the
    comparison" (the built-in vocabulary has no newline; a Hugging Face model's has)."""
    lm = load_model("builtin:arith-nano", "cpu")
    task = ArithmeticTask(lm, 2, reverse_answer=False)
    item = Item("12+30=", lm.encode("12+30="), "42")
    assert task.correct(item, " 42 \nand more")
    assert not task.correct(item, "4\n2")
