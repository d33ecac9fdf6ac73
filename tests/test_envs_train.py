"""Multi-turn episodes through the training loop: tool-integrated math with a scripted
policy whose programs run in the sandbox, trained with environment tokens masked out; the
code-cpu preset; and the refusal to run model code without a sandbox."""

from __future__ import annotations

import json
import re

import pytest

from r1zero.config import SandboxConfig, TaskConfig
from r1zero.sandbox import SandboxUnavailable
from tests.sandbox_helpers import needs_sandbox
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)


def tool_policy(prompt: str, j: int, seed: int) -> str:
    """Turn 1: a program printing a + b (samples 1 and 3: off by one); turn 2: box what the
    program printed. So half of each group is right and every advantage is non-zero."""
    reply = prompt.rsplit("<|im_start|>assistant\n", 1)[-1]
    shown = re.search(r"```output\n(-?\d+)\n```", reply)
    if shown:
        return f"The program says {shown.group(1)}, so the answer is \\boxed{{{shown.group(1)}}}."
    a, b = map(int, re.search(r"What is (\d+) \+ (\d+)\?", prompt).groups())
    return f"I will compute it.\n```python\nprint({a} + {b} + {j % 2})\n```\n```output"


@needs_sandbox
def test_tool_math_trains_through_the_loop(tiny_dir, tmp_path, monkeypatch):  # noqa: F811
    from r1zero.rollout import FakeBackend
    from r1zero.train import setup
    from r1zero.train.trainer import train

    def fake_backend(cfg, resolved, model_path, policy, tokenizer, run_dir):
        return FakeBackend(tokenizer, tool_policy, logprob=-1.0), False

    monkeypatch.setattr(setup, "setup_backend", fake_backend)
    run = tmp_path / "tool"
    cfg = _cfg(tiny_dir, run, task=TaskConfig(name="arithmetic", num_train=8, num_test=2), template="qwen_math_tool",
               tools=("python",), max_new_tokens=96, eval_every=2, truncation="zero",
               sandbox=SandboxConfig(workers=2), algorithm="grpo")
    train(cfg)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last = rows[-1]
    assert last["env/turns"] == 2 and last["env/tool_calls"] == 1 and last["env/tool_error_rate"] == 0
    assert 0 < last["env/env_token_frac"] < 0.5 and last["env/sandbox_s"] > 0
    assert last["reward/accuracy"] == 0.5 and last["eval/accuracy"] == 1.0  # greedy = sample 0
    assert last["optim/grad_norm"] > 0 and last["loss/total"] == last["loss/total"]
    record = json.loads((run / "rollouts" / "step_000001.jsonl").read_text().splitlines()[0])
    assert "```output\n" in record["response"] and record["response"].endswith("}.")


def test_model_code_is_refused_without_a_sandbox(tmp_path, monkeypatch, capsys):
    """Before any model loads: a run that would execute model code and has no sandbox stops
    with one line naming the fix; the CLI exits 2."""
    import r1zero.models
    from r1zero.cli import main
    from r1zero.train.trainer import train

    def boom(*a, **k):
        raise AssertionError("model loaded before the sandbox check")

    monkeypatch.setattr(r1zero.models, "load_model", boom)
    nowhere = SandboxConfig(bwrap=str(tmp_path / "no-bwrap"))
    cfg = _cfg("x", tmp_path / "r", task=TaskConfig(name="code", train_path="generated", test_path="generated",
                                                  num_train=4, num_test=1),
               sandbox=nowhere)
    with pytest.raises(SandboxUnavailable, match="--sandbox none"):
        train(cfg)
    with pytest.raises(SystemExit) as e:
        main(["train", "--tools", "python", "--sandbox.bwrap", str(tmp_path / "no-bwrap"),
              "--run-dir", str(tmp_path / "cli"), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and err[-1].startswith("error: ") and "--sandbox none" in err[-1]


def test_sandbox_shorthand_and_presets():
    from r1zero.cli import sandbox_shorthand
    from r1zero.config import PRESETS, resolve_algorithm

    assert sandbox_shorthand(["--sandbox", "none", "--steps", "2"]) == ["--sandbox.mode", "none", "--steps", "2"]
    assert sandbox_shorthand(["--sandbox=none"]) == ["--sandbox.mode=none"]
    assert sandbox_shorthand(["--sandbox.workers", "4"]) == ["--sandbox.workers", "4"]
    cfg = resolve_algorithm(PRESETS["code-cpu"]())
    cfg.validate()
    assert cfg.task.name == "code" and cfg.task.train_path == "generated" and cfg.template == "chat"


@needs_sandbox
@pytest.mark.slow
def test_code_cpu_preset_runs_with_real_executions(tmp_path, capsys):  # noqa: F811
    """`r1zero train --preset code-cpu`, shortened to 2 steps: the packaged model, real
    sandboxed unit tests every step, the update and the held-out evaluation."""
    from r1zero.cli import main

    run = tmp_path / "code-cpu"
    with pytest.raises(SystemExit) as e:
        main(["train", "--preset", "code-cpu", "--steps", "2", "--eval-every", "2", "--run-dir", str(run),
              "--no-progress"])
    assert e.value.code == 0
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["env/sandbox_s"] > 0 and rows[-1]["env/turns"] == 1 and "eval/accuracy" in rows[-1]
