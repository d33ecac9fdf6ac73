"""`r1zero eval --task code`: HumanEval / MBPP sets loaded as code problems, and each chunk
of samples graded by its unit tests in the sandbox (`r1zero.tasks.code`). A sample is
correct when it passes every test (HumanEval's own protocol, so pass@k is the benchmark's);
``tests_passed`` keeps the share of asserts passed (MBPP's asserts run one by one)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from r1zero.config import TaskConfig
from r1zero.envs import check_sandbox
from r1zero.evaluation.settings import EvalConfig
from r1zero.rollout.base import Completion
from r1zero.tasks.code import CodeTask
from r1zero.templates import Template


def code_grader(cfg: EvalConfig) -> CodeTask:
    """The grader of the run: all-or-nothing code rewards, the sandbox of ``--sandbox.*``,
    checked now (before any model loads): no sandbox, no run, unless --sandbox none."""
    check_sandbox(cfg.sandbox)
    return CodeTask(TaskConfig(name="code", code_reward="all"), sandbox=cfg.sandbox)


def code_records(grader: CodeTask, chunk: Sequence[tuple[Any, Any]], prompts: Sequence[str],
                 completions: Sequence[Completion], template: Template,
                 length: Any) -> list[dict[str, Any]]:
    """samples.jsonl records of one chunk (``chunk[i]`` = (benchmark set, problem), the
    prompt-major ``completions``), their tests run together; ``length`` counts tokens."""
    problems = [chunk[c.prompt_index][1] for c in completions]
    verdicts = grader.verify_batch([c.text for c in completions], problems, template=template)
    return [{
        "benchmark": chunk[c.prompt_index][0].key, "problem_id": p.id, "sample_index": c.sample_index,
        "prompt": prompts[c.prompt_index], "response": c.text, "gold": p.answer,
        "extracted": v.extracted if v.format_ok else None, "correct": bool(v.correct), "reason": v.reason,
        "tests_passed": v.components.get("tests_passed", 0.0), "length": length(c),
        "finish_reason": c.finish_reason,
    } for c, p, v in zip(completions, problems, verdicts)]
