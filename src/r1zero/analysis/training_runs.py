"""`r1zero analyze RUN_DIR`: did response length grow through self-reflection, or through
reward optimisation (and GRPO's length bias)?

Reads the rollouts a training run saved (``RUN_DIR/rollouts/step_XXXXXX.jsonl``) and, per
step, splits response length by correctness, format and reflection. The key quantity is a
decomposition of the mean-length change between the start and the end of training: with
reflection rate r and mean lengths R (reflective) and N (not), L = N + r (R - N), so exactly

    dL = dr * mean(R - N)                  "more reflective responses"
       + mean(r) dR + (1 - mean(r)) dN     "longer responses within each group"

(means over the two ends). If the second term dominates, and non-reflective responses grow
as much as reflective ones, reflection is not what made responses longer (Liu et al., 2025).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from r1zero.analysis.reflection import (
    DEFAULT_KEYWORDS,
    has_reflection,
    question_level_rate,
)
from r1zero.analysis.report import plot_run, run_markdown, write_json
from r1zero.utils import read_jsonl

REQUIRED = {"response": str, "correct": bool, "length": (int, float)}
"""Fields every rollout record must have (others are optional and used when present)."""
STEP_FILE = re.compile(r"step_(\d+)\.jsonl$")


class RunDirError(FileNotFoundError):
    """The run directory has no readable rollouts; the message names what is missing."""


# ---------------------------------------------------------------------- reading
def load_rollouts(run_dir: str | Path) -> dict[int, list[dict[str, Any]]]:
    """Records per step. Bad lines are skipped with a warning naming file and line."""
    rollouts = Path(run_dir) / "rollouts"
    if not rollouts.is_dir():
        raise RunDirError(f"{rollouts}: no such directory. Is {run_dir} a training run "
                          "directory? `r1zero train` writes rollouts/step_XXXXXX.jsonl there.")
    files = sorted(f for f in rollouts.glob("step_*.jsonl") if STEP_FILE.search(f.name))
    if not files:
        raise RunDirError(f"{rollouts}: no step_XXXXXX.jsonl files")
    steps: dict[int, list[dict[str, Any]]] = {}
    for f in files:
        records = [r for r in (_check(f, n, rec) for n, rec, _ in _lines(f)) if r is not None]
        if records:
            steps[int(STEP_FILE.search(f.name).group(1))] = records
        else:
            warnings.warn(f"{f}: no usable records, step skipped", stacklevel=2)
    if not steps:
        raise RunDirError(f"{rollouts}: no usable rollout records in {len(files)} file(s)")
    return dict(sorted(steps.items()))


def _lines(path: Path):
    try:
        yield from read_jsonl(path)
    except (OSError, UnicodeDecodeError) as e:
        warnings.warn(f"{path}: unreadable ({e}), skipped", stacklevel=3)


def _check(path: Path, line: int, rec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The record if it has the required fields with the right types, else None + warning."""
    if rec is None:
        warnings.warn(f"{path}:{line}: not a JSON object, skipped", stacklevel=3)
        return None
    for name, typ in REQUIRED.items():
        value = rec.get(name)
        # bool is an int subclass: a length of True is a bug upstream, not a length of 1.
        if not isinstance(value, typ) or (name == "length" and isinstance(value, bool)):
            warnings.warn(f"{path}:{line}: field {name!r} missing or not {_tname(typ)}, skipped",
                          stacklevel=3)
            return None
    return rec


def _tname(typ: Any) -> str:
    return " or ".join(t.__name__ for t in typ) if isinstance(typ, tuple) else typ.__name__


# ---------------------------------------------------------------------- statistics
def step_stats(records: Sequence[dict[str, Any]], keywords: Sequence[str] = DEFAULT_KEYWORDS) -> dict[str, float]:
    """Per-step metrics (lengths in tokens; nan where a group is empty)."""
    refl = [has_reflection(r["response"], keywords) for r in records]
    by_prompt: dict[Any, list[bool]] = defaultdict(list)
    for r, f in zip(records, refl):
        by_prompt[r.get("prompt_id")].append(f)

    def mean_len(pred) -> float:
        xs = [r["length"] for r, f in zip(records, refl) if pred(r, f)]
        return sum(xs) / len(xs) if xs else float("nan")

    correct = mean_len(lambda r, f: r["correct"])
    incorrect = mean_len(lambda r, f: not r["correct"])
    return {
        "n": len(records),
        "accuracy": sum(r["correct"] for r in records) / len(records),
        "reflection_rate": sum(refl) / len(records),
        "question_reflection_rate": question_level_rate(by_prompt.values()),
        "format_rate": _share(records, "format_ok"),
        "truncation_rate": _share(records, "truncated"),
        "mean_length": mean_len(lambda r, f: True),
        "mean_length_correct": correct,
        "mean_length_incorrect": incorrect,
        "mean_length_formatted": mean_len(lambda r, f: r.get("format_ok") is True),
        "mean_length_reflective": mean_len(lambda r, f: f),
        "mean_length_nonreflective": mean_len(lambda r, f: not f),
        "length_gap_correct_minus_incorrect": correct - incorrect,
    }


def _share(records: Sequence[dict[str, Any]], key: str) -> float:
    known = [bool(r[key]) for r in records if isinstance(r.get(key), bool)]
    return sum(known) / len(known) if known else float("nan")


def length_decomposition(start: dict[str, float], end: dict[str, float]) -> dict[str, float]:
    """Split the mean-length change into reflection share vs within-group growth (exact;
    see the module docstring). nan parts mean a group was empty at one end."""
    r0, r1 = start["reflection_rate"], end["reflection_rate"]
    R0, R1 = start["mean_length_reflective"], end["mean_length_reflective"]
    N0, N1 = start["mean_length_nonreflective"], end["mean_length_nonreflective"]
    r_bar = (r0 + r1) / 2
    return {
        "delta_length": end["mean_length"] - start["mean_length"],
        "from_reflection_share": (r1 - r0) * ((R0 - N0) + (R1 - N1)) / 2,
        "within_groups": r_bar * (R1 - R0) + (1 - r_bar) * (N1 - N0),
        "delta_length_nonreflective": N1 - N0,
        "delta_length_reflective": R1 - R0,
        "delta_reflection_rate": r1 - r0,
        "delta_length_incorrect": end["mean_length_incorrect"] - start["mean_length_incorrect"],
        "delta_length_correct": end["mean_length_correct"] - start["mean_length_correct"],
    }


def analyze_run(run_dir: str | Path, *, keywords: Sequence[str] = DEFAULT_KEYWORDS,
                out_dir: str | Path | None = None, window: int | None = None) -> dict[str, Any]:
    """Per-step statistics, the start-vs-end length decomposition, plot and report.

    The two ends pool the first and last ``window`` steps (default: a fifth of the steps,
    at least one) because a single step holds few rollouts. Writes run_summary.json,
    run_report.md and run_lengths.png to ``out_dir`` (default ``RUN_DIR/analysis``).
    """
    steps = load_rollouts(run_dir)
    per_step = {s: step_stats(recs, keywords) for s, recs in steps.items()}
    order = list(steps)
    w = window or max(1, len(order) // 5)
    first = [r for s in order[:w] for r in steps[s]]
    last = [r for s in order[-w:] for r in steps[s]]
    summary = {
        "run_dir": str(run_dir),
        "keywords": list(keywords),
        "window_steps": w,
        "steps": per_step,
        "start": step_stats(first, keywords),
        "end": step_stats(last, keywords),
    }
    summary["decomposition"] = length_decomposition(summary["start"], summary["end"])
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "run_summary.json", summary)
    plot_run(summary, out / "run_lengths.png")
    (out / "run_report.md").write_text(run_markdown(summary))
    return summary
