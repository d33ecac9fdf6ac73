"""Reading an LLM judge's verdict, and how often two raters agree: shared by the answer
judge (grading/llm_verifier.py) and the self-reflection judge (analysis/judge.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence

_VERDICT = re.compile(r"verdict\s*[:\-]?\s*\**\s*(yes|no)\b", re.IGNORECASE)
_BARE = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """YES -> True, NO -> False, anything unclear -> None (never guessed).

    The last "Verdict: X" wins (judges sometimes restate the instruction first); without
    one, a reply whose only yes/no words all agree is accepted ("No." / "**YES**")."""
    found = _VERDICT.findall(text)
    if found:
        return found[-1].lower() == "yes"
    bare = {w.lower() for w in _BARE.findall(text)}
    return (bare == {"yes"}) if len(bare) == 1 else None


def agreement(a: Sequence[bool], b: Sequence[bool]) -> dict[str, float]:
    """Agreement between two binary raters (keywords vs LLM judge).

    Returns ``observed`` (share of equal labels), Cohen's ``kappa``
    (p_o - p_e) / (1 - p_e) with chance agreement p_e = p_a p_b + (1-p_a)(1-p_b), and the
    2x2 table. kappa is nan when p_e == 1 (both raters constant and equal: undefined).
    """
    if len(a) != len(b):
        raise ValueError("raters must label the same items")
    n = len(a)
    both = sum(x and y for x, y in zip(a, b))
    only_a = sum(x and not y for x, y in zip(a, b))
    only_b = sum(y and not x for x, y in zip(a, b))
    neither = n - both - only_a - only_b
    if n == 0:
        return {"n": 0, "observed": float("nan"), "kappa": float("nan"),
                "both": 0, "only_a": 0, "only_b": 0, "neither": 0}
    p_o = (both + neither) / n
    p_a, p_b = (both + only_a) / n, (both + only_b) / n
    p_e = p_a * p_b + (1 - p_a) * (1 - p_b)
    kappa = (p_o - p_e) / (1 - p_e) if p_e < 1 else float("nan")
    return {"n": n, "observed": p_o, "kappa": kappa,
            "both": both, "only_a": only_a, "only_b": only_b, "neither": neither}
