"""The one-shot device check (scripts/gpu_check.sh, gpu_check*.py, gpu_bundle.py) on CPU.

Default suite: the runner with stand-in checks (rows streamed as they come, a hung check
killed with its helpers at its limit, the rest still run), its time rule, the bundle, and
the FSDP2 and DCP checks themselves on gloo (the same code the GPU run takes). Slow: the
whole ``--dry-run`` (45-110 s on 2 shared cores) and FlexAttention compiled on CPU (~20 s).
Network: the bundle's wheel download.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

import gpu_bundle  # noqa: E402
import gpu_check  # noqa: E402
from gpu_check import Check, time_limit  # noqa: E402


def _alive(pid: int) -> bool:
    """Running (a zombie awaiting its reaper counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / gpu_check.ROWS).read_text().splitlines()]


def test_time_limit_keeps_what_later_checks_need():
    a, b, c = Check("a", "m:a", 100, 10), Check("b", "m:b", 50, 20), Check("c", "m:c", 300, 60)
    checks = (a, b, c)
    # 200 s left: a may take min(100, 200 - (20 + 60)) = 100.
    assert time_limit(checks, 0, 200) == 100
    # a used all 100: b gets min(50, 100 - 60) = 40; then c gets min(300, 60 - 0) = 60.
    assert time_limit(checks, 1, 100) == 40
    assert time_limit(checks, 2, 60) == 60
    # 90 s left: a gets 90 - 80 = 10, exactly its minimum; at 85 s, 5 < 10: skipped (0).
    assert time_limit(checks, 0, 90) == 10
    assert time_limit(checks, 0, 85) == 0
    assert time_limit(checks, 2, 59) == 0  # the last check below its own minimum


def test_runner_streams_rows_and_a_hang_loses_only_its_own(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    fakes = "tests.gpu_check_fakes"
    checks = (Check("ok", f"{fakes}:ok", 30, 1), Check("fail", f"{fakes}:fail", 30, 1),
              Check("needs_cuda", f"{fakes}:needs_cuda", 30, 1), Check("hang", f"{fakes}:hang", 3, 1),
              Check("after", f"{fakes}:rows_so_far", 30, 1))
    args = Namespace(out=tmp_path, budget_s=200.0, only=None, device="cpu", dry_run=True)
    assert gpu_check.run_all(args, checks) == 1  # a failure and a time-out
    rows = _rows(tmp_path)
    assert [(r["check"], r["status"]) for r in rows] == [
        ("ok", "ok"), ("fail", "fail"), ("needs_cuda", "skip"), ("hang", "timeout"), ("after", "ok")]
    assert rows[0]["detail"] == {"device": "cpu", "answer": 42}
    assert rows[1]["error"] == "ValueError: wrong on purpose"
    assert rows[2]["note"] == "needs CUDA: a kernel" and rows[2]["detail"] == {"measured": 1.5}
    assert rows[3]["error"] == "no result in 3 s (killed)" and 3 <= rows[3]["s"] < 10
    assert "log_tail" in rows[1] and "log_tail" in rows[3] and "log_tail" not in rows[0]
    assert not _alive(int((tmp_path / "hang_helper.pid").read_text()))  # killed with it
    # The row of every earlier check was on disk before the last one started.
    assert rows[4]["detail"]["rows_before"] == ["ok", "fail", "needs_cuda", "hang"]
    summary = (tmp_path / gpu_check.SUMMARY).read_text().splitlines()
    assert summary[-1] == "gpu_check: 2 ok, 1 failed, 1 timed out, 1 skipped"
    assert "ValueError: wrong on purpose" in (tmp_path / gpu_check.LOG).read_text()  # traceback
    printed = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in printed[1:] if not line.startswith("    |")][:5]
    assert names == ["ok", "fail", "needs_cuda", "hang", "after"]  # printed as they came
    tail = printed[printed.index(next(x for x in printed if x.startswith("fail "))) + 1]
    assert tail.startswith("    | ")  # a failure shows the end of its own output


def test_checks_name_functions_that_exist():
    import importlib

    for check in gpu_check.CHECKS:
        module, function = check.target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), check.name
    assert sum(c.min_s for c in gpu_check.CHECKS) < gpu_check.BUDGET_S < 480  # 8 minutes


def test_missing_bundle_is_one_clear_error(tmp_path):
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh")], capture_output=True,
                         text=True, env={**os.environ, "GPU_BUNDLE": str(tmp_path / "none")}, timeout=60)
    assert run.returncode == 1
    assert run.stderr.strip() == (f"gpu_check: no bundle at {tmp_path / 'none'}; run `make gpu-bundle` "
                                  "and carry .gpu to this machine")


def test_bundle_holds_the_tokenizer_where_r1zero_looks(tmp_path, monkeypatch):
    from r1zero.models import DEFAULT_MODEL, resolve_tokenizer_path

    out = tmp_path / ".gpu"
    assert gpu_bundle.main(["--out", str(out)]) == 0
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["wheels"] == [] and manifest["bundle_bytes"] < 8 << 20  # tokenizer only
    assert not list(out.rglob("*.safetensors"))  # no weights travel
    monkeypatch.setenv("R1ZERO_CACHE", str(out / "cache"))
    assert resolve_tokenizer_path(DEFAULT_MODEL) == str(out / manifest["tokenizer"])


@pytest.mark.network
def test_bundle_carries_pure_python_wheels_only(tmp_path):
    from importlib.metadata import version

    wheels = gpu_bundle.add_wheels(["tyro"], tmp_path)  # at the version installed here
    assert [w.name for w in wheels] == [f"tyro-{version('tyro')}-py3-none-any.whl"]
    with pytest.raises(SystemExit, match="no pure-Python wheel"):
        gpu_bundle.add_wheels(["numpy"], tmp_path)  # compiled code cannot travel as a wheel


def test_without_cuda_the_real_run_says_how_to_dry_run(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is visible")
    assert gpu_check.main(["--out", str(tmp_path)]) == 2
    assert "--dry-run" in capsys.readouterr().err
    assert not (tmp_path / gpu_check.ROWS).exists()


def test_bundle_counts_only_what_the_image_lacks():
    # PEP 503 names: PyYAML is pyyaml, huggingface_hub is huggingface-hub; tyro is absent.
    assert gpu_bundle.missing_from_image({"torch", "PyYAML", "huggingface_hub"}) == []
    assert gpu_bundle.missing_from_image({"torch", "tyro", "math_verify"}) == ["math-verify", "tyro"]


def _dry_run(out: Path, *only: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run", "--out", str(out)]
    return subprocess.run(cmd + (["--only", *only] if only else []), capture_output=True,
                          text=True, timeout=300, cwd=ROOT)


def test_fsdp2_and_dcp_checks_pass_on_gloo(tmp_path):
    """The CPU twins of two GPU paths, by the GPU run's own code: the cluster's learner rank
    (FSDP2, world 1) against one process, and its DCP save loaded back two ways."""
    run = _dry_run(tmp_path, "fsdp_learner", "dcp_save_load")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    fsdp, dcp = _rows(tmp_path)
    assert fsdp["status"] == dcp["status"] == "ok"
    assert fsdp["detail"]["backend"] == "gloo" and fsdp["detail"]["kernel"] == "r1zero_segments"
    assert fsdp["detail"]["rel_update_err"] < 0.05 and fsdp["detail"]["grad_norm"] > 0
    assert "optim_dcp" in dcp["detail"]["files"] and "sharded" not in dcp["detail"]["files"]
    # What these checks import of their own is in the GPU image (no wheel to carry).
    assert gpu_bundle.missing_from_image(set(fsdp["imports"]) | set(dcp["imports"])) == []


@pytest.mark.slow
def test_dry_run_end_to_end(tmp_path):
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run"],
                         capture_output=True, text=True, timeout=600, cwd=ROOT,
                         env={**os.environ, "PYTHON": sys.executable, "OUT": str(tmp_path)})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = {r["check"]: r for r in _rows(tmp_path)}
    assert list(rows) == [c.name for c in gpu_check.CHECKS]
    skipped = {n for n, r in rows.items() if r["status"] == "skip"}
    assert skipped == {"flex_vs_dense", "cpu_offload", "cuda_ipc"}
    assert all(rows[n]["note"].startswith("needs CUDA") for n in skipped)
    assert all(r["status"] == "ok" for n, r in rows.items() if n not in skipped)
    assert rows["flex_vs_dense"]["detail"]["max_abs_dlogp"] < 1e-4  # forward compared on CPU
    assert rows["cuda_ipc"]["detail"]["mechanism"] == "cpu shared memory"
    bench = [json.loads(x) for x in (tmp_path / "bench_learner_gpu.jsonl").read_text().splitlines()]
    assert [r["path"] for r in bench if r["row"] == "summary"] == ["varlen", "dense"]
    assert run.stdout.splitlines()[-1] == "gpu_check: 5 ok, 0 failed, 0 timed out, 3 skipped"
    imports = set().union(*(r["imports"] for r in rows.values()))
    assert gpu_bundle.missing_from_image(imports) == []


@pytest.mark.slow
def test_compiled_flex_compiles_twice_then_never_on_cpu(tmp_path, monkeypatch):
    """FlexAttention compiled on CPU (forward only: torch 2.13 has no CPU backward) through
    the learner's packed path, over five growing lengths: a static graph for the first
    length, a dynamic one at the second, none after (what the GPU check asserts for the
    CUDA kernel). ~25 s on 2 cores, mostly the C++ compile."""
    import torch

    from gpu_check_kernels import graphs_compiled, length_ladder, packed_pass, use_kernel
    from r1zero.testing import tiny_model
    from r1zero.learner import varlen_attention

    monkeypatch.setattr(varlen_attention, "DEVICES", ("cuda", "cpu"))  # compiled here too
    torch._dynamo.reset()
    ctx = gpu_check.Ctx("cpu", gpu_check.TINY, tmp_path, tmp_path)
    model, _ = tiny_model(seed=0)
    use_kernel(model, varlen_attention.NAME, ctx.device)
    ladder = length_ladder(ctx)
    assert len({sum(len(q.response_ids) for q in b) for b in ladder}) == 5  # five lengths
    counts = graphs_compiled(lambda b: packed_pass(model, b, 1 << 30, grads=False), ladder)
    assert counts == [1, 1, 0, 0, 0]
