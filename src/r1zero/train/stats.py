"""Per-step rollout and evaluation metrics (catalogued in docs/metrics.md) and the
rollout records written to ``rollouts/step_XXXXXX.jsonl``."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from r1zero.analysis.reflection import has_reflection
from r1zero.core.advantages import zero_variance_groups
from r1zero.rollout.base import Completion
from r1zero.tasks import Problem, TaskVerdict


def _mean(xs: Sequence[float]) -> float:
    """Mean, NaN for an empty list (logged as null: "no such responses this step")."""
    return sum(xs) / len(xs) if xs else float("nan")


def length_metrics(
    completions: Sequence[Completion], verdicts: Sequence[TaskVerdict], prefix: str
) -> dict[str, float]:
    """Mean response length (tokens) overall and for correct / incorrect / truncated
    responses: GRPO's length bias shows up as incorrect responses growing longer."""
    lens = [len(c.token_ids) for c in completions]
    return {
        f"{prefix}/len_mean": _mean(lens),
        f"{prefix}/len_correct": _mean([n for n, v in zip(lens, verdicts) if v.correct]),
        f"{prefix}/len_incorrect": _mean([n for n, v in zip(lens, verdicts) if not v.correct]),
        f"{prefix}/len_truncated": _mean([n for n, c in zip(lens, completions) if c.truncated]),
        f"{prefix}/truncated_frac": _mean([float(c.truncated) for c in completions]),
    }


def rollout_metrics(
    completions: Sequence[Completion],
    verdicts: Sequence[TaskVerdict],
    rewards: torch.Tensor,
    group_size: int,
) -> dict[str, float]:
    """reward/*, rollout/* metrics of one step's samples."""
    out = {
        "reward/mean": float(rewards.mean()),
        "reward/accuracy": _mean([float(v.correct) for v in verdicts]),
        "reward/format_rate": _mean([float(v.format_ok) for v in verdicts]),
        "reward/zero_var_group_frac": float(zero_variance_groups(rewards, group_size).float().mean()),
        "rollout/reflection_rate": _mean([float(has_reflection(c.text)) for c in completions]),
    }
    out.update(length_metrics(completions, verdicts, "rollout"))
    return out


def eval_metrics(completions: Sequence[Completion], verdicts: Sequence[TaskVerdict]) -> dict[str, float]:
    """eval/* metrics of a greedy held-out pass."""
    lens = length_metrics(completions, verdicts, "eval")
    return {
        "eval/accuracy": _mean([float(v.correct) for v in verdicts]),
        "eval/format_rate": _mean([float(v.format_ok) for v in verdicts]),
        "eval/len_mean": lens["eval/len_mean"],
        "eval/truncated_frac": lens["eval/truncated_frac"],
    }


def rollout_records(
    step: int,
    problems: Sequence[Problem],
    completions: Sequence[Completion],
    verdicts: Sequence[TaskVerdict],
    adv: torch.Tensor,
) -> list[dict]:
    """One JSON record per sample (read by `r1zero analyze RUN_DIR`); ``step`` is the
    training step they feed, 1-based as in metrics.jsonl (r1zero/logging.py)."""
    return [
        {
            "step": step,
            "prompt_id": problems[c.prompt_index].id,
            "sample": c.sample_index,
            "question": problems[c.prompt_index].question,
            "gold": problems[c.prompt_index].answer,
            "response": c.text,
            "reward": v.reward,
            "correct": v.correct,
            "format_ok": v.format_ok,
            "reason": v.reason,
            "extracted": v.extracted,
            "truncated": c.truncated,
            "length": len(c.token_ids),
            "advantage": a,
            "seed": c.seed,
            "weight_version": c.weight_version,
            "token_versions": run_lengths(c.token_versions or []),
        }
        for c, v, a in zip(completions, verdicts, adv.tolist())
    ]


def run_lengths(values: Sequence[int]) -> list[list[int]]:
    """``[[value, count], ...]`` of consecutive equal values: a response's token versions
    in a few numbers ([[3, 40], [4, 17]]: 40 tokens sampled by version 3, then 17 by 4)."""
    out: list[list[int]] = []
    for v in values:
        if out and out[-1][0] == v:
            out[-1][1] += 1
        else:
            out.append([v, 1])
    return out
