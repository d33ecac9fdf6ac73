"""bench/bench_learner_gpu.py in --tiny mode on CPU (a smoke test, ~5 s): both attention
paths build, the dense one trains, the table and the JSON rows come out."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_benchmark_runs_on_cpu(tmp_path):
    out = tmp_path / "rows.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_learner_gpu.py"), "--tiny",
                          "--device", "cpu", "--json", str(out)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    rows = {r["path"]: r for r in json.loads(out.read_text())}
    assert rows["varlen"]["skipped"] == "no FlexAttention backward on cpu"
    dense = rows["dense"]
    assert dense["tokens"] > 0 and dense["tokens_per_s"] > 0 and dense["grad_norm"] > 0
    assert "max|dlogp|" in run.stdout and "r1zero_flex" in run.stdout
