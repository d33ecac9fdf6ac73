"""``env/*`` metrics of a step's episodes (catalogued in docs/metrics.md): turns, the
environment's share of the tokens, tool calls with their error and time-out rates, and the
seconds spent executing model code in the sandbox (tool calls and the code task's tests)."""

from __future__ import annotations

from collections.abc import Sequence

from r1zero.envs.driver import summary_of
from r1zero.rollout.base import Completion
from r1zero.tasks import TaskVerdict

TOOL_RATES = {"tool_errors": "env/tool_error_rate", "tool_timeouts": "env/tool_timeout_rate"}
"""Statistics logged as a share of the tool calls (null in a step without calls)."""


def env_metrics(completions: Sequence[Completion], verdicts: Sequence[TaskVerdict]) -> dict[str, float]:
    """env/turns (mean model turns per episode), env/env_token_frac (environment tokens /
    all response tokens), env/turn_limit_frac (episodes the turn limit ended); and where
    the episodes reported them: env/tool_calls (per episode), env/tool_error_rate,
    env/tool_timeout_rate (per call), env/sandbox_s (execution seconds of the step, summed
    over executions: they run in parallel, so it may exceed the step's time); any other
    statistic of an environment as env/<name> per episode."""
    summaries = [summary_of(c) for c in completions]
    n = max(len(completions), 1)
    tokens = sum(len(c.token_ids) for c in completions)
    out = {
        "env/turns": sum(s.turns if s else 1 for s in summaries) / n,
        "env/env_token_frac": sum(s.env_tokens for s in summaries if s) / max(tokens, 1),
        "env/turn_limit_frac": sum(bool(s and s.ended == "turn_limit") for s in summaries) / n,
    }
    totals: dict[str, float] = {}
    for s in summaries:
        for k, v in (s.stats if s else {}).items():
            totals[k] = totals.get(k, 0.0) + v
    verifier_s = [v.components["sandbox_s"] for v in verdicts if "sandbox_s" in v.components]
    if verifier_s or "sandbox_s" in totals:
        out["env/sandbox_s"] = totals.pop("sandbox_s", 0.0) + sum(verifier_s)
    calls = totals.pop("tool_calls", None)
    if calls is not None:
        out["env/tool_calls"] = calls / n
        for key, name in TOOL_RATES.items():
            out[name] = totals.pop(key, 0.0) / calls if calls else float("nan")
    out.update({f"env/{k}": v / n for k, v in totals.items()})
    return out
