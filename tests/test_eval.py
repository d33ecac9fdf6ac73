"""`r1zero eval`: config validation, metrics by hand, the whole pipeline on real data slices
with scripted backends (gold answers -> 1.0, wrong -> 0.0), resume, Ctrl-C, tiny model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from r1zero.config import ConfigError
from r1zero.evaluation import (
    EvalConfig,
    benchmark_metrics,
    nan_to_none,
    pass_ks,
    read_samples,
    resolve_benchmarks,
    run_eval,
)
from tests.helpers import DATA, needs_data, with_sampling


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"suite": "nope"}, "unknown suite"),
        ({"benchmarks": ("gsm8k",)}, "unknown benchmark"),
        ({"samples": 0}, "samples must be >= 1"),
        ({"samples": 4, "temperature": 0.0}, "identical greedy"),
        ({"backend": "openai"}, "needs --base-url"),
        ({"backend": "tgi"}, "--backend must be one of"),
        ({"limit": 0}, "--limit"),
        ({"template": "{oops}"}, "unknown template"),
        ({"backend": "openai", "base_url": "http://x/v1", "template": "chat"}, "openai-endpoint chat"),
    ],
)
def test_validate_rejects(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        with_sampling(EvalConfig, **kwargs).validate()


def test_defaults_follow_the_paper():
    cfg = EvalConfig()
    cfg.validate()
    assert cfg.sampling.max_new_tokens == 3000 and cfg.sampling_temperature == 0.0 and cfg.suite == "math5"
    assert with_sampling(EvalConfig, samples=8).sampling_temperature == 1.0


# ---------------------------------------------------------------------- metrics by hand
def rec(correct: bool, extracted: str | None, length: int, finish: str = "stop") -> dict:
    return {"correct": correct, "extracted": extracted, "length": length, "finish_reason": finish}


def test_pass_ks():
    assert pass_ks(1) == [1] and pass_ks(8) == [1, 2, 4, 8] and pass_ks(6) == [1, 2, 4, 6]


def test_benchmark_metrics_by_hand():
    # Problem A: 1 of 4 correct; its wrong answers "3" x2 outvote the right "2" -> maj@4 = 0.
    # Problem B: 2 of 4 correct (answers 7,7 right; None; 8 wrong) -> maj@4 = 1.
    a = [rec(True, "2", 10), rec(False, "3", 20), rec(False, "3", 30, "length"), rec(False, None, 40, "length")]
    b = [rec(True, "7", 5), rec(True, " 7", 15), rec(False, None, 25), rec(False, "8", 35)]
    m = benchmark_metrics([a, b], samples=4)
    assert m["n_problems"] == 2 and m["n_samples"] == 8
    assert m["accuracy"] == pytest.approx(3 / 8)
    # pass@1 = mean(c/n) = (1/4 + 2/4)/2; pass@2 = mean(1 - C(n-c,2)/C(4,2)) = (1-3/6 + 1-1/6)/2
    assert m["pass@1"] == pytest.approx(3 / 8)
    assert m["pass@2"] == pytest.approx(((1 - 3 / 6) + (1 - 1 / 6)) / 2)
    assert m["pass@4"] == 1.0
    assert m["maj@1"] == 1.0  # first samples: "2" right, "7" right
    assert m["maj@4"] == 0.5
    assert m["format_rate"] == pytest.approx(6 / 8)
    assert m["truncation_rate"] == pytest.approx(2 / 8)
    assert m["mean_length_correct"] == pytest.approx((10 + 5 + 15) / 3)
    assert m["mean_length_incorrect"] == pytest.approx((20 + 30 + 40 + 25 + 35) / 5)


# ---------------------------------------------------------------------- pipeline on real data
@pytest.fixture(scope="module")
def tokenizer():
    from r1zero.testing import tiny_tokenizer

    return tiny_tokenizer()


def gold_text(answer) -> str:
    return answer[0] if isinstance(answer, list) else str(answer)


def scripted(cfg: EvalConfig, tokenizer, answer_for):
    """FakeBackend answering ``answer_for(gold, sample_seed)`` for each known prompt."""
    from r1zero.rollout.fake import FakeBackend
    from r1zero.templates import get_template

    template = get_template(cfg.template)
    gold = {template.render(p.question, tokenizer): p.answer
            for s in resolve_benchmarks(cfg) for p in s.problems}
    return FakeBackend(tokenizer, lambda prompt, j, seed: answer_for(gold[prompt], seed))


def suite_cfg(tmp_path: Path, **kw) -> EvalConfig:
    base = dict(data_dir=str(DATA), limit=3, out_dir=str(tmp_path / "eval"), quiet=True, max_new_tokens=64)
    return with_sampling(EvalConfig, **(base | kw))


@needs_data
def test_gold_answers_score_one_and_wrong_answers_zero(tmp_path, tokenizer):
    cfg = suite_cfg(tmp_path)
    backend = scripted(cfg, tokenizer, lambda gold, seed: f"So the answer is \\boxed{{{gold_text(gold)}}}.")
    res = run_eval(cfg, backend=backend)
    assert list(res["benchmarks"]) == ["aime24", "amc", "math500", "minerva", "olympiad"]
    for key, m in res["benchmarks"].items():
        assert (key, m["accuracy"], m["n_problems"]) == (key, 1.0, 3)
        assert m["format_rate"] == 1.0 and m["truncation_rate"] == 0.0
    assert res["average"]["accuracy"] == 1.0 and res["complete"]
    assert "evaluation_suite" in res["benchmarks"]["amc"]["source"]  # the paper's copy wins

    cfg_wrong = suite_cfg(tmp_path / "w")
    wrong = scripted(cfg_wrong, tokenizer, lambda gold, seed: "I think it is \\boxed{-123456789}")
    res = run_eval(cfg_wrong, backend=wrong)
    assert res["average"]["accuracy"] == 0.0 and res["average"]["format_rate"] == 1.0

    out = Path(cfg.out_dir)
    samples = read_samples(out / "samples.jsonl")
    assert len(samples) == 15
    assert {"benchmark", "problem_id", "prompt", "response", "extracted", "correct", "reason",
            "length", "finish_reason"} <= samples[0].keys()
    saved = json.loads((out / "results.json").read_text())
    assert saved["grader"]["extract"] == "boxed" and saved["sampling"]["max_new_tokens"] == 64
    table = (out / "results.md").read_text()
    assert "| metric | AIME24 | AMC | MATH500 | Minerva | OlympiadBench | Avg |" in table
    assert "| Accuracy (%) | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 | 100.0 |" in table


def coin(gold, seed: int) -> str:
    # Deterministic in the sample's seed: right for even seeds, wrong for odd ones.
    return f"\\boxed{{{gold_text(gold)}}}" if seed % 2 == 0 else "\\boxed{-1}"


class Failing:
    """Wraps a backend; raises ``error`` on call number ``fail_on`` (1-based)."""

    def __init__(self, inner, fail_on: int, error: BaseException):
        self.inner, self.fail_on, self.error, self.calls = inner, fail_on, error, 0

    def generate(self, prompts, params, seeds):
        self.calls += 1
        if self.calls == self.fail_on:
            raise self.error
        return self.inner.generate(prompts, params, seeds)

    def close(self):
        pass


@needs_data
def test_resume_after_crash_generates_only_missing_samples(tmp_path, tokenizer):
    kw = dict(benchmarks=("aime24", "math500"), samples=2, temperature=1.0, chunk_size=2)
    ref_cfg = suite_cfg(tmp_path / "ref", **kw)
    reference = run_eval(ref_cfg, backend=scripted(ref_cfg, tokenizer, coin))

    cfg = suite_cfg(tmp_path / "run", **kw)
    crashing = Failing(scripted(cfg, tokenizer, coin), fail_on=2, error=RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        run_eval(cfg, backend=crashing)
    assert len(read_samples(Path(cfg.out_dir) / "samples.jsonl")) == 2 * 2  # one chunk of 2 problems

    backend = scripted(cfg, tokenizer, coin)
    resumed = run_eval(cfg, backend=backend)
    generated = [p for prompts, _, _ in backend.calls for p in prompts]
    assert len(generated) == 6 - 2 and len(set(generated)) == 4  # no problem generated twice
    assert len(read_samples(Path(cfg.out_dir) / "samples.jsonl")) == 6 * 2
    # Same per-sample seeds -> identical numbers to the uninterrupted run (nan-safe compare).
    assert nan_to_none(resumed["benchmarks"]) == nan_to_none(reference["benchmarks"])
    assert 0 < resumed["average"]["accuracy"] < 1  # the coin really mixed right and wrong
    again = scripted(cfg, tokenizer, coin)
    run_eval(cfg, backend=again)
    assert again.calls == []  # everything was there already


@needs_data
def test_ctrl_c_exits_cleanly_and_resume_refuses_other_settings(tmp_path, tokenizer):
    cfg = suite_cfg(tmp_path, benchmarks=("math500",), chunk_size=1)
    backend = Failing(scripted(cfg, tokenizer, coin), fail_on=3, error=KeyboardInterrupt())
    res = run_eval(cfg, backend=backend)
    assert res["interrupted"] and not res["complete"]
    assert res["benchmarks"]["math500"]["n_problems"] == 2
    assert "incomplete run" in (Path(cfg.out_dir) / "results.md").read_text()

    other = suite_cfg(tmp_path, benchmarks=("math500",), template="no")
    with pytest.raises(ConfigError, match="different settings.*template"):
        run_eval(other, backend=scripted(other, tokenizer, coin))
    other.resume = False  # start over: the old samples are discarded
    res = run_eval(other, backend=scripted(other, tokenizer, coin))
    assert res["complete"] and res["benchmarks"]["math500"]["n_samples"] == 3


@needs_data
def test_custom_data_file_with_name(tmp_path, tokenizer):
    cfg = EvalConfig(data=(f"mine={DATA / 'jsonl' / 'amc23.jsonl'}",), limit=2, quiet=True,
                     out_dir=str(tmp_path / "e"), template="r1")
    # r1 template: the answer goes inside <answer> tags, and generation stops at </answer>.
    backend = scripted(cfg, tokenizer,
                       lambda g, s: f" think </think> <answer> {gold_text(g)} </answer> trailing")
    res = run_eval(cfg, backend=backend)
    assert res["benchmarks"]["mine"]["accuracy"] == 1.0
    assert all(r["response"].endswith("</answer>") for r in read_samples(Path(cfg.out_dir) / "samples.jsonl"))


@needs_data
def test_tiny_model_end_to_end(tmp_path):
    from r1zero.rollout.hf import HFBackend
    from r1zero.testing import tiny_model

    model, tok = tiny_model()
    cfg = suite_cfg(tmp_path, benchmarks=("math500",), samples=2, max_new_tokens=8, template="chat")
    res = run_eval(cfg, backend=HFBackend(model, tok), tokenizer=tok)
    m = res["benchmarks"]["math500"]
    assert m["n_samples"] == 6 and m["accuracy"] == 0.0  # a random model does not solve MATH
    assert 1 <= m["mean_length"] <= 8 and 0 <= m["truncation_rate"] <= 1
    assert math.isnan(m["mean_length_correct"])


@needs_data
def test_eval_over_http_with_server_chat_template(tmp_path):
    """--backend openai --openai-endpoint chat: the bare question goes out as a user message,
    answers are graded from \\boxed{}, and lengths come from the server's token counts."""
    from r1zero.data import load_problems
    from tests.test_openai_backend import FakeServer

    gold = {p.question: p.answer for p in load_problems(DATA / "jsonl" / "math500.jsonl", limit=2)}

    def reply(body, _):
        question = body["messages"][0]["content"]
        return 200, {"choices": [{"message": {"content": f"\\boxed{{{gold[question]}}}"},
                                  "finish_reason": "stop"}], "usage": {"completion_tokens": 7}}

    server = FakeServer(reply)
    try:
        cfg = EvalConfig(backend="openai", base_url=server.url, openai_endpoint="chat", model="srv",
                         data=(str(DATA / "jsonl" / "math500.jsonl"),), limit=2, quiet=True,
                         out_dir=str(tmp_path))
        res = run_eval(cfg)
    finally:
        server.close()
    m = res["benchmarks"]["math500"]
    assert (m["accuracy"], m["mean_length"]) == (1.0, 7)
    assert res["template"]["name"] == "server_chat" and len(server.requests) == 2
