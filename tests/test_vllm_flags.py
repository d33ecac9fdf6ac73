"""--max-model-len and --vllm-cpu-kv-cache-gib: parsed, validated, and handed to every vLLM
engine the trainer builds (in-process and Ray actor), without starting vLLM."""

import dataclasses

import pytest
import torch
import tyro

from r1zero.config import ConfigError, TrainConfig


def _captured_vllm_kwargs(monkeypatch) -> list[dict]:
    """Replace the vLLM engine class (what `build_backend` constructs) by a recorder."""
    import r1zero.rollout

    calls = []
    monkeypatch.setattr(r1zero.rollout, "vllm_available", lambda: True)
    monkeypatch.setattr(r1zero.rollout, "VLLMBackend",
                        lambda path, **kw: calls.append({"kind": "vllm", "path": path, **kw}) or object())
    return calls


def test_flags_parse_with_defaults():
    cfg = tyro.cli(TrainConfig, args=[])
    assert cfg.max_model_len is None and cfg.vllm_cpu_kv_cache_gib is None  # sized to the run
    cfg = tyro.cli(TrainConfig, args=["--max-model-len", "4096", "--vllm-cpu-kv-cache-gib", "3.5"])
    assert (cfg.max_model_len, cfg.vllm_cpu_kv_cache_gib) == (4096, 3.5)
    cfg.validate()


@pytest.mark.parametrize("changes, message", [
    (dict(max_model_len=3000), "must exceed the generation budget"),  # = max_new_tokens
    (dict(max_model_len=4096, max_new_tokens="0:1024,10:8192"), "8192 new tokens"),
    (dict(vllm_cpu_kv_cache_gib=0.0), "vllm_cpu_kv_cache_gib must be > 0"),
])
def test_bad_values_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(TrainConfig(), **changes).validate()


def _resolved(cfg, kv=None):
    from r1zero.machine import Choice
    from r1zero.train.setup import Resolved

    return Resolved("cpu", "vllm", Choice("fp32", "given"), Choice("float32", "given"), None,
                    vllm_cpu_kv_cache_gib=kv)


def test_values_reach_the_in_process_engine(monkeypatch):
    from r1zero.rollout import build_backend
    from r1zero.train.setup import engine_spec

    calls = _captured_vllm_kwargs(monkeypatch)
    cfg = TrainConfig(backend="vllm", max_model_len=3200, vllm_cpu_kv_cache_gib=6.0)
    build_backend(engine_spec(cfg, _resolved(cfg, 6.0), "some/model"))
    assert calls[0]["kind"] == "vllm"
    assert calls[0]["max_model_len"] == 3200 and calls[0]["cpu_kv_cache_gib"] == 6.0
    assert calls[0]["dtype"] == "float32"  # the resolved dtype, never "auto"
    build_backend(engine_spec(TrainConfig(backend="vllm"), _resolved(cfg), "some/model"))
    assert calls[1]["max_model_len"] is None and calls[1]["cpu_kv_cache_gib"] is None


def test_values_reach_a_ray_engine(monkeypatch):
    from r1zero.cluster.engine_pool import EngineImpl
    from r1zero.train.setup import engine_spec

    calls = _captured_vllm_kwargs(monkeypatch)
    monkeypatch.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # EngineImpl sets it otherwise
    threads = torch.get_num_threads()  # EngineImpl pins an actor's threads on CPU
    cfg = TrainConfig(backend="vllm", max_model_len=3200, vllm_cpu_kv_cache_gib=6.0)
    try:
        EngineImpl(engine_spec(cfg, _resolved(cfg, 6.0), "some/model"), 1.0)
    finally:
        torch.set_num_threads(threads)
    assert calls[0]["max_model_len"] == 3200 and calls[0]["cpu_kv_cache_gib"] == 6.0


def test_cpu_kv_budget_is_sized_to_the_run(tmp_path):
    """The packaged model's shapes (30 layers x 3 KV heads x 64 x 2 x bf16 = 23,040 bytes per
    token): the demo's 100 held-out sequences (a step has 64) x (60 + 96 + 128) tokens x
    1.25 = 0.76 GiB, not 2 GiB (64 sequences without evaluation);
    a step of 4 x 2 sequences and a 3-problem test set get the 0.25 GiB floor; a 3000-token
    budget with 128+ sequences in flight is capped at one chunk of 128."""
    from transformers import LlamaConfig

    from r1zero.train.setup import cpu_kv_cache_gib

    LlamaConfig(num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                hidden_size=576).save_pretrained(tmp_path)
    demo = TrainConfig(prompts_per_step=8, group_size=8, max_new_tokens=96)
    assert cpu_kv_cache_gib(demo, "bfloat16", str(tmp_path), 60, 100) == round(1.25 * 100 * 284 * 23040 / 2**30, 3)
    # without held-out evaluation (--eval-every 0) only a step's 64 sequences are in flight;
    # fp32 doubles the bytes per token
    no_eval = dataclasses.replace(demo, eval_every=0)
    assert cpu_kv_cache_gib(no_eval, "float32", str(tmp_path), 60, 100) == round(1.25 * 64 * 284 * 46080 / 2**30, 3)
    small = TrainConfig(prompts_per_step=4, group_size=2, max_new_tokens=16)
    assert cpu_kv_cache_gib(small, "bfloat16", str(tmp_path), 20, 3) == 0.25
    big = TrainConfig(prompts_per_step=128, group_size=8, max_new_tokens=3000)
    assert cpu_kv_cache_gib(big, "bfloat16", str(tmp_path), 200, 500) == round(1.25 * 128 * 3328 * 23040 / 2**30, 3)
