"""bench/bench_learner_gpu.py in --tiny mode on CPU (a smoke test, ~5 s): both attention
paths build, the dense one trains, every row is streamed to the JSONL file, a path that
fails costs only its own row; and the device it picks is one that ``torch.cuda.set_device``
accepts (checked without a GPU)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.cuda._utils import _get_device_index

ROOT = Path(__file__).resolve().parents[1]


def load_bench(name: str):
    """The script bench/NAME.py as a module (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench():
    return load_bench("bench_learner_gpu")


def test_tiny_benchmark_streams_rows_on_cpu(tmp_path):
    out = tmp_path / "rows.jsonl"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_learner_gpu.py"), "--tiny",
                          "--device", "cpu", "--jsonl", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    # Order of emission: varlen's summary (skipped: no backward on CPU), then dense's
    # warm-up update, its one timed update (--tiny: 1 step), its summary.
    assert [(r["row"], r["path"]) for r in rows] == [
        ("summary", "varlen"), ("update", "dense"), ("update", "dense"), ("summary", "dense")]
    assert rows[0]["skipped"] == "no FlexAttention backward on cpu"
    assert [r["warmup"] for r in rows[1:3]] == [True, False]
    dense = rows[-1]
    assert dense["tokens"] > 0 and dense["tokens_per_s"] > 0 and dense["grad_norm"] > 0
    # The same tiny weights: eager FlexAttention's forward equals the dense path's.
    assert dense["max_abs_dlogp"] < 1e-2
    assert "max|dlogp|" in run.stdout and "r1zero_flex" in run.stdout


def test_cuda_device_carries_the_index_set_device_needs():
    """The bench used to call ``torch.cuda.set_device(torch.device("cuda"))``, which raises
    ValueError before any measurement: ``set_device`` resolves its argument with
    ``_get_device_index``, and a CUDA device without an index has none."""
    bench = _bench()
    with pytest.raises(ValueError, match="specified index"):
        _get_device_index(torch.device("cuda"))  # what the old code passed
    for name in ("auto", "cuda"):
        device = bench.pick_device(name, cuda_available=True)
        assert device == torch.device("cuda", 0)
        assert _get_device_index(device) == 0  # what set_device will compute
    assert bench.pick_device("cuda:1", cuda_available=True) == torch.device("cuda", 1)
    assert bench.pick_device("auto", cuda_available=False) == torch.device("cpu")
    assert bench.pick_device("cpu", cuda_available=True) == torch.device("cpu")
    with pytest.raises(SystemExit, match="no CUDA device"):
        bench.pick_device("cuda", cuda_available=False)


def test_a_failing_path_costs_only_its_own_row(tmp_path, monkeypatch):
    bench = _bench()
    real = bench.run_path

    def run_path(path, *args, **kwargs):
        if path == "varlen":
            raise RuntimeError("compile failed")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(bench, "run_path", run_path)
    out = tmp_path / "rows.jsonl"
    assert bench.main(["--tiny", "--device", "cpu", "--jsonl", str(out)]) == 1
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0] == {"row": "error", "path": "varlen", "error": "RuntimeError: compile failed"}
    assert (rows[-1]["row"], rows[-1]["path"]) == ("summary", "dense")
    assert rows[-1]["max_abs_dlogp"] == 0.0  # dense is now the first path: its own reference
