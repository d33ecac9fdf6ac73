"""Durability (issue 19 items 1, 2, 5): files that are the old or the new version, never a
torn one; checkpoints sealed by a manifest and a resume that falls back past a damaged one;
a second signal that stops the process inside a native op; a run that fails before its
first step removes the folder it created. (Kills at random instants: tests/test_faults.py.)"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from r1zero import durable
from r1zero.config import TrainConfig
from r1zero.learner import checkpoint as ckpt
from r1zero.logging import MetricsLogger, truncate_run_after
from r1zero.train import trainer as trainer_mod
from r1zero.train.trainer import train
from tests.faults import checkpoints_intact, metric_steps
from tests.test_train_loop import _cfg, _weights, tiny_dir  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_plots(monkeypatch):
    """Plots are not under test here (seconds of matplotlib per run)."""
    monkeypatch.setattr(trainer_mod, "plot_run", lambda run_dir: [])


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


# ----------------------------------------------------------------------------- files
def test_a_failed_replace_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    durable.write_atomic(path, "old\n")
    monkeypatch.setattr(os, "fsync", _no_space)  # the disk fills while the new version is written
    with pytest.raises(OSError, match="No space"):
        durable.write_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]


def test_a_torn_last_line_is_cut_before_the_next_append(tmp_path):
    path = tmp_path / "samples.jsonl"
    path.write_text('{"a": 1}\n{"a": 2, "b"')  # a kill in the middle of the second row
    assert durable.cut_torn_tail(path) == len('{"a": 2, "b"')
    durable.append_lines(path, ['{"a": 3}\n'])
    assert path.read_text() == '{"a": 1}\n{"a": 3}\n'
    assert durable.cut_torn_tail(path) == 0  # whole lines: nothing to cut
    (tmp_path / "one.jsonl").write_text('{"torn"')
    assert durable.cut_torn_tail(tmp_path / "one.jsonl") == 7
    assert (tmp_path / "one.jsonl").read_text() == ""


def test_every_metrics_row_is_synced_before_log_returns(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")),
                                                 real(fd)))
    with MetricsLogger(tmp_path) as log:
        log.log(1, {"reward/mean": 0.5})
        assert synced == [str(tmp_path / "metrics.jsonl")]
        log.log(2, {"reward/mean": 0.25})
    assert len(synced) == 2


def test_a_resume_before_any_checkpoint_forgets_every_row(tmp_path):
    """Killed before its first checkpoint: the resumed run starts at step 0 again (its
    evaluation too), so no row may stay; with a checkpoint at 2, rows 0-2 stay."""
    rows = "".join(json.dumps({"step": s}) + "\n" for s in (0, 1, 2, 3))
    (tmp_path / "metrics.jsonl").write_text(rows)
    truncate_run_after(tmp_path, 2)
    assert metric_steps(tmp_path) == [0, 1, 2]
    truncate_run_after(tmp_path, 0)
    assert metric_steps(tmp_path) == []


def test_an_eval_chunk_cut_mid_line_loses_only_its_unfinished_problem(tmp_path):
    from r1zero.evaluation.runner import drop_torn_problem

    def row(problem, sample):
        return json.dumps({"benchmark": "b", "problem_id": problem, "sample_index": sample}) + "\n"

    path = tmp_path / "samples.jsonl"
    path.write_text(row("p1", 0) + row("p1", 1) + row("p2", 0) + row("p2", 1)[:20])  # torn in p2
    assert drop_torn_problem(path, samples=2) == 1  # p2's sample 0 goes: p2 is generated whole
    assert path.read_text() == row("p1", 0) + row("p1", 1)
    path.write_text(row("p1", 0) + row("p1", 1) + row("p2", 0)[:9])  # torn in p2's first line
    assert drop_torn_problem(path, samples=2) == 0  # p1 is finished and stays
    assert path.read_text() == row("p1", 0) + row("p1", 1)
    path.write_text(row("p1", 0))  # whole lines (a --samples raised on a rerun): nothing torn
    assert drop_torn_problem(path, samples=2) == 0 and path.read_text() == row("p1", 0)


# ----------------------------------------------------------------------------- manifests
def test_a_manifest_catches_truncation_changed_bytes_and_missing_files(tmp_path):
    d = tmp_path / "ckpt"
    (d / "optim_dcp").mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"w" * 1000)
    (d / "optim_dcp" / "__0_0.distcp").write_bytes(b"o" * 500)
    assert durable.check(d) == "no manifest.json (not sealed: its save did not finish)"
    manifest = durable.seal(d, step=3)
    assert manifest["step"] == 3 and manifest["files"]["optim_dcp/__0_0.distcp"]["bytes"] == 500
    assert durable.check(d) is None
    with open(d / "model.safetensors", "r+b") as f:
        f.truncate(600)
    assert durable.check(d, hashes=False) == "model.safetensors has 600 bytes, its manifest says 1000"
    (d / "model.safetensors").write_bytes(b"w" * 999 + b"x")  # same size, one byte changed
    assert durable.check(d, hashes=False) is None  # sizes alone cannot see it
    assert "model.safetensors does not match its SHA-256" in durable.check(d)
    (d / "optim_dcp" / "__0_0.distcp").unlink()
    assert durable.check(d, hashes=False) == "optim_dcp/__0_0.distcp is missing"


class _Tokenizer:
    def save_pretrained(self, path):
        (Path(path) / "tokenizer.json").write_text("{}")


def test_a_full_disk_during_a_save_leaves_the_previous_checkpoint_named(tmp_path):
    def weights(path):
        (path / "model.safetensors").write_bytes(b"w" * 100)

    def weights_then_full(path):
        (path / "model.safetensors").write_bytes(b"w" * 40)
        _no_space()

    first = ckpt.save_with(tmp_path, _Tokenizer(), ckpt.TrainState(step=1), 2, weights)
    with pytest.raises(ckpt.CheckpointError) as e:
        ckpt.save_with(tmp_path, _Tokenizer(), ckpt.TrainState(step=2), 2, weights_then_full)
    message = str(e.value)
    assert "step_000002 could not be written (No space left on device)" in message
    assert f"the previous checkpoint, {first}, is intact" in message and "--resume" in message
    assert "\n" not in message
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_000001"]  # no temporary left
    assert ckpt.damage(first) is None and ckpt.resume_point(tmp_path) == first


def test_two_checkpoints_by_default_and_the_help_says_what_they_cost(capsys):
    from r1zero.cli import main

    assert TrainConfig().keep_checkpoints == 2
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(re.sub(r"[│╭╮╰╯─]", " ", capsys.readouterr().out).split())  # boxes or not
    for cost in ("1.6 GB for the 135M default model", "~18 GB for a 1.5B", "~90 GB for a 7B"):
        assert cost in help_text, cost


def test_pruning_renames_before_deleting(tmp_path, monkeypatch):
    """A kill while an old checkpoint is deleted must not leave half of it under a
    checkpoint name (a resume would take it for a complete one)."""
    for step in (1, 2):
        ckpt.save_with(tmp_path, _Tokenizer(), ckpt.TrainState(step=step), 2,
                       lambda p: (p / "model.safetensors").write_bytes(b"w"))
    deleted = []
    monkeypatch.setattr(shutil, "rmtree", lambda p, **kw: deleted.append(Path(p).name))
    ckpt.save_with(tmp_path, _Tokenizer(), ckpt.TrainState(step=3), 2,
                   lambda p: (p / "model.safetensors").write_bytes(b"w"))
    assert deleted == [".deleting_step_000001"]  # what a kill mid-delete would leave: not a step_*
    assert [p.name for p in ckpt.step_dirs(tmp_path / "checkpoints")] == ["step_000002", "step_000003"]


def test_a_kill_before_pruning_is_pruned_when_the_finished_run_resumes(tmp_path):
    """Kill point 37 of the slow fault suite: killed after the last step's checkpoint was
    sealed but before the oldest was deleted; the resumed run has nothing left to train
    and saves that same step again, which must still prune (it returned early)."""
    def weights(p):
        (p / "model.safetensors").write_bytes(b"w")

    for step in (1, 2, 3):  # keep 10: three checkpoints, as the kill left them with keep 2
        ckpt.save_with(tmp_path, _Tokenizer(), ckpt.TrainState(step=step), 10, weights)
    ckpt.save_with(tmp_path, _Tokenizer(), ckpt.TrainState(step=3), 2, weights)
    assert [p.name for p in ckpt.step_dirs(tmp_path / "checkpoints")] == ["step_000002", "step_000003"]


# ----------------------------------------------------------------------------- resume
@pytest.fixture(scope="module")
def two_checkpoints(tiny_dir, tmp_path_factory):  # noqa: F811
    """A 2-step run with the default number of checkpoints (2), and its final weights."""
    run = tmp_path_factory.mktemp("base") / "run"
    saved = trainer_mod.plot_run
    trainer_mod.plot_run = lambda run_dir: []
    try:
        train(_cfg(tiny_dir, run, steps=2, eval_every=0, keep_checkpoints=TrainConfig().keep_checkpoints))
    finally:
        trainer_mod.plot_run = saved
    return run, _weights(run, 2)


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("damaged", ["model.safetensors", "trainer_state.pt", "optim_dcp/__0_0.distcp"])
def test_resume_falls_back_past_a_truncated_checkpoint(damaged, two_checkpoints, tmp_path, capsys):
    base, final = two_checkpoints
    run = shutil.copytree(base, tmp_path / "run")
    _truncate(run / "checkpoints" / "step_000002" / damaged)
    train(TrainConfig(resume=str(run), progress=False))
    lines = [x for x in capsys.readouterr().err.splitlines() if "damaged" in x]
    assert len(lines) == 1 and "step_000002 is damaged" in lines[0] and damaged in lines[0]
    assert (run / "checkpoints" / "damaged-step_000002" / damaged).exists()  # kept for inspection
    assert checkpoints_intact(run) == ["step_000001", "step_000002"]
    assert metric_steps(run) == [1, 2]  # step 2 ran again and is logged once
    again = _weights(run, 2)
    for name in final:
        torch.testing.assert_close(again[name], final[name], rtol=0, atol=1e-6)


def test_no_intact_checkpoint_left_is_one_clear_line(two_checkpoints, tmp_path, capsys):
    from r1zero.cli import main

    run = shutil.copytree(two_checkpoints[0], tmp_path / "run")
    for step in (1, 2):
        _truncate(run / "checkpoints" / f"step_{step:06d}" / "model.safetensors")
    with pytest.raises(SystemExit) as e:
        main(["train", "--resume", str(run)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --resume") and "no intact checkpoint" in err[-1]
    assert "damaged-step_000002, damaged-step_000001" in err[-1] and "Traceback" not in "\n".join(err)
    assert run.is_dir()  # a failed resume never removes the run


def test_resuming_a_finished_run_keeps_its_checkpoint(two_checkpoints, tmp_path):
    run = shutil.copytree(two_checkpoints[0], tmp_path / "run")
    manifest = run / "checkpoints" / "step_000002" / durable.MANIFEST
    before = manifest.stat().st_mtime_ns
    train(TrainConfig(resume=str(run), progress=False))
    assert manifest.stat().st_mtime_ns == before  # not rewritten (no window without it)


# ----------------------------------------------------------------------------- run folder
def test_a_run_that_fails_loading_its_model_removes_the_folder_it_created(tmp_path, capsys):
    run = tmp_path / "run"
    with pytest.raises(Exception):  # noqa: B017  (the error itself is the loaders' business)
        train(_cfg(str(tmp_path / "no-such-model"), run))
    assert not run.exists()
    assert f"removed the run folder it created, {run}" in capsys.readouterr().err


class FailingTask:
    """Arithmetic problems whose verifier raises (a bug in a user's task)."""

    name = "failing"
    default_template = "chat"

    def __init__(self, cfg):
        from dataclasses import replace

        from r1zero.tasks import get_task

        self.inner = get_task(replace(cfg, name="arithmetic"))

    def problems(self, split):
        return self.inner.problems(split)

    def verify(self, response, problem, *, template):
        raise RuntimeError("verifier bug")


def make_failing_task(cfg):
    return FailingTask(cfg)


def test_a_run_that_fails_in_its_first_step_removes_its_folder_but_never_an_existing_one(
        tiny_dir, tmp_path):  # noqa: F811
    from r1zero.config import TaskConfig

    task = TaskConfig(name="tests.test_durability:make_failing_task", num_train=20, num_test=3)
    run = tmp_path / "run"
    with pytest.raises(RuntimeError, match="verifier bug"):
        train(_cfg(tiny_dir, run, task=task, eval_every=0))
    assert not run.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(RuntimeError, match="verifier bug"):
        train(_cfg(tiny_dir, mine, task=task, eval_every=0))
    assert (mine / "notes.txt").read_text() == "keep me"


# ----------------------------------------------------------------------------- signals
SECOND_SIGNAL_CHILD = textwrap.dedent("""
    import sys, torch
    import r1zero.learner.local as local
    import r1zero.train.trainer as trainer
    from tests.test_train_loop import _cfg

    real = local.LocalLearner.update
    def update(self, seqs, step):
        if step == 1:  # the second step: one checkpoint (step 1) exists
            print("NATIVE", flush=True)
            a = torch.ones(4096, 4096)
            for _ in range(30):  # each matmul: ~1 s inside ATen (one thread), never back in Python
                a = a @ a
        return real(self, seqs, step)
    local.LocalLearner.update = update
    trainer.plot_run = lambda run_dir: []
    torch.set_num_threads(1)
    trainer.train(_cfg(sys.argv[1], sys.argv[2], steps=3, eval_every=0, save_every=1))
""")


def test_a_second_sigterm_stops_a_native_op_within_a_second(tiny_dir, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-c", SECOND_SIGNAL_CHILD, tiny_dir, str(run)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert "NATIVE" in child.stdout.readline()  # inside the update's matmuls now
        time.sleep(0.5)
        child.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        sent = time.perf_counter()
        child.send_signal(signal.SIGTERM)
        code = child.wait(timeout=30)
        took = time.perf_counter() - sent
    finally:
        child.kill()
    err = child.stderr.read()
    assert took < 1.0, f"the second SIGTERM took {took:.1f} s to stop the process"
    assert code == 130
    assert "SIGTERM: stopping after this step" in err and "SIGTERM again: stopping now" in err
    assert "step_000001, stands" in err
    assert checkpoints_intact(run) == ["step_000001"]
