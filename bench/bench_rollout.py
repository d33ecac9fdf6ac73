"""Rollout throughput: HFBackend (fp32, bf16) vs HF ``model.generate`` vs VLLMBackend.

Workload (as ../shared/notes/cpu-speed.md): 64 chat-templated prompts "What is A + B? Put
your final answer within \\boxed{}." on the packaged SmolLM2-135M-Instruct, temperature 1.0,
at most 96 new tokens, plus an RL-shaped 8 prompts x 8 samples run and the weight-sync time.

    .venv/bin/python bench/bench_rollout.py [--skip-vllm] [--json out.json]

vLLM runs last: in-process it binds this process's threads and cannot be undone.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from r1zero.models import DEFAULT_MODEL, load_model, resolve_model_path
from r1zero.rollout import HFBackend, SamplingParams


def make_prompts(tokenizer, count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    questions = [f"What is {rng.randint(1, 999)} + {rng.randint(1, 999)}? Put your final "
                 "answer within \\boxed{}." for _ in range(count)]
    return [tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                          add_generation_prompt=True) for q in questions]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def row(name: str, seconds: float, tokens: int, **extra) -> dict:
    r = {"run": name, "seconds": round(seconds, 2), "tokens": tokens,
         "tok_per_s": round(tokens / seconds, 1), **extra}
    print(json.dumps(r), flush=True)
    return r


def bench_hf(dtype: str, prompts, params, groups, pair_only: bool = False) -> list[dict]:
    model, tok = load_model(DEFAULT_MODEL, dtype=dtype)
    backend = HFBackend(model, tok, batch_size=64)
    backend.generate(prompts[:2], SamplingParams(max_new_tokens=4), [0, 1])  # warm-up
    out, s = timed(lambda: backend.generate(prompts, params, list(range(len(prompts)))))
    rows = [row(f"HFBackend {dtype}, 64x1", s, sum(len(c.token_ids) for c in out),
                truncated=sum(c.truncated for c in out))]
    if pair_only:  # just the side-by-side pair with model.generate, back to back
        return rows + [bench_generate(model, tok, backend.eos_ids, dtype, prompts, params)]
    if dtype != "float32":  # what a bf16 sampler + fp32 learner disagree by
        gap = logprob_gap(load_model(DEFAULT_MODEL)[0], out)
        rows.append(row(f"HFBackend {dtype} log-prob gap vs HF fp32", 1.0, 0, max_gap=gap.max().item(),
                        mean_gap=gap.mean().item(), gap_tokens=gap.numel()))
    g_params = SamplingParams(n=8, temperature=1.0, max_new_tokens=params.max_new_tokens)
    out, s = timed(lambda: backend.generate(prompts[:groups], g_params, list(range(groups))))
    rows.append(row(f"HFBackend {dtype}, {groups}x8", s, sum(len(c.token_ids) for c in out)))

    rows.append(bench_generate(model, tok, backend.eos_ids, dtype, prompts, params))

    # Weight sync: shared module (the default) vs a separate copy.
    _, s = timed(lambda: backend.load_weights(model.named_parameters()))
    rows.append(row(f"HFBackend {dtype} load_weights (shared)", s, 0))
    other, _ = load_model(DEFAULT_MODEL, dtype=dtype)
    copy = HFBackend(other, tok)
    _, s = timed(lambda: copy.load_weights(model.state_dict().items()))
    rows.append(row(f"HFBackend {dtype} load_weights (copy)", s, 0))
    return rows


def bench_generate(model, tok, eos_ids, dtype: str, prompts, params) -> dict:
    """``model.generate`` on the same prompts: one global RNG, no per-sample seeds."""
    enc = tok(prompts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        gen, s = timed(lambda: model.generate(
            **enc, do_sample=True, temperature=1.0, top_p=1.0, top_k=0,
            max_new_tokens=params.max_new_tokens, pad_token_id=tok.pad_token_id))
    new = gen[:, enc["input_ids"].shape[1]:]
    eos = torch.tensor(eos_ids)
    # Count tokens up to and including each row's first EOS (generate pads after it).
    done = torch.isin(new, eos).int().cumsum(1)
    n_tokens = int(((done == 0) | ((done == 1) & torch.isin(new, eos))).sum())
    return row(f"model.generate {dtype}, 64x1", s, n_tokens)


def logprob_gap(model, completions) -> torch.Tensor:
    """|sampler log-prob - log_softmax(logits / T=1) of a teacher-forced fp32 HF forward|."""
    gaps = []
    for c in completions:
        ids = torch.tensor([c.prompt_token_ids + c.token_ids])
        with torch.inference_mode():
            logits = model(ids).logits[0, len(c.prompt_token_ids) - 1 : -1].float()
        ref = torch.log_softmax(logits, -1).gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
        gaps.append((ref - torch.tensor(c.logprobs)).abs())
    return torch.cat(gaps)


def bench_vllm(dtype: str, prompts, params, groups, enforce_eager: bool) -> list[dict]:
    from r1zero.rollout.vllm import VLLMBackend

    backend, start_s = timed(lambda: VLLMBackend(resolve_model_path(DEFAULT_MODEL), dtype=dtype,
                                                 enforce_eager=enforce_eager))
    tag = f"VLLMBackend {dtype}{' eager' if enforce_eager else ''}"
    rows = [row(f"{tag} engine start", start_s, 0)]
    backend.generate(prompts[:2], SamplingParams(max_new_tokens=4), [0, 1])  # warm-up
    out, s = timed(lambda: backend.generate(prompts, params, list(range(len(prompts)))))
    rows.append(row(f"{tag}, 64x1", s, sum(len(c.token_ids) for c in out),
                    truncated=sum(c.truncated for c in out)))
    g_params = SamplingParams(n=8, temperature=1.0, max_new_tokens=params.max_new_tokens)
    out, s = timed(lambda: backend.generate(prompts[:groups], g_params, list(range(groups))))
    rows.append(row(f"{tag}, {groups}x8", s, sum(len(c.token_ids) for c in out)))
    model, _ = load_model(DEFAULT_MODEL)
    gap = logprob_gap(model, out)
    rows.append(row(f"{tag} log-prob gap vs HF fp32", 1.0, 0, max_gap=gap.max().item(),
                    mean_gap=gap.mean().item(), gap_tokens=gap.numel()))
    state = model.state_dict()
    _, s = timed(lambda: backend.load_weights(state.items()))
    rows.append(row(f"{tag} load_weights", s, 0))
    backend.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--groups", type=int, default=8, help="prompts in the n=8 run")
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--hf-dtypes", default="float32,bfloat16")
    ap.add_argument("--vllm-dtype", default="bfloat16")
    ap.add_argument("--enforce-eager", action="store_true")
    ap.add_argument("--skip-vllm", action="store_true")
    ap.add_argument("--pair-only", action="store_true",
                    help="HF: only HFBackend vs model.generate, back to back (a quick A/B)")
    ap.add_argument("--json", help="also write the rows here")
    args = ap.parse_args()

    _, tok = load_model(DEFAULT_MODEL)
    prompts = make_prompts(tok, args.prompts)
    params = SamplingParams(n=1, temperature=1.0, max_new_tokens=args.max_new_tokens)
    print(f"torch threads: {torch.get_num_threads()}", flush=True)
    rows = []
    for dtype in filter(None, args.hf_dtypes.split(",")):
        rows += bench_hf(dtype, prompts, params, args.groups, args.pair_only)
    if not args.skip_vllm:
        rows += bench_vllm(args.vllm_dtype, prompts, params, args.groups, args.enforce_eager)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
