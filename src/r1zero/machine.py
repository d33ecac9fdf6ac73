"""What this machine decides for a run: the compute precision ``auto`` stands for, and how
many threads each part of the process gets. The config says what the user asked for;
these functions turn ``auto`` into a concrete choice with its reason, once per run, and
the choice is written beside the config (config.json's ``resolved`` block).

Why a probe and not a table of CPU models: bf16 is fast on a CPU only where the matmul
kernels have native bf16 instructions (avx512_bf16, AMX). Without them the same call runs
an emulation 10-80x slower than fp32 (measured 2026-12-04 on an AVX2-only EPYC: 0.9 vs
73.5 GFLOP/s for a 1024^2 matmul). The CPU flags decide the negative case (no native
instruction, no fast kernel); they do not decide the positive one: the same avx512_bf16
CPU with ``ONEDNN_MAX_CPU_ISA=AVX2`` computes bf16 at 1.2 GFLOP/s against 55 in fp32. So a
CPU that advertises native bf16 is measured (two ~0.1 s matmuls), once per machine,
library version and ISA setting, and the result is cached under ``~/.cache/r1zero``.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PRECISIONS = ("auto", "bf16", "bf16-autocast", "fp32")
"""Learner precisions (`r1zero.learner.precision`); auto = bf16 where it is fast, else fp32."""
SAMPLER_DTYPES = ("auto", "bfloat16", "float16", "float32")
"""Weight dtypes of a sampling engine (vLLM) or an evaluation model; auto follows the
learner rule (bf16 where it is fast, else float32; float16 on a GPU without bf16)."""
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""x86 CPU flags of native bf16 matmul instructions (AArch64: ``bf16`` in Features)."""
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
"""Environment variables that cap which instructions torch's CPU kernels use."""
PROBE_SHAPE = (256, 576, 1536)
"""[m, k] x [k, n] of the probe: a 135M model's MLP projection over a 256-token block, the
size of the learner's and the engine's matmuls on this kind of machine."""


@dataclass(frozen=True)
class Choice:
    """A concrete setting and why it was chosen; ``warning`` when the user's explicit
    setting is the slow one here."""

    value: str
    reason: str
    warning: str | None = None


# ----------------------------------------------------------------------------- CPU facts
def cpu_flags(cpuinfo: str | None = None) -> set[str] | None:
    """The CPU's feature flags (x86 ``flags``, AArch64 ``Features``) from /proc/cpuinfo;
    None where the file does not exist (macOS, Windows)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return None


def native_bf16(flags: set[str] | None, machine: str | None = None) -> bool | None:
    """Whether the CPU has native bf16 matmul instructions: False decides (no fast kernel
    can exist), True only allows (a kernel library may still not use them); None = unknown."""
    if flags is None:
        return None
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64"):
        return "bf16" in flags
    return any(f in flags for f in NATIVE_BF16_FLAGS)


def matmul_gflops(dtypes, seconds: float = 0.3) -> list[float]:
    """GFLOP/s of a `PROBE_SHAPE` matmul in each of ``dtypes``, on one thread: calls of the
    dtypes interleaved for ``seconds`` after a warm-up, the fastest call of each kept. One
    thread and interleaving make the comparison robust on a busy machine (another process
    slows both dtypes alike); the two kinds of CPU differ by 50x, not by a few percent."""
    import torch

    m, k, n = PROBE_SHAPE
    g = torch.Generator().manual_seed(0)
    pairs = [(torch.randn(m, k, generator=g).to(d), torch.randn(k, n, generator=g).to(d)) for d in dtypes]
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for a, b in pairs:
            a @ b  # warm-up: kernel selection, packing
        best = [float("inf")] * len(pairs)
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for i, (a, b) in enumerate(pairs):
                t = time.perf_counter()
                a @ b
                best[i] = min(best[i], time.perf_counter() - t)
    finally:
        torch.set_num_threads(before)
    return [2 * m * k * n / t / 1e9 for t in best]


def cache_dir() -> Path:
    """``$R1ZERO_CACHE`` or ``~/.cache/r1zero``."""
    return Path(os.environ.get("R1ZERO_CACHE") or Path.home() / ".cache" / "r1zero").expanduser()


def probe_key(flags: set[str] | None) -> str:
    """What the probe's result depends on: CPU model and bf16 flags, torch version, core
    count and the ISA caps of the environment."""
    import torch

    model = ""
    try:
        model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    except OSError:
        model = platform.processor()
    parts = [model, platform.machine(), torch.__version__, str(os.cpu_count()),
             ",".join(sorted((flags or set()) & {*NATIVE_BF16_FLAGS, "bf16", "avx512f", "avx2"})),
             *(f"{k}={os.environ.get(k, '')}" for k in ISA_ENV)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Probe:
    """One measurement of the CPU's fp32 and bf16 matmul speed (`matmul_gflops`)."""

    fp32_gflops: float
    bf16_gflops: float

    @property
    def bf16_fast(self) -> bool:
        """bf16 beats fp32 (native kernels run it ~2-3x faster; emulation 10-80x slower)."""
        return self.bf16_gflops > self.fp32_gflops


def cpu_probe(*, cache: Path | None = None) -> Probe:
    """The cached `Probe` of this machine, measured on first use (about 0.3 s; a result
    within a factor 1.5 of a tie is measured again, longer, before it is believed)."""
    import torch

    path = (cache or cache_dir()) / "cpu_probe.json"
    key = probe_key(cpu_flags())
    try:
        saved = json.loads(path.read_text())
        if key in saved:
            return Probe(**saved[key])
    except (OSError, ValueError, TypeError):
        saved = {}
    fp32, bf16 = matmul_gflops((torch.float32, torch.bfloat16))
    if 1 / 1.5 < bf16 / fp32 < 1.5:
        fp32, bf16 = matmul_gflops((torch.float32, torch.bfloat16), seconds=1.0)
    probe = Probe(fp32, bf16)
    try:  # a read-only home must not stop a run: the probe is then measured every time
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**saved, key: asdict(probe)}, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass
    return probe


def cpu_bf16_verdict() -> tuple[bool, str]:
    """(bf16 is fast on this CPU, the reason in words)."""
    native = native_bf16(cpu_flags())
    if native is False:
        return False, ("this CPU has no native bf16 instructions (no avx512_bf16/amx_bf16): "
                       "bf16 would run emulated, 10-80x slower than fp32")
    p = cpu_probe()
    speeds = f"bf16 {p.bf16_gflops:.1f} vs fp32 {p.fp32_gflops:.1f} GFLOP/s measured"
    if p.bf16_fast:
        return True, f"this CPU computes bf16 natively ({speeds})"
    return False, f"bf16 is slower than fp32 on this CPU ({speeds})"


def gpu_bf16() -> tuple[bool, str]:
    """(the visible CUDA device computes bf16, the reason)."""
    import torch

    name = torch.cuda.get_device_name()
    if torch.cuda.is_bf16_supported():
        return True, f"{name} supports bf16"
    return False, f"{name} has no bf16 support"


def _fast_bf16(device_type: str) -> tuple[bool, str]:
    return gpu_bf16() if device_type == "cuda" else cpu_bf16_verdict()


# ----------------------------------------------------------------------------- choices
def resolve_precision(requested: str, device_type: str) -> Choice:
    """The learner precision ``auto`` stands for on ``device_type`` ("cpu" or "cuda"): bf16
    (bf16 weights, fp32 master copy) where bf16 is fast, else fp32. An explicit setting is
    obeyed; a warning says when it is the slow one here."""
    fast, why = _fast_bf16(device_type)
    if requested == "auto":
        return Choice("bf16" if fast else "fp32", f"auto: {why}")
    warning = None
    if requested.startswith("bf16") and not fast:
        warning = f"--precision {requested}: {why}; --precision auto would pick fp32"
    elif requested == "fp32" and fast:
        warning = f"--precision fp32: {why}, about 2-3x faster; --precision auto would pick bf16"
    return Choice(requested, "given", warning)


def resolve_dtype(requested: str, device_type: str, flag: str = "--vllm-dtype") -> Choice:
    """The weight dtype of a sampling engine or an evaluation model: ``auto`` = bfloat16
    where bf16 is fast, else float32 on a CPU and float16 on a GPU without bf16."""
    fast, why = _fast_bf16(device_type)
    slow_half = "float16" if device_type == "cuda" else "float32"
    if requested == "auto":
        return Choice("bfloat16" if fast else slow_half, f"auto: {why}")
    warning = None
    if requested == "bfloat16" and not fast:
        warning = f"{flag} bfloat16: {why}; {flag} auto would pick {slow_half}"
    return Choice(requested, "given", warning)


# ----------------------------------------------------------------------------- threads
def thread_count(requested: int, cores: int, *, overlapped: bool) -> Choice:
    """torch threads of a CPU run (one process; each Ray actor sets its own). The rule: at
    no moment more busy threads than cores. An OpenMP pool that shares its cores with
    another spins and waits (measured on 2 cores: 2 engine + 2 learner threads made the
    overlapped loop slower than the plain one, docs/benchmarks.md).

    - phases that alternate (``--max-staleness 0``: generate, grade, update, one after the
      other) each use every core;
    - overlapped rollouts (``--max-staleness k >= 1``): the producer's generation and the
      learner's update run at once in this process, and torch's thread count is global to
      it (so is the in-process vLLM-CPU engine's, which takes it at start), so each gets
      half the cores, at least one;
    - reward workers (``--reward-workers``) are single-threaded processes, busy only while
      grading; they are not counted (grading is short next to generation and update);
    - ``--threads N`` overrides the rule."""
    if requested > 0:
        return Choice(str(requested), "given (--threads)")
    if overlapped:
        n = max(1, cores // 2)
        return Choice(str(n), f"{cores} cores halved: generation and update overlap (--max-staleness >= 1)")
    return Choice(str(cores), f"all {cores} cores: generation, grading and update take turns")


def deterministic_kernels() -> None:
    """``--deterministic``: this process's kernels give bitwise-identical results run to run
    (torch.use_deterministic_algorithms, cuBLAS's fixed workspace, no cuDNN autotuning), and
    a vLLM engine built after this call uses vLLM's batch-invariant kernels
    (``VLLM_BATCH_INVARIANT=1``, read when vLLM initialises; vLLM 0.32 then also pins its
    NCCL and all-reduce settings). On CPU torch's kernels are deterministic for a fixed
    thread count already; the GPU settings are untested here (no GPU)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before the first cuBLAS call
    os.environ.setdefault("VLLM_BATCH_INVARIANT", "1")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
