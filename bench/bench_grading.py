"""Benchmark: r1zero ``grade`` vs math-verify (``parse`` + ``verify``) on the same responses.

r1zero runs with ``extract="auto"`` (what plain ``r1zero grade`` does: boxes, answer tags,
answer phrases, short responses, math spans, the last number) and, for comparison, with
the paper's ``boxed`` reward extraction.

Responses are built from the MATH-500 gold answers (correct boxed, perturbed wrong,
unboxed prose, and equivalent-but-differently-written forms). Both graders see identical
inputs in one run; we print throughput (responses/s) and agreement.

    .venv/bin/python bench/bench_grading.py [--n-per-gold 6] [--data PATH]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsonl" / "math500.jsonl"


def _perturb(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: bump the last integer, or append a term."""
    nums = list(re.finditer(r"\d+", answer))
    if nums:
        m = nums[-1]
        return answer[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + answer[m.end() :]
    return answer + "+1"


def _restyle(answer: str) -> str:
    """An equivalent spelling: dfrac, left/right, spacing, a trailing period, unicode minus."""
    s = answer.replace("\\frac", "\\dfrac").replace("(", "\\left(").replace(")", "\\right)")
    s = s.replace("-", "\u2212")
    return "  " + s + " ."


def build_responses(answers: list[str], n_per_gold: int, seed: int = 0) -> list[tuple[str, str]]:
    """(response, gold) pairs: correct, wrong, unboxed and restyled variants per gold."""
    rng = random.Random(seed)
    kinds = [
        lambda a: f"Let me think step by step. So the result is $\\boxed{{{a}}}$.",
        lambda a: f"Working... thus \\boxed{{{_perturb(a, rng)}}}.",
        lambda a: f"The final answer is {a}.",
        lambda a: f"After simplifying we obtain \\boxed{{{_restyle(a)}}}",
        lambda a: f"Check: {_perturb(a, rng)}? No. Final: \\boxed{{{a}}}",
        lambda a: f"\\boxed{{{_perturb(a, rng)}}} is my guess",
    ]
    pairs = []
    for a in answers:
        for k in range(n_per_gold):
            pairs.append((kinds[k % len(kinds)](a), a))
    return pairs


def run_r1zero(pairs: list[tuple[str, str]], extract: str = "auto") -> tuple[list[bool], float]:
    """Grade with r1zero; returns verdicts and seconds."""
    from r1zero.grading import grade

    grade("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")  # warm-up: start the sympy worker
    t0 = time.perf_counter()
    out = [grade(r, g, extract=extract).correct for r, g in pairs]
    return out, time.perf_counter() - t0


def run_math_verify(pairs: list[tuple[str, str]]) -> tuple[list[bool], float]:
    """Grade with math-verify's normal usage: parse gold and response, then verify."""
    from math_verify import parse, verify

    verify(parse("$\\sqrt{8}$"), parse("\\boxed{2\\sqrt{2}}"))  # warm-up: imports, caches
    t0 = time.perf_counter()
    out = []
    for r, g in pairs:
        out.append(bool(verify(parse("$" + g + "$"), parse(r))))
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n-per-gold", type=int, default=6)
    args = ap.parse_args()
    answers = [json.loads(x)["answer"] for x in args.data.read_text(encoding="utf-8").splitlines() if x.strip()]
    pairs = build_responses(answers, args.n_per_gold)
    ours, t_ours = run_r1zero(pairs)
    boxed_only, t_boxed = run_r1zero(pairs, extract="boxed")
    theirs, t_theirs = run_math_verify(pairs)
    n = len(pairs)
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"responses: {n}")
    print(f"r1zero grade (auto) : {n / t_ours:8.1f} responses/s  ({t_ours:.2f} s), accuracy {sum(ours) / n:.3f}")
    print(f"r1zero grade (boxed): {n / t_boxed:8.1f} responses/s  ({t_boxed:.2f} s), accuracy {sum(boxed_only) / n:.3f}")
    print(f"math-verify (direct): {n / t_theirs:8.1f} responses/s  ({t_theirs:.2f} s), accuracy {sum(theirs) / n:.3f}")
    print(f"agreement: {agree / n:.3f}  (r1zero-only accepts {sum(a and not b for a, b in zip(ours, theirs))},"
          f" math-verify-only accepts {sum(b and not a for a, b in zip(ours, theirs))})")
    # Agreement on boxed responses isolates the equivalence judgement from extraction.
    boxed = [i for i, (r, _) in enumerate(pairs) if "\\boxed" in r]
    agree_boxed = sum(ours[i] == theirs[i] for i in boxed)
    print(f"agreement on the {len(boxed)} boxed responses: {agree_boxed / len(boxed):.3f}")
    print(f"speedup_vs_math_verify: {t_theirs / t_ours:.2f}")


if __name__ == "__main__":
    main()
