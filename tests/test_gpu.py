"""GPU checks (marked `gpu`, skipped without CUDA): the training loop and the
transformers rollout backend on a CUDA device, with bf16 autocast."""

import json

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_train_on_cuda_bf16(tmp_path):
    from dataclasses import replace

    from r1zero.testing import tiny_model
    from r1zero.train.trainer import train
    from tests.test_train_loop import _cfg

    model, tok = tiny_model(seed=0)
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    run = tmp_path / "run"
    cfg = replace(_cfg(str(tmp_path / "tiny"), run), device="cuda", precision="bf16-autocast",
                  steps=3, max_new_tokens=16)
    train(cfg)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    assert rows[-1]["optim/grad_norm"] > 0
    # The learner's log-probs (bf16 autocast) vs the sampler's (fp32 HF generation).
    assert rows[-1]["policy/sampler_logprob_gap"] < 0.05


def test_hf_backend_logprobs_on_cuda():
    from r1zero.rollout import HFBackend, SamplingParams
    from r1zero.testing import tiny_model

    model, tok = tiny_model(seed=1)
    model = model.cuda()
    backend = HFBackend(model, tok)
    out = backend.generate(["Hello there", "What is 2 + 2?"], SamplingParams(n=3, max_new_tokens=12),
                           [1, 2])
    assert len(out) == 6
    for c in out:
        ids = torch.tensor([c.prompt_token_ids + c.token_ids], device="cuda")
        with torch.no_grad():
            logits = model(ids).logits[0, len(c.prompt_token_ids) - 1 : -1].float()
        ref = torch.log_softmax(logits, -1).gather(-1, ids[0, len(c.prompt_token_ids):, None])
        torch.testing.assert_close(torch.tensor(c.logprobs, device="cuda"), ref.squeeze(-1),
                                   rtol=1e-3, atol=1e-3)
