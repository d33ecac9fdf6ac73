"""The two environments of docs/envs.md, as written there: each fits in 30 lines, loads
through ``--env.name module:factory``, and runs episodes on a scripted policy with real
sandboxed executions."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from r1zero.config import EnvConfig, SandboxConfig, TaskConfig
from r1zero.envs import build_env, episode_verdicts, graded_text, run_episodes, summary_of
from r1zero.rollout import FakeBackend, SamplingParams
from r1zero.tasks import get_task
from r1zero.templates import get_template
from r1zero.testing import tiny_tokenizer
from tests.sandbox_helpers import needs_sandbox

DOC = Path(__file__).resolve().parents[1] / "docs" / "envs.md"


def example(name: str) -> str:
    blocks = re.findall(r"```python\n(# envs example: (\w+)\n.*?)```\n", DOC.read_text(), re.DOTALL)
    found = {n: code for code, n in blocks}
    assert name in found, f"docs/envs.md has no example {name!r} (has {sorted(found)})"
    return found[name]


def load(name: str) -> str:
    """Import the example as module ``envs_doc_<name>``; returns its module name."""
    module = types.ModuleType(f"envs_doc_{name}")
    exec(compile(example(name), str(DOC), "exec"), module.__dict__)  # our own documentation
    sys.modules[module.__name__] = module
    return module.__name__


@pytest.mark.parametrize("name", ["tool_math", "code_feedback"])
def test_examples_fit_in_30_lines(name):
    lines = [line for line in example(name).splitlines() if line.strip()]
    assert len(lines) <= 30, f"{name}: {len(lines)} non-blank lines"


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@needs_sandbox
def test_tool_math_example(tok):
    task = get_task(TaskConfig(name="arithmetic", num_train=1, num_test=1))
    env = build_env(task, (), EnvConfig(name=f"{load('tool_math')}:make"), SandboxConfig(workers=1))
    template = get_template("qwen_math_tool")
    problem = task.problems("test")[0]
    a, op, b = problem.meta["a"], problem.meta["op"], problem.meta["b"]

    def policy(prompt, j, seed):
        if "print(" in prompt:
            return "The answer is \\boxed{" + prompt.rsplit("```output\n", 1)[1].split("\n")[0] + "}."
        return f"```python\nprint({a} {op} {b})\n```\n```output"

    try:
        out = run_episodes(FakeBackend(tok, policy), env, tok, [problem], [template.render(problem.question)],
                           SamplingParams(max_new_tokens=120, stop=template.stop), [0])
    finally:
        env.close()
    verdict = episode_verdicts(out, lambda idx: [task.verify(graded_text(out[i]), problem, template=template)
                                                 for i in idx])[0]
    assert summary_of(out[0]).turns == 2 and summary_of(out[0]).stats == {"tool_calls": 1.0, "tool_errors": 0.0}
    assert verdict.correct and out[0].loss_mask.count(0) > 0


@needs_sandbox
def test_code_feedback_example(tok):
    task = get_task(TaskConfig(name="code", train_path="generated", num_train=2, num_test=1))
    env = build_env(task, (), EnvConfig(name=f"{load('code_feedback')}:make"), SandboxConfig(workers=2))
    problem = task.problems("train")[0]
    reference = problem.meta["reference"]

    def policy(prompt, j, seed):  # wrong first, right after the feedback
        return f"```python\n{reference}```" if "This test fails" in prompt else \
            f"```python\n{reference.replace('return ', 'return 1000 + ')}```"

    try:
        out = run_episodes(FakeBackend(tok, policy), env, tok, [problem], [problem.question],
                           SamplingParams(max_new_tokens=400), [0])
    finally:
        env.close()
    verdict = episode_verdicts(out, lambda idx: pytest.fail("the environment gives the verdict"))[0]
    assert summary_of(out[0]).turns == 2 and verdict.correct
    assert verdict.reward == pytest.approx(1.0 - 0.1)  # all tests pass, after one retry
