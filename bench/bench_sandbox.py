"""Benchmark: sandboxed executions per second, cold (a sandbox started per execution) vs warm
(a pool of long-lived sandboxes, one fork per execution), side by side in one run, with a
plain unsandboxed ``python -c`` per execution as the floor of what a cold start costs.

Two programs: ``print(1)`` (pure overhead) and HumanEval test programs (the canonical
solutions with their ``check``: what a code-task reward runs), read from
../shared/data/code when present. Ends with ``sandbox_warm_speedup: <warm 1 worker / cold>``.

    .venv/bin/python bench/bench_sandbox.py [--cold 30] [--warm 300] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path

from r1zero.sandbox import SandboxConfig, SandboxPool, run
from r1zero.sandbox.unit_tests import humaneval_program

HUMANEVAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "code" / "humaneval.jsonl"


def programs(n: int) -> dict[str, list[str]]:
    """``n`` programs of each kind (HumanEval records cycled in file order)."""
    out = {"print(1)": ["print(1)\n"] * n}
    if HUMANEVAL.is_file():
        with open(HUMANEVAL) as f:
            recs = [json.loads(line) for line in f]
        progs = [humaneval_program(r, r["canonical_solution"]) for r in recs]
        out["HumanEval check"] = [progs[i % len(progs)] for i in range(n)]
    return out


def rate(fn, codes: list[str]) -> float:
    """Executions per second of ``fn`` over ``codes``; every one must pass."""
    start = time.perf_counter()
    results = fn(codes)
    took = time.perf_counter() - start
    bad = [r for r in results if not r]
    if bad:
        raise SystemExit(f"{len(bad)} executions failed")
    return len(codes) / took


def plain(python: str):
    """A bare interpreter per execution (the sandbox's own interpreter, no isolation)."""
    return lambda codes: [subprocess.run([python, "-I", "-c", c], capture_output=True).returncode == 0
                          for c in codes]


def cold(codes: list[str]) -> list[bool]:
    return [run(c, timeout_s=30).ok for c in codes]


def warm(pool: SandboxPool):
    return lambda codes: [r.ok and r.completed for r in pool.map(codes, timeout_s=30)]


def cpu_line() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    return f"{model}, {os.cpu_count()} cores, flags {' '.join(shown) or '-'}; {platform.platform()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cold", type=int, default=30, help="executions per cold measurement")
    ap.add_argument("--warm", type=int, default=300, help="executions per warm measurement")
    ap.add_argument("--workers", type=int, default=2, help="the larger warm pool's size")
    args = ap.parse_args()
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {cpu_line()}")
    small, big = programs(args.cold), programs(args.warm)
    with SandboxPool(SandboxConfig(workers=1)) as one, \
            SandboxPool(SandboxConfig(workers=args.workers)) as many:
        print(f"# sandbox: {one.description}")
        for p in (one, many):  # first executions warm the workers' page caches
            p.map(big["print(1)"][: 4 * p.size])
        print(f"| program | plain `python -c` (no sandbox) | cold `run()` | warm, 1 worker "
              f"| warm, {args.workers} workers |\n|---|---|---|---|---|")
        speedups = []
        for name in small:
            row = [rate(plain(one.launch.python), small[name]), rate(cold, small[name]),
                   rate(warm(one), big[name]), rate(warm(many), big[name])]
            speedups.append(row[2] / row[1])
            print(f"| {name} | " + " | ".join(f"{x:.0f}/s" for x in row) + " |")
    print(f"sandbox_warm_speedup: {min(speedups):.1f}")


if __name__ == "__main__":
    main()
