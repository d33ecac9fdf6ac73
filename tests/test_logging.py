"""Run-directory I/O: metrics.jsonl round trip and crash/resume tolerance, rollout files,
run_info, optional-sink errors, and the plain-text progress output."""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
import sys

import numpy as np
import pytest
import torch

from r1zero import __version__
from r1zero.logging import (
    MetricsLogger,
    Progress,
    read_metrics,
    write_rollouts,
    write_run_info,
)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_metrics_round_trip(tmp_path):
    with MetricsLogger(tmp_path) as log:
        log.log(1, {"reward/mean": 0.25, "rollout/len_mean": 40})
        log.log(2, {"reward/mean": 0.5})
    records = read_metrics(tmp_path)
    assert [r["step"] for r in records] == [1, 2]
    assert records[0]["reward/mean"] == 0.25 and records[0]["rollout/len_mean"] == 40
    assert isinstance(records[0]["time"], float)


def test_each_line_is_flushed_before_close(tmp_path):
    log = MetricsLogger(tmp_path)
    log.log(1, {"a": 1.0})
    # Another process (a plotter) must see the record while the run is still going.
    assert read_metrics(tmp_path)[0]["a"] == 1.0
    log.close()
    log.close()  # idempotent


def test_non_finite_written_as_null_and_tensors_converted(tmp_path):
    with MetricsLogger(tmp_path) as log:
        log.log(0, {
            "nan": float("nan"), "inf": float("-inf"),
            "tensor": torch.tensor(0.5), "nan_tensor": torch.tensor(float("nan")),
            "np": np.float32(1.5), "np_int": np.int64(3), "flag": True,
        })
    raw = (tmp_path / "metrics.jsonl").read_text()
    assert "NaN" not in raw and "Infinity" not in raw  # strict JSON for any reader
    (r,) = _lines(tmp_path / "metrics.jsonl")
    assert r["nan"] is None and r["inf"] is None and r["nan_tensor"] is None
    assert r["tensor"] == 0.5 and r["np"] == 1.5 and r["np_int"] == 3 and r["flag"] == 1


def test_non_numeric_metric_rejected(tmp_path):
    with MetricsLogger(tmp_path) as log, pytest.raises(TypeError, match="'name'"):
        log.log(0, {"name": "grpo"})
    with MetricsLogger(tmp_path) as log, pytest.raises(ValueError, match="reserved"):
        log.log(0, {"step": 3})


def test_truncated_last_line_tolerated_and_repaired_on_resume(tmp_path):
    with MetricsLogger(tmp_path) as log:
        log.log(1, {"a": 1.0})
        log.log(2, {"a": 2.0})
    path = tmp_path / "metrics.jsonl"
    with open(path, "a") as f:
        f.write('{"step": 3, "a": 3.')  # crash mid-write: no closing brace, no newline
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]

    # Resuming must not glue the next record onto the fragment.
    with MetricsLogger(tmp_path) as log:
        log.log(3, {"a": 30.0})
    assert [(r["step"], r["a"]) for r in read_metrics(tmp_path)] == [(1, 1.0), (2, 2.0), (3, 30.0)]
    assert len(_lines(path)) == 3  # every line is valid JSON again


def test_corrupt_middle_line_warns(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "a": 1}\ngarbage\n{"step": 2, "a": 2}\n')
    with pytest.warns(UserWarning, match=":2:"):
        assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]


def test_resumed_run_repeating_steps_keeps_last(tmp_path):
    # Crashed run logged steps 1..4; the last checkpoint was at step 2, so the resumed
    # run logs 3, 4, 5 again. Stale keys of the crashed run (eval at step 4) must go too.
    with MetricsLogger(tmp_path) as log:
        for s in (1, 2, 3, 4):
            log.log(s, {"a": float(s)})
        log.log(4, {"eval/accuracy": 0.9})
    with MetricsLogger(tmp_path) as log:
        for s in (3, 4, 5):
            log.log(s, {"a": 10.0 * s})
    records = read_metrics(tmp_path)
    assert [(r["step"], r["a"]) for r in records] == [(1, 1.0), (2, 2.0), (3, 30.0), (4, 40.0), (5, 50.0)]
    assert "eval/accuracy" not in records[3]


def test_same_step_logged_twice_merges_later_wins(tmp_path):
    # Train and eval metrics of one step may arrive in separate calls.
    with MetricsLogger(tmp_path) as log:
        log.log(5, {"reward/mean": 0.1, "x": 1.0})
        log.log(5, {"eval/accuracy": 0.4, "x": 2.0})
    (r,) = read_metrics(tmp_path)
    assert r["reward/mean"] == 0.1 and r["eval/accuracy"] == 0.4 and r["x"] == 2.0


def test_read_metrics_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="metrics.jsonl"):
        read_metrics(tmp_path)


def test_write_rollouts_overwrites_atomically(tmp_path):
    recs = [{"prompt": "1+1", "response": "2", "reward": 1.0, "logprobs": [-0.5, float("-inf")]}]
    path = write_rollouts(tmp_path, 7, recs)
    assert path == tmp_path / "rollouts" / "step_000007.jsonl"
    assert _lines(path) == [{**recs[0], "logprobs": [-0.5, None]}]
    write_rollouts(tmp_path, 7, [{"response": "new", "ids": torch.tensor([1, 2])}])
    assert _lines(path) == [{"response": "new", "ids": [1, 2]}]
    assert sorted(p.name for p in path.parent.iterdir()) == ["step_000007.jsonl"]  # no temp left


def test_run_info_has_versions_git_and_config(tmp_path):
    write_run_info(tmp_path, {"algo": "dr_grpo", "lr": 1e-6, "out": tmp_path})
    config = json.loads((tmp_path / "config.json").read_text())
    assert config == {"algo": "dr_grpo", "lr": 1e-6, "out": str(tmp_path)}
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["r1zero_version"] == __version__
    assert info["versions"]["torch"] == importlib.metadata.version("torch")
    assert info["versions"]["python"] and info["versions"]["transformers"]
    assert info["hostname"] and info["cpu_count"] >= 1 and info["argv"] == sys.argv
    assert info["gpus"] == [] or all(isinstance(g, str) for g in info["gpus"])
    # The test suite runs from the git checkout, so the revision must be found.
    assert info["git"] is not None and len(info["git"]["commit"]) == 40


def test_run_info_keeps_previous_invocations(tmp_path):
    write_run_info(tmp_path, {"step": 0})
    first = json.loads((tmp_path / "run_info.json").read_text())
    write_run_info(tmp_path, {"step": 1})
    second = json.loads((tmp_path / "run_info.json").read_text())
    assert second["previous_invocations"] == [first]


def test_git_revision_none_outside_a_repo(tmp_path):
    from r1zero.logging import _git_revision

    assert _git_revision(tmp_path) is None


@pytest.mark.parametrize("flag, module, extra", [
    ("tensorboard", "tensorboard", "r1zero[tensorboard]"),
    ("wandb", "wandb", "r1zero[wandb]"),
])
def test_missing_optional_sink_names_the_extra(tmp_path, monkeypatch, flag, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=re.escape(f"pip install '{extra}'")):
        MetricsLogger(tmp_path, **{flag: True})
    assert not (tmp_path / "metrics.jsonl").exists()  # failed before touching the run dir


def test_progress_plain_lines_when_not_a_tty(capsys):
    # capsys replaces stdout with a non-TTY stream, as in CI or a redirected log.
    with Progress(total_steps=10, start_step=2) as p:
        p.update(3, reward=0.5, accuracy=0.25, len=41.0)
        p.update(4, reward=0.75)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("step 3/10 | reward 0.5 | acc 0.25 | len 41 | ")
    assert lines[1].startswith("step 4/10 | reward 0.75 | ")
    assert all(" s/step | eta " in line for line in lines)


def test_progress_disabled_prints_nothing(capsys):
    with Progress(total_steps=3, enabled=False) as p:
        p.update(1, reward=1.0)
    assert capsys.readouterr().out == ""


def test_progress_eta_counts_only_this_process(monkeypatch):
    now = [0.0]
    monkeypatch.setattr("r1zero.logging.time.perf_counter", lambda: now[0])
    with Progress(total_steps=100, start_step=50) as p:
        now[0] = 20.0
        # 10 steps in 20 s since the resume -> 2 s/step, 40 steps left -> 80 s.
        assert math.isclose(p.step_s(60), 2.0)
        assert math.isclose(p.eta_s(60), 80.0)
        assert p.eta_s(50) is None  # nothing done yet by this process
