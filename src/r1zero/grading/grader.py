"""``grade``: response + gold -> Verdict (the math reward), and ``grade_file`` for batches.

``grade`` is the only function the trainer calls on model text, so it never raises: every
failure becomes a Verdict with a reason, and every call is bounded in time (fast exact
path first; sympy only in a killable worker process).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from .choice import gold_choice
from .equivalence import GradingTimeout, equal_by_deadline
from .extract import EXTRACT_MODES, extract_gold, extract_with_reason

log = logging.getLogger(__name__)

# An extracted answer longer than this is not a math answer; comparing it would only
# spend time (and reward the model for dumping text into a box).
MAX_ANSWER_CHARS = 1000
REASONS = ("correct", "wrong_answer", "no_answer", "format_error", "timeout", "too_long", "bad_input")


@dataclass(frozen=True)
class Verdict:
    """Outcome of grading one response. ``reason`` is one of ``REASONS``."""

    correct: bool
    extracted: str | None
    reason: str


def _golds(gold) -> list[str] | None:
    """Gold as a non-empty list of strings (numbers are accepted and stringified)."""
    items = gold if isinstance(gold, (list, tuple)) else [gold]
    out = []
    for g in items:
        if isinstance(g, bool) or not isinstance(g, (str, int, float)):
            return None
        out.append(str(g))
    return out or None


def _compare_golds(answer: str, golds: list[str], timeout_s: float) -> Verdict:
    """Correct when the answer matches any gold; a time-out only if none matched."""
    deadline = time.monotonic() + timeout_s
    timed_out = False
    for g in golds:
        try:
            if equal_by_deadline(answer, g, deadline):
                return Verdict(True, answer, "correct")
        except GradingTimeout:
            timed_out = True
            deadline = time.monotonic() + min(timeout_s, 0.5)  # let cheap golds still run
    return Verdict(False, answer, "timeout" if timed_out else "wrong_answer")


def grade(
    response: str,
    gold: str | list[str],
    *,
    extract: str = "boxed",
    timeout_s: float = 5.0,
) -> Verdict:
    """Grade one model ``response`` against ``gold`` (one answer or a list of acceptable
    answers). Never raises; see ``REASONS`` for the possible outcomes.

    ``extract`` names where the answer is read (:mod:`r1zero.grading.extract`): ``boxed``
    (the paper's reward, the default for training and eval), ``r1`` (answer tags) or
    ``auto`` (how a person reads it; the default of ``r1zero grade``). Each gold goes
    through :func:`~r1zero.grading.extract.extract_gold` (delimiters, its own box, a worked
    solution reduced to its final answer) whatever the mode.
    """
    golds = _golds(gold)
    if not isinstance(response, str) or golds is None or extract not in EXTRACT_MODES:
        return Verdict(False, None, "bad_input")
    try:
        golds = [extract_gold(g) for g in golds]
        # A multiple-choice gold makes ``auto`` read a letter ("the answer is B, not C").
        letters = {gold_choice(g) for g in golds}
        choice = letters.pop() if len(letters) == 1 else None
        if choice is not None:
            golds = [choice]  # "(D) Alina" is answered by the letter D
        answer, why = extract_with_reason(response, mode=extract, choice=choice)
        if answer is None:
            return Verdict(False, None, why or "no_answer")
        if not answer.strip():
            return Verdict(False, answer, "no_answer")  # "\\boxed{}" states nothing
        if len(answer) > MAX_ANSWER_CHARS:
            return Verdict(False, answer[:MAX_ANSWER_CHARS], "too_long")
        return _compare_golds(answer, golds, timeout_s)
    except RecursionError:
        return Verdict(False, None, "too_long")
    except Exception:
        # Contract: never raise on model text. This is a bug, not a wrong answer, so it is
        # logged loudly with the traceback instead of silently becoming reward 0.
        log.exception("grading bug on response of %d chars", len(response))
        return Verdict(False, None, "bad_input")


def _bad_record(rec) -> str | None:
    """Why a JSONL record cannot be graded, or None when it can."""
    if not isinstance(rec, dict):
        return "not a JSON object"
    if not isinstance(rec.get("response"), str):
        return "missing or non-string 'response'"
    if "gold" not in rec or _golds(rec["gold"]) is None:
        return "missing or invalid 'gold'"
    return None


def _grade_line(line_no: int, raw: str, extract: str) -> tuple[dict, bool]:
    """The output record for one input line and whether the line was bad."""
    try:
        rec = json.loads(raw)
    except ValueError:
        rec = None
    problem = _bad_record(rec)
    if problem is not None:
        print(f"warning: line {line_no}: {problem}; marked bad_input", file=sys.stderr)
        out = rec if isinstance(rec, dict) else {"line": line_no, "raw": raw.rstrip("\n")[:2000]}
        return {**out, "correct": False, "extracted": None, "reason": "bad_input"}, True
    # A record written with the r1 template is held to its contract (answer tags).
    mode = "r1" if rec.get("template") == "r1" else extract
    v = grade(rec["response"], rec["gold"], extract=mode)
    return {**rec, "correct": v.correct, "extracted": v.extracted, "reason": v.reason}, False


def grade_file(input_path, output_path, *, extract: str = "auto") -> dict:
    """Grade a JSONL file of ``{"response", "gold"[, "template"]}`` records, reading
    answers with ``extract`` (``auto`` by default: see :func:`grade`).

    Writes each input record plus ``correct``, ``extracted`` and ``reason`` to
    ``output_path`` as it goes (flushed per line, so a crash loses no finished work). Bad
    lines are warned about on stderr, written with ``reason="bad_input"`` and listed in
    the summary: ``{count, correct, accuracy, reasons, bad_lines}``.
    """
    if extract not in EXTRACT_MODES:
        raise ValueError(f"unknown extract mode {extract!r}; choose one of {list(EXTRACT_MODES)}")
    reasons: Counter = Counter()
    bad_lines: list[int] = []
    count = n_correct = 0
    Path(output_path).parent.mkdir(parents=True, exist_ok=True)
    with open(input_path, encoding="utf-8", errors="replace") as fin, open(
        output_path, "w", encoding="utf-8"
    ) as fout:
        for line_no, raw in enumerate(fin, start=1):
            if not raw.strip():
                continue
            out, bad = _grade_line(line_no, raw, extract)
            if bad:
                bad_lines.append(line_no)
            count += 1
            n_correct += bool(out["correct"])
            reasons[out["reason"]] += 1
            fout.write(json.dumps(out, ensure_ascii=False, default=str) + "\n")
            fout.flush()
    return {
        "count": count,
        "correct": n_correct,
        "accuracy": n_correct / count if count else 0.0,
        "reasons": dict(reasons),
        "bad_lines": bad_lines,
    }
