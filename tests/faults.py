"""Fault injection for the durability tests: training and eval runs in child processes that
the test kills with SIGKILL at an instant chosen by a seeded schedule, and the checks that
a killed-then-resumed run equals an uninterrupted one.

Children come from a forkserver that has imported torch, transformers and r1zero once, so
a child starts in milliseconds instead of ~4 s of imports; each child is a real process,
killed as a scheduler's OOM killer or a power cut would end it (SIGKILL: no handler runs).
Two kinds of kill point: after a delay (any instant: inside a matmul, a safetensors write,
a tokenizer save), and just before the k-th durable file operation (os.fsync, os.replace,
os.rename, shutil.rmtree: the instants between a write and its commit).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

FILE_EVENTS = (("os", "fsync"), ("os", "replace"), ("os", "rename"), ("shutil", "rmtree"))
"""The calls a file-event kill counts: the steps between writing a file and committing it."""


@dataclass(frozen=True)
class KillPoint:
    """``after_s`` seconds into the run, or just before file event number ``event``."""

    kind: str  # "time" | "event"
    value: float

    def __str__(self) -> str:
        return f"{self.kind}={self.value:.3f}" if self.kind == "time" else f"event={int(self.value)}"


def kill_schedule(count: int, seed: int, seconds: float, events: int) -> list[KillPoint]:
    """``count`` kill points from ``seed``: even ones at a uniform instant of a run that
    takes ``seconds``, odd ones before a uniform file event of the ``events`` it makes."""
    rng = random.Random(seed)
    return [KillPoint("time", rng.uniform(0.0, seconds)) if i % 2 == 0
            else KillPoint("event", rng.randint(1, events)) for i in range(count)]


def context():
    """The forkserver context, its server preloaded with everything a child imports."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.faults", "tests.test_train_loop", "r1zero.train.trainer",
                                "transformers.models.llama.modeling_llama"])
    return ctx


def _count_file_events(kill_at: int, counter) -> None:
    """In a child: count the calls of `FILE_EVENTS` in ``counter`` and SIGKILL this process
    just before call number ``kill_at`` (0: never)."""
    import importlib

    for module, name in FILE_EVENTS:
        mod = importlib.import_module(module)
        real = getattr(mod, name)

        def wrapped(*args, _real=real, **kwargs):
            with counter.get_lock():
                counter.value += 1
                n = counter.value
            if n == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*args, **kwargs)

        setattr(mod, name, wrapped)


def train_child(model_dir: str, run_dir: str, overrides: dict, kill_at: int, counter, started) -> None:
    """A forkserver child: one `train` call (a resume when ``overrides`` says so). Plots are
    left out (seconds of matplotlib that no later step reads)."""
    import r1zero.train.trainer as trainer
    from tests.test_train_loop import _cfg

    trainer.plot_run = lambda run_dir: []
    _count_file_events(kill_at, counter)
    started.set()
    trainer.train(_cfg(model_dir, run_dir, **overrides))


def full_disk_child(model_dir: str, run_dir: str, overrides: dict, limit_bytes: int, error_file: str,
                    kill_at: int, counter, started) -> None:
    """A training child whose disk "fills up" before its second checkpoint: files may
    not grow past ``limit_bytes`` (RLIMIT_FSIZE, SIGXFSZ ignored, so writes fail with
    EFBIG inside safetensors, torch and DCP alike). Exits 3, the error's message in
    ``error_file``, when the run stops with a `CheckpointError`."""
    import resource

    import r1zero.train.trainer as trainer
    from r1zero.learner import checkpoint as ckpt
    from tests.test_train_loop import _cfg

    real, saves = ckpt.save_with, []

    def save_with(run_dir, tokenizer, state, keep, write):
        saves.append(state.step)
        if len(saves) == 2:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, resource.RLIM_INFINITY))
        return real(run_dir, tokenizer, state, keep, write)

    ckpt.save_with = save_with
    trainer.plot_run = lambda run_dir: []
    started.set()
    try:
        trainer.train(_cfg(model_dir, run_dir, **overrides))
    except ckpt.CheckpointError as e:
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        Path(error_file).write_text(str(e))
        os._exit(3)


def eval_child(cfg_kwargs: dict, delay_s: float, kill_at: int, counter, started) -> None:
    """An eval child: `run_eval` with a scripted backend that takes ``delay_s`` per call."""
    from r1zero.evaluation import run_eval

    _count_file_events(kill_at, counter)
    backend = slowed(scripted_eval_backend(cfg_kwargs), delay_s)
    started.set()
    run_eval(eval_config(cfg_kwargs), backend=backend)


def eval_config(cfg_kwargs: dict):
    from r1zero.evaluation import EvalConfig
    from tests.helpers import with_sampling

    return with_sampling(EvalConfig, **cfg_kwargs)


def scripted_eval_backend(cfg_kwargs: dict):
    """A FakeBackend answering right for even sample seeds, wrong for odd ones."""
    from r1zero.evaluation import resolve_benchmarks
    from r1zero.rollout.fake import FakeBackend
    from r1zero.templates import get_template
    from r1zero.testing import tiny_tokenizer

    cfg, tokenizer = eval_config(cfg_kwargs), tiny_tokenizer()
    template = get_template(cfg.template)
    gold = {template.render(p.question, tokenizer): p.answer
            for s in resolve_benchmarks(cfg) for p in s.problems}
    return FakeBackend(tokenizer, lambda prompt, j, seed: f"\\boxed{{{gold[prompt] if seed % 2 == 0 else -1}}}")


class slowed:
    """A backend wrapper that sleeps before each generate call (time for a kill to land)."""

    def __init__(self, inner, delay_s: float):
        self.inner, self.delay_s = inner, delay_s

    def generate(self, prompts, params, seeds):
        time.sleep(self.delay_s)
        return self.inner.generate(prompts, params, seeds)

    def close(self):
        self.inner.close()


def run_child(ctx, target, args: tuple, point: KillPoint | None = None, timeout: float = 300.0):
    """Run ``target(*args, kill_at, counter, started)`` in a child; with a time point, SIGKILL
    it that many seconds after it started its work. Returns (exit code, seconds, events)."""
    counter, started = ctx.Value("i", 0), ctx.Event()
    kill_at = int(point.value) if point is not None and point.kind == "event" else 0
    child = ctx.Process(target=target, args=(*args, kill_at, counter, started))
    child.start()
    if not started.wait(timeout):
        child.kill()
        raise AssertionError("the child did not start")
    t0 = time.perf_counter()
    if point is not None and point.kind == "time":
        child.join(point.value)
        if child.exitcode is None:
            child.kill()  # SIGKILL
    child.join(timeout)
    if child.exitcode is None:
        child.kill()
        raise AssertionError(f"the child did not finish within {timeout} s")
    return child.exitcode, time.perf_counter() - t0, counter.value


# ----------------------------------------------------------------------------- checks
def metric_steps(run: Path) -> list[int]:
    """The step of every line of metrics.jsonl, as written (duplicates kept)."""
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def prompt_sequence(run: Path) -> list[list[str]]:
    """The prompts each step trained on, in step order (from the rollout files)."""
    files = sorted((run / "rollouts").glob("step_*.jsonl"))
    return [[json.loads(line)["prompt_id"] for line in f.read_text().splitlines()] for f in files]


def checkpoints_intact(run: Path) -> list[str]:
    """Names of the run's checkpoints; asserts each passes its manifest and that `latest`
    names one of them (a kill never leaves a torn one behind a checkpoint name)."""
    from r1zero.learner import checkpoint as ckpt

    root = run / "checkpoints"
    names = [p.name for p in ckpt.step_dirs(root)]
    for name in names:
        assert ckpt.damage(root / name) is None, f"{name}: {ckpt.damage(root / name)}"
    if (root / "latest").exists():
        assert (root / "latest").read_text().strip() in names
    return names


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst
