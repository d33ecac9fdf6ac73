"""Loaded by every Python process started under `bench/as_avx2.py` (it puts this folder on
PYTHONPATH): the benchmark's own subprocesses (bench_trl.py's two sides, vLLM's engine
process) then see the same AVX2-only CPU as the process that started them. torch is
imported here only when the run asked for it (R1ZERO_AS_AVX2=1)."""

import os

if os.environ.get("R1ZERO_AS_AVX2") == "1":
    try:
        import torch
    except ImportError:  # a Python without torch has nothing to cap
        pass
    else:
        for name in ("_is_avx512_supported", "_is_avx512_bf16_supported", "_is_amx_tile_supported",
                     "_is_amx_fp16_supported", "_is_avx512_vnni_supported"):
            if hasattr(torch.cpu, name):
                setattr(torch.cpu, name, lambda: False)
