"""Learner throughput at long context: packed micro-batches through FlexAttention (varlen,
no dense mask) vs the dense segment mask (SDPA), side by side.

Workload: the Qwen2.5-Math-1.5B architecture, randomly initialised from a config written
here (no download), as one FSDP2 rank (world 1: NCCL on GPU, gloo on CPU) with bf16
compute, fp32 master weights and activation checkpointing, the way a cluster learner rank
runs it (`r1zero.cluster.learner_group.LearnerRankImpl`). A step is P prompts x G responses
of about L tokens (default 2 x 4 x ~3,000: the reference recipe's generation budget),
random tokens (speed depends only on the lengths), Dr. GRPO loss, beta 0, AdamW, every
response in the loss. Each path runs one warm-up update (FlexAttention compiles there),
then ``--steps`` timed ones. Printed per path: learner tokens/s (prompt once + responses),
model FLOPs utilisation 6 * params * tokens/s / peak (the 6N rule: forward + backward
matmuls, no attention scores, no checkpointing recompute), and peak GPU memory
(``torch.cuda.max_memory_allocated``). As a cross-check, each path's log-probs of the
first micro-batch before any update (same seed, same weights) and its first grad-norm.

With ``--jsonl PATH`` every row is appended to PATH the moment it is measured (one per
update, then one summary per path), so a run stopped by a time limit keeps what it had.

    python bench/bench_learner_gpu.py                 # GPU: the full setting
    python bench/bench_learner_gpu.py --tiny          # CPU smoke test (seconds)

On CPU FlexAttention has no backward: its update is skipped (reported), its forward still
runs for the cross-check.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import socket
import statistics
import sys
import time
import traceback

import torch

from r1zero.learner import segment_attention, varlen_attention
from r1zero.learner.batching import TrainSequence

PATHS = {"varlen": varlen_attention.NAME, "dense": segment_attention.NAME}
H200_BF16_TFLOPS = 989.0
"""Dense bf16 peak of an H100/H200 SXM (NVIDIA's datasheet, without sparsity)."""


def model_config(tiny: bool):
    """Qwen2.5-Math-1.5B's architecture, values from its Hugging Face config.json
    (Qwen/Qwen2.5-Math-1.5B: 28 layers, hidden 1536, 12 heads / 2 KV heads, SwiGLU 8960,
    vocabulary 151,936, RoPE theta 10,000, 4,096 positions, tied embeddings, no sliding
    window); ``tiny`` keeps the shape family at toy size."""
    from transformers import Qwen2Config

    if tiny:
        return Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           max_position_embeddings=512, rope_theta=10000.0,
                           tie_word_embeddings=True, use_sliding_window=False)
    return Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960,
                       num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                       max_position_embeddings=4096, rope_theta=10000.0, rms_norm_eps=1e-6,
                       tie_word_embeddings=True, use_sliding_window=False, attention_dropout=0.0)


def make_sequences(prompts: int, group: int, prompt_len: int, response_len: int, vocab: int,
                   seed: int = 0) -> list[TrainSequence]:
    """``prompts`` x ``group`` responses of 90-100 % of ``response_len`` random tokens."""
    rng = random.Random(seed)
    seqs = []
    for _ in range(prompts):
        prompt = [rng.randrange(vocab) for _ in range(prompt_len)]
        for _ in range(group):
            n = rng.randint(int(0.9 * response_len), response_len)
            response = [rng.randrange(vocab) for _ in range(n)]
            seqs.append(TrainSequence(prompt, response, rng.choice([-1.0, -0.5, 0.5, 1.0])))
    return seqs


def pick_device(name: str, cuda_available: bool) -> torch.device:
    """``auto`` / ``cuda`` / ``cuda:N`` / ``cpu`` -> a device with an index where CUDA needs
    one: ``torch.cuda.set_device`` and NCCL's device binding refuse a bare ``cuda``
    (``ValueError: Expected a torch.device with a specified index``), so ``cuda`` means
    ``cuda:0``, the one GPU of a world-1 rank."""
    if name == "auto":
        name = "cuda" if cuda_available else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not cuda_available:
        raise SystemExit(f"--device {name}: no CUDA device is visible here; use --device cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    return device


def emit(row: dict, path: str | None) -> None:
    """Print ``row`` and append it to the JSONL file ``path`` at once (flushed to disk)."""
    line = json.dumps({k: v for k, v in row.items() if k != "logprobs"})
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_learner(path: str, args, device: torch.device):
    """A fresh random-init model (same seed for every path) as one FSDP2 rank, its
    attention set to ``path``, and the `LocalLearner` around it. Returns (learner,
    parameter count, whether this path can train here)."""
    from transformers import Qwen2ForCausalLM

    from r1zero.cluster.fsdp import shard
    from r1zero.config import TrainConfig, resolve_algorithm
    from r1zero.learner.attention import set_attention
    from r1zero.learner.local import LocalLearner
    from r1zero.learner.objectives import OBJECTIVES
    from r1zero.learner.optim import adamw, optim_settings

    torch.manual_seed(args.seed)
    with device:
        model = Qwen2ForCausalLM(model_config(args.tiny))
    params = sum(p.numel() for p in model.parameters())  # tied embedding counted once
    trains = PATHS[path] != varlen_attention.NAME or varlen_attention.available(device)
    if trains:
        set_attention(model, PATHS[path], device, packed=True)
    else:  # forward only (the cross-check): set_attention refuses it without a backward
        varlen_attention.register()
        model.set_attn_implementation(PATHS[path])
    shard(model, 1, device.type, bf16=True, activation_checkpointing=True)
    cfg = resolve_algorithm(TrainConfig(
        precision="bf16", packed=True, attn_implementation=PATHS[path], lr=1e-6,
        max_new_tokens=args.response_len, micro_batch_tokens=args.micro_batch_tokens,
        skip_zero_advantage=False, seed=args.seed))
    optim = optim_settings(cfg)
    learner = LocalLearner(cfg, cfg.algo, model, model, adamw(model.parameters(), optim), optim, None,
                           True, 0, "bf16", OBJECTIVES["policy"])
    return learner, params, trains


def run_path(path: str, args, device: torch.device, seqs: list[TrainSequence],
             ref: torch.Tensor | None = None) -> dict:
    """Cross-check log-probs (the gap to ``ref``, the first path's), then warm-up + timed
    updates of one attention path; each update's row and the path's summary row are
    emitted as they are measured."""
    from r1zero.learner.batching import make_micro_batches
    from r1zero.learner.local import run_update
    from r1zero.learner.logprobs import response_logprobs

    learner, params, trains = build_learner(path, args, device)
    first = make_micro_batches(seqs, args.micro_batch_tokens, 0, packed=True)[0]
    with torch.no_grad():
        lp, _ = response_logprobs(learner.compute, first, precision="bf16")
    row = {"row": "summary", "path": path, "kernel": PATHS[path], "params": params,
           "logprobs": lp.float().cpu()}
    row["max_abs_dlogp"] = 0.0 if ref is None else float((row["logprobs"] - ref).abs().max())
    if not trains:
        row["skipped"] = f"no FlexAttention backward on {device.type}"
        emit(row, args.jsonl)
        return row
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times, result = [], {}
    for i in range(1 + args.steps):
        _sync(device)
        start = time.perf_counter()
        result = run_update(learner, seqs, i)
        _sync(device)
        times.append(time.perf_counter() - start)
        if i == 0:
            row["grad_norm"] = result["grad_norms"][0]
        emit({"row": "update", "path": path, "update": i, "warmup": i == 0, "s": times[-1],
              "tokens": result["train_tokens"], "grad_norm": result["grad_norms"][0],
              "peak_gib": _peak_gib(device)}, args.jsonl)
    seconds = statistics.median(times[1:])
    tokens = result["train_tokens"]
    row.update(tokens=tokens, s_per_update=seconds, warmup_s=times[0],
               tokens_per_s=tokens / seconds,
               mfu=6 * params * tokens / seconds / (args.peak_tflops * 1e12),
               peak_gib=_peak_gib(device))
    emit(row, args.jsonl)
    del learner
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def _peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def report(rows: list[dict]) -> str:
    """The side-by-side table; log-prob gaps are against the first path."""
    lines = [(f"{'path':8s} {'kernel':16s} {'tokens':>7s} {'s/update':>9s} {'tokens/s':>9s} "
              f"{'MFU':>6s} {'peak GiB':>9s} {'grad-norm':>10s} {'max|dlogp|':>11s}")]
    for r in rows:
        gap = r["max_abs_dlogp"]
        if "skipped" in r:
            lines.append(f"{r['path']:8s} {r['kernel']:16s} update skipped: {r['skipped']}"
                         f"{'':>8s}{gap:11.2e}")
            continue
        peak = f"{r['peak_gib']:9.2f}" if r["peak_gib"] is not None else f"{'n/a':>9s}"
        lines.append(f"{r['path']:8s} {r['kernel']:16s} {r['tokens']:7d} {r['s_per_update']:9.3f} "
                     f"{r['tokens_per_s']:9.0f} {100 * r['mfu']:5.1f}% {peak} "
                     f"{r['grad_norm']:10.4g} {gap:11.2e}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the paths; 1 when one of them failed (its error is a row too)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tiny", action="store_true", help="toy model and lengths (CPU smoke test)")
    p.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--group", type=int, default=4)
    p.add_argument("--prompt-len", type=int, default=None, help="default 120 (tiny 12)")
    p.add_argument("--response-len", type=int, default=None, help="default 3000 (tiny 48)")
    p.add_argument("--micro-batch-tokens", type=int, default=None,
                   help="packed micro-batch budget; default 16384 = one group of 4 x 3,000 "
                   "(tiny 256)")
    p.add_argument("--steps", type=int, default=None, help="timed updates (default 3, tiny 1)")
    p.add_argument("--peak-tflops", type=float, default=H200_BF16_TFLOPS,
                   help="dense bf16 peak of the device, for MFU (H100/H200 SXM: 989)")
    p.add_argument("--device", default="auto", help="auto, cuda, cuda:N or cpu")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jsonl", help="append every row (without log-probs) here as it is measured")
    a = p.parse_args(argv)
    for name, full, tiny in (("prompt_len", 120, 12), ("response_len", 3000, 48),
                             ("micro_batch_tokens", 16384, 256), ("steps", 3, 1)):
        if getattr(a, name) is None:
            setattr(a, name, tiny if a.tiny else full)
    device = pick_device(a.device, torch.cuda.is_available())
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=0, world_size=1,
                            init_method=f"tcp://127.0.0.1:{port}")
    try:
        seqs = make_sequences(a.prompts, a.group, a.prompt_len, a.response_len,
                              model_config(a.tiny).vocab_size, a.seed)
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"{name}, torch {torch.__version__}: {a.prompts} prompts x {a.group} responses of "
              f"<= {a.response_len} tokens (prompt {a.prompt_len}), micro-batch budget "
              f"{a.micro_batch_tokens}, {a.steps} timed update(s) per path", flush=True)
        rows: list[dict] = []
        for path in a.paths:
            try:
                rows.append(run_path(path, a, device, seqs, rows[0]["logprobs"] if rows else None))
            except Exception as e:  # noqa: BLE001 - one path's failure must not cost the other's row
                traceback.print_exc()
                emit({"row": "error", "path": path, "error": f"{type(e).__name__}: {e}"}, a.jsonl)
                gc.collect()
                if device.type == "cuda":
                    torch.cuda.empty_cache()
    finally:
        dist.destroy_process_group()
    if rows:
        print(report(rows), flush=True)
    return 0 if len(rows) == len(a.paths) else 1


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
