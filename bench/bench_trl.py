"""r1zero vs TRL's GRPOTrainer on the same CPU setting, in one run (`make bench-trl`).

Setting (issue 4): the packaged SmolLM2-135M-Instruct, 8 prompts x 8 samples of two-digit
additions, at most 96 new tokens, temperature 1.0, Dr. GRPO loss, beta 0, one update per
batch. Each side runs in its own process (clean peak memory); seconds per optimizer step
are the median over the steps after the first (warm-up). Prints both, then the lines
`speedup_vs_trl: <TRL s/step / r1zero s/step>` and
`peak_rss_ratio_vs_trl: <r1zero peak RSS / TRL peak RSS>` (each side's whole process).
Before them, the compute floor: the seconds per step the step's unavoidable FLOPs take at
this machine's measured matmul peak in r1zero's precision (`compute_floor_s`), and the
largest speedup over TRL that floor allows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_trl(model_dir: str, steps: int, bf16: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "trl.json"
        cmd = [sys.executable, str(ROOT / "bench" / "trl_peer.py"), model_dir, "--steps", str(steps),
               "--json", str(out)] + (["--bf16"] if bf16 else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(out.read_text())


def run_r1zero(steps: int, backend: str, precision: str, skip: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        # TRL's setting: T = 1.0, lr 1e-6, boxed-only rewards (the paper's extraction).
        cmd = [sys.executable, "-m", "r1zero", "train", "--preset", "arith", "--steps", str(steps),
               "--eval-every", "0", "--save-every", "0", "--lr", "1e-6", "--temperature", "1.0",
               "--task.extract", "boxed", "--backend", backend, "--precision", precision,
               "--run-dir", str(run), "--no-progress",
               "--skip-zero-advantage" if skip else "--no-skip-zero-advantage"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if "perf/step_s" in r]
        warm = rows[1:] or rows  # the steps after the first (warm-up)
        info = json.loads((run / "run_info.json").read_text())
        resolved = json.loads((run / "config.json").read_text()).get("resolved", {})

        def median(f):
            return statistics.median(f(r) for r in warm)

        s_per_step = median(lambda r: r["perf/step_s"])
        return {
            # tokens per step, for the compute floor: rate x seconds of each phase
            "gen_tokens": median(lambda r: r["perf/gen_tokens_per_s"] * r["perf/gen_s"]),
            "train_tokens": median(lambda r: r["perf/train_tokens_per_s"] * r["perf/train_s"]),
            "s_per_step": s_per_step,
            "s_per_step_all": statistics.mean(r["perf/step_s"] for r in rows),
            "gen_s": median(lambda r: r["perf/gen_s"]),
            "train_s": median(lambda r: r["perf/train_s"]),
            "sync_s": median(lambda r: r["perf/sync_s"]),
            "completions_per_s": 64 / s_per_step,
            "peak_rss_gb": max(r["perf/peak_rss_gb"] for r in rows),
            "backend": backend,
            "skip_zero_advantage": skip,
            "precision": resolved.get("precision", precision),
            "vllm_dtype": resolved.get("vllm_dtype"),
            "versions": info.get("versions"),
        }


def matmul_peak_gflops(dtype: str, seconds: float = 2.0) -> float:
    """Best GFLOP/s of this process's threads on a decoder-MLP-shaped matmul
    ([2048, 576] x [576, 1536], SmolLM2-135M's) in ``dtype``: what the hardware gives a
    learner's largest GEMMs here."""
    import time

    import torch

    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(2048, 576, dtype=dt), torch.randn(576, 1536, dtype=dt)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        for _ in range(5):
            a @ b
        best = max(best, 5 * 2 * 2048 * 576 * 1536 / (time.perf_counter() - t) / 1e9)
    return best


def compute_floor_s(model_dir: str, gen_tokens: float, train_tokens: float, gflops: float) -> float:
    """A lower bound on r1zero's seconds per step at the measured matmul peak: the FLOPs no
    implementation of this step can skip. Generation: 2 x (decoder + output layer params)
    per generated token. Update (forward + backward, weight gradients included): 6 x
    decoder params per learner token (prompts once per group, packed) + 6 x output-layer
    params per response token. Attention, elementwise work and the optimizer are left out,
    so the true floor is higher."""
    from transformers import AutoConfig

    c = AutoConfig.from_pretrained(model_dir)
    d, f, layers, v = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size
    head_dim = getattr(c, "head_dim", None) or d // c.num_attention_heads
    kv = c.num_key_value_heads * head_dim
    decoder = layers * (2 * d * d + 2 * d * kv + 3 * d * f)  # q, o; k, v; gate, up, down
    head = v * d
    flops = 2 * (decoder + head) * gen_tokens + 6 * decoder * train_tokens + 6 * head * gen_tokens
    return flops / (gflops * 1e9)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trl-steps", type=int, default=3, help="TRL steps (the first is warm-up)")
    p.add_argument("--r1zero-steps", type=int, default=5, help="r1zero steps (the first is warm-up)")
    p.add_argument("--backend", default="auto", help="r1zero rollout backend (auto/vllm/hf)")
    p.add_argument("--precision", default="auto",
                   help="r1zero learner precision (auto: bf16 where the CPU computes it natively)")
    p.add_argument("--trl-bf16", action="store_true", help="run TRL in bf16 (no faster here)")
    p.add_argument("--with-skip", action="store_true",
                   help="also time r1zero's default exact zero-advantage skip")
    a = p.parse_args()

    from r1zero.models import resolve_model_path

    model_dir = resolve_model_path("smollm2-135m-instruct")
    # Headline: the full update over all 64 responses (no zero-advantage shortcut), so the
    # comparison does not depend on how many groups happened to be all-wrong.
    r1 = run_r1zero(a.r1zero_steps, a.backend, a.precision, skip=False)
    print(f"r1zero: {r1['s_per_step']:.1f} s/step (gen {r1['gen_s']:.1f} + train {r1['train_s']:.1f}"
          f" + sync {r1['sync_s']:.2f}), {r1['completions_per_s']:.2f} completions/s, "
          f"peak RSS {r1['peak_rss_gb']:.1f} GiB [{r1['backend']}, {r1['precision']}, full update]",
          flush=True)
    if a.with_skip:
        r1s = run_r1zero(a.r1zero_steps, a.backend, a.precision, skip=True)
        print(f"r1zero (exact zero-advantage skip, default): {r1s['s_per_step']:.1f} s/step "
              f"(train {r1s['train_s']:.1f})", flush=True)
    from r1zero.machine import cpu_bf16_verdict

    fast, why = cpu_bf16_verdict()
    print(f"cpu: {'native bf16' if fast else 'no fast bf16'} ({why})", flush=True)
    trl = run_trl(model_dir, a.trl_steps, a.trl_bf16)
    print(f"trl {trl.get('trl_version')}: {trl['s_per_step']:.1f} s/step, "
          f"{trl['completions_per_s']:.2f} completions/s, peak RSS {trl['peak_rss_gb']:.1f} GiB "
          f"[{'bf16' if trl.get('bf16') else 'fp32'}]")
    import os

    allocator = "tcmalloc" if "tcmalloc" in os.environ.get("LD_PRELOAD", "") else "glibc malloc"
    print(f"allocator (both sides): {allocator}")
    print(json.dumps({"r1zero": r1, "trl": trl, "allocator": allocator}, default=str))
    peak = matmul_peak_gflops("bf16" if r1["precision"].startswith("bf16") else "fp32")  # bf16-autocast too
    floor = compute_floor_s(model_dir, r1["gen_tokens"], r1["train_tokens"], peak)
    print(f"compute floor ({r1['precision']} matmul peak {peak:.0f} GFLOP/s here; "
          f"{r1['gen_tokens']:.0f} generated + {r1['train_tokens']:.0f} learner tokens per step): "
          f"{floor:.1f} s/step -> at most {trl['s_per_step'] / floor:.1f}x TRL in {r1['precision']}")
    print(f"speedup_vs_trl: {trl['s_per_step'] / r1['s_per_step']:.2f}")
    print(f"peak_rss_ratio_vs_trl: {r1['peak_rss_gb'] / trl['peak_rss_gb']:.2f}")


if __name__ == "__main__":
    main()
