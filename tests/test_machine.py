"""`r1zero.machine`: what --precision auto / --vllm-dtype auto / --dtype auto pick, on both
kinds of CPU (native bf16, and none: emulated here with ONEDNN_MAX_CPU_ISA=AVX2)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from r1zero import machine
from r1zero.machine import (
    Choice,
    Probe,
    cpu_flags,
    native_bf16,
    resolve_dtype,
    resolve_precision,
)

X86_BF16 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_bf16 sha_ni\n"
X86_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 fma sha_ni\n"
ARM_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


def test_flags_parse_and_decide_only_the_negative():
    assert "avx512_bf16" in cpu_flags(X86_BF16)
    assert native_bf16(cpu_flags(X86_BF16), "x86_64") is True
    assert native_bf16(cpu_flags(X86_AVX2), "x86_64") is False
    assert native_bf16(cpu_flags(ARM_BF16), "aarch64") is True
    assert native_bf16(cpu_flags("Features\t: fp asimd\n"), "aarch64") is False
    assert native_bf16(None) is None  # no /proc/cpuinfo: unknown, the probe decides
    assert cpu_flags("no flags here\n") is None


def test_probe_rule():
    assert Probe(fp32_gflops=73.5, bf16_gflops=0.9).bf16_fast is False  # AVX2-only EPYC
    assert Probe(fp32_gflops=118.0, bf16_gflops=354.0).bf16_fast is True  # avx512_bf16 EPYC
    assert Probe(fp32_gflops=50.0, bf16_gflops=50.0).bf16_fast is False  # a tie buys nothing


@pytest.mark.parametrize("fast, want, want_dtype", [(True, "bf16", "bfloat16"), (False, "fp32", "float32")])
def test_auto_follows_the_verdict(monkeypatch, fast, want, want_dtype):
    monkeypatch.setattr(machine, "cpu_bf16_verdict", lambda: (fast, "because"))
    p = resolve_precision("auto", "cpu")
    assert (p.value, p.warning) == (want, None) and "because" in p.reason
    d = resolve_dtype("auto", "cpu")
    assert (d.value, d.warning) == (want_dtype, None)


def test_gpu_without_bf16_gets_fp32_learner_and_fp16_engine(monkeypatch):
    monkeypatch.setattr(machine, "gpu_bf16", lambda: (False, "V100 has no bf16 support"))
    assert resolve_precision("auto", "cuda").value == "fp32"
    assert resolve_dtype("auto", "cuda").value == "float16"
    monkeypatch.setattr(machine, "gpu_bf16", lambda: (True, "H200 supports bf16"))
    assert resolve_precision("auto", "cuda").value == "bf16"
    assert resolve_dtype("auto", "cuda").value == "bfloat16"


def test_explicit_setting_is_obeyed_with_a_warning_when_slow(monkeypatch):
    monkeypatch.setattr(machine, "cpu_bf16_verdict", lambda: (False, "no native bf16"))
    for asked in ("bf16", "bf16-autocast"):
        c = resolve_precision(asked, "cpu")
        assert c.value == asked and "auto would pick fp32" in c.warning
    assert resolve_precision("fp32", "cpu") == Choice("fp32", "given", None)
    assert "float32" in resolve_dtype("bfloat16", "cpu").warning
    monkeypatch.setattr(machine, "cpu_bf16_verdict", lambda: (True, "native bf16"))
    assert "auto would pick bf16" in resolve_precision("fp32", "cpu").warning
    assert resolve_precision("bf16", "cpu").warning is None


def test_flags_without_bf16_skip_the_probe(monkeypatch):
    monkeypatch.setattr(machine, "cpu_flags", lambda: cpu_flags(X86_AVX2))
    monkeypatch.setattr(machine, "cpu_probe", lambda: pytest.fail("probed a CPU without bf16"))
    fast, why = machine.cpu_bf16_verdict()
    assert not fast and "no native bf16" in why


def test_probe_is_measured_once_and_cached(monkeypatch, tmp_path):
    calls = []

    def fake(dtypes, seconds=0.3):
        calls.extend(str(d) for d in dtypes)
        return [10.0, 30.0]

    monkeypatch.setattr(machine, "matmul_gflops", fake)
    first = machine.cpu_probe(cache=tmp_path)
    second = machine.cpu_probe(cache=tmp_path)
    assert first == second == Probe(10.0, 30.0) and len(calls) == 2
    saved = json.loads((tmp_path / "cpu_probe.json").read_text())
    assert list(saved.values()) == [{"fp32_gflops": 10.0, "bf16_gflops": 30.0}]
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # another ISA cap: measured afresh
    machine.cpu_probe(cache=tmp_path)
    assert len(calls) == 4 and len(json.loads((tmp_path / "cpu_probe.json").read_text())) == 2


def test_a_corrupt_cache_is_measured_again(monkeypatch, tmp_path):
    (tmp_path / "cpu_probe.json").write_text("{not json")
    monkeypatch.setattr(machine, "matmul_gflops", lambda d, seconds=0.3: [5.0, 50.0])
    assert machine.cpu_probe(cache=tmp_path) == Probe(5.0, 50.0)


def test_a_near_tie_is_measured_again_for_longer(monkeypatch, tmp_path):
    budgets = []

    def fake(dtypes, seconds=0.3):
        budgets.append(seconds)
        return [10.0, 11.0] if len(budgets) == 1 else [10.0, 31.0]

    monkeypatch.setattr(machine, "matmul_gflops", fake)
    assert machine.cpu_probe(cache=tmp_path) == Probe(10.0, 31.0) and budgets == [0.3, 1.0]


def _auto_in_subprocess(tmp_path, **env) -> dict:
    code = ("import json; from r1zero.machine import resolve_precision, cpu_probe;"
            "p = resolve_precision('auto', 'cpu'); print(json.dumps([p.value, p.reason]))")
    full = {**os.environ, "R1ZERO_CACHE": str(tmp_path), **env}
    out = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


HAS_NATIVE = native_bf16(cpu_flags()) is True


@pytest.mark.skipif(not HAS_NATIVE, reason="this CPU has no native bf16 (the rule is fp32 by flags)")
def test_real_probe_on_both_kinds_of_cpu(tmp_path):
    """On this native-bf16 CPU auto picks bf16; with oneDNN and ATen capped at AVX2 (how an
    AVX2-only CPU computes bf16: measured 1.2 vs 55 GFLOP/s here) the probe picks fp32."""
    value, reason = _auto_in_subprocess(tmp_path)
    assert value == "bf16", reason
    value, reason = _auto_in_subprocess(tmp_path, ONEDNN_MAX_CPU_ISA="AVX2", ATEN_CPU_CAPABILITY="avx2")
    assert value == "fp32", reason
    assert "slower than fp32" in reason


def test_thread_rule_never_runs_more_busy_threads_than_cores():
    from r1zero.machine import thread_count

    assert thread_count(0, 2, overlapped=False).value == "2"  # phases take turns
    assert thread_count(0, 2, overlapped=True).value == "1"   # generation || update
    assert thread_count(0, 1, overlapped=True).value == "1"
    assert thread_count(0, 16, overlapped=True).value == "8"
    assert thread_count(3, 16, overlapped=True) == Choice("3", "given (--threads)")
