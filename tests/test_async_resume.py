"""Lossless async resume (`--max-staleness k`): a checkpoint holds the steps drawn ahead and
not yet trained on (train/ahead.py); a run killed anywhere and resumed trains on the same
sequence of (prompt, sample seed) as an uninterrupted run, nothing skipped, nothing
repeated, and the steps the checkpoint held are trained as they were drawn (same responses,
same sampling versions), not drawn again."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest
import torch

from r1zero.config import RolloutConfig
from r1zero.learner import checkpoint as ckpt
from r1zero.train import trainer as tr
from r1zero.train.ahead import AHEAD_FILE, read_ahead
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)

STEPS = 6


def _kw(**extra):
    return {**dict(steps=STEPS, eval_every=0, save_every=1, max_staleness=2, rollout_samples=-1,
                   max_new_tokens=8), **extra}


def _trained(run) -> list[tuple[int, str, int, int]]:
    """(step, prompt id, sample, seed) of every response trained on, from the rollout files."""
    out = []
    for step in range(1, STEPS + 1):  # rollout file N holds training step N's samples
        for x in (run / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines():
            r = json.loads(x)
            out.append((r["step"], r["prompt_id"], r["sample"], r["seed"]))
    return out


class Recorder:
    """Wraps `draw_step`: which steps were drawn, and what (texts, versions) came out; with
    ``fail_at`` the draw of that step dies, and the process with it at its next save (a
    kill while drawing: the checkpoint before it was taken with that draw in flight)."""

    def __init__(self, monkeypatch, fail_at: int | None = None):
        self.drawn: dict[int, list[tuple[str, list[int]]]] = {}
        self.calls: list[int] = []
        self.died = threading.Event()
        real = tr.draw_step

        def draw_step(t, step, version):
            self.calls.append(step)
            if step == fail_at:
                self.died.set()
                raise RuntimeError("killed while drawing")
            d = real(t, step, version)
            self.drawn[step] = [(c.text, list(c.token_versions)) for c in d.completions]
            return d

        monkeypatch.setattr(tr, "draw_step", draw_step)
        if fail_at is not None:
            save = tr.save

            def dying_save(t):
                path = save(t)
                if self.died.is_set():
                    raise RuntimeError("killed while drawing")
                return path

            monkeypatch.setattr(tr, "save", dying_save)


def _kill_in_update(monkeypatch, at_step):
    real = tr.train_step

    def train_step(t, step):
        if step == at_step:
            update = t.learner.update

            def dying(seqs, s):
                update(seqs, s)  # the weights move, then the process dies: nothing saved
                raise RuntimeError("killed in the update")

            t.learner.update = dying
        return real(t, step)

    monkeypatch.setattr(tr, "train_step", train_step)


def _kill_after_save(monkeypatch, at_state):
    real = tr.save

    def save(t):
        path = real(t)
        if t.state.step == at_state:
            raise RuntimeError("killed after the save")
        return path

    monkeypatch.setattr(tr, "save", save)


@pytest.fixture(scope="module")
def uninterrupted(tiny_dir, tmp_path_factory):  # noqa: F811
    """(prompt, seed) sequence of an uninterrupted k = 2 run, with and without partial."""
    out = {}
    for partial in (False, True):
        run = tmp_path_factory.mktemp("whole")
        tr.train(_cfg(tiny_dir, run, **_kw(rollout=RolloutConfig(partial=partial))))
        out[partial] = _trained(run)
    return out


SLOW = pytest.mark.slow  # ~25 s each; one kill point per mode runs by default


@pytest.mark.parametrize("where, partial", [
    ("update", True), ("draw", False),
    pytest.param("update", False, marks=SLOW), pytest.param("draw", True, marks=SLOW),
    pytest.param("after_save", False, marks=SLOW), pytest.param("after_save", True, marks=SLOW),
])
def test_kill_anywhere_and_resume_trains_every_prompt_once(tiny_dir, tmp_path, monkeypatch,  # noqa: F811
                                                           uninterrupted, where, partial):
    extra = dict(rollout=RolloutConfig(partial=partial))
    expected = uninterrupted[partial]

    run = tmp_path / "killed"
    crashed = Recorder(monkeypatch, fail_at=4 if where == "draw" else None)
    if where == "update":
        _kill_in_update(monkeypatch, at_step=3)
    if where == "after_save":
        _kill_after_save(monkeypatch, at_state=3)
    with pytest.raises(RuntimeError, match="killed"):
        tr.train(_cfg(tiny_dir, run, **_kw(**extra)))
    monkeypatch.undo()

    last = ckpt.latest_checkpoint(run)
    state = torch.load(last / "trainer_state.pt", weights_only=False)["state"]["step"]
    held = [d.step for d in read_ahead(last, state)]
    assert held and (last / AHEAD_FILE).exists()  # k = 2: steps drawn ahead were saved

    resumed = Recorder(monkeypatch)
    tr.train(replace(_cfg(tiny_dir, run, **_kw(**extra)), resume=str(run)))
    assert _trained(run) == expected  # nothing skipped, nothing repeated
    assert not set(resumed.calls) & set(held)  # the held steps were not drawn again ...
    assert sorted(resumed.calls) == list(range(state + len(held), STEPS))
    for step in held:  # ... and were trained as they were drawn before the kill (draw s: file s + 1)
        recs = [json.loads(x) for x in (run / "rollouts" / f"step_{step + 1:06d}.jsonl").read_text().splitlines()]
        assert [r["response"] for r in recs] == [text for text, _ in crashed.drawn[step]]
        assert [[v for v, n in r["token_versions"] for _ in range(n)] for r in recs] == \
            [versions for _, versions in crashed.drawn[step]]
        assert all(v <= state for _, vs in crashed.drawn[step] for v in vs)
    rows = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sorted(set(rows)) == list(range(1, STEPS + 1))


def test_a_checkpoint_that_does_not_continue_is_refused(tiny_dir, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    tr.train(_cfg(tiny_dir, run, **_kw(steps=3)))
    path = ckpt.latest_checkpoint(run)  # the final one: nothing ahead
    assert not (path / AHEAD_FILE).exists() and read_ahead(path, 3) == []
    from r1zero.train.ahead import write_ahead
    from r1zero.train.source import Drawn

    write_ahead(path, [Drawn(5, [], [], [], {}, torch.zeros(0), 1, 3, 0.0)])
    with pytest.raises(ValueError, match="does not continue step 3"):
        read_ahead(path, 3)


@pytest.mark.slow
def test_sigkill_at_a_random_moment_and_resume(tiny_dir, tmp_path, uninterrupted):  # noqa: F811
    """The real thing: `r1zero train` in a subprocess, SIGKILL once a few steps are logged
    (wherever it is: generating, updating, saving), `--resume`; the (prompt, seed) sequence
    trained on equals the uninterrupted run's."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    run = tmp_path / "run"
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    cmd = [sys.executable, "-m", "r1zero", "train", "--model", tiny_dir,
           "--task.name", "tests.test_train_loop:make_parity_task", "--task.num-train", "20",
           "--task.num-test", "3", "--template", "chat", "--steps", str(STEPS), "--prompts-per-step", "2",
           "--group-size", "4", "--max-new-tokens", "8", "--backend", "hf", "--precision", "fp32",
           "--eval-every", "0", "--save-every", "1", "--max-staleness", "2", "--rollout-samples", "-1",
           "--truncation", "keep", "--device", "cpu", "--no-progress", "--run-dir", str(run),
           "--lr", "1e-3", "--keep-checkpoints", "5", "--rollout.partial",
           # `r1zero train` starts from the demo preset (seed 1, T 0.7, ...): the fixture's values
           "--seed", "0", "--temperature", "1.0", "--micro-batch-tokens", "4096"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        metrics = run / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            time.sleep(0.37)  # somewhere inside the next step
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    subprocess.run([sys.executable, "-m", "r1zero", "train", "--resume", str(run), "--no-progress"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert _trained(run) == uninterrupted[True]
