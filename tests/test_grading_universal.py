"""Universal-answer fuzz test: no single answer may be graded correct for golds that differ.

A grader bug that accepts one answer for *every* gold (``\\boxed{2^{1024}}`` overflowed to
``inf`` and ``inf <= tol * inf`` held) is the worst reward hack an RL policy can find: it
gets reward 1 on every question without solving any. The property checked here is

    for each candidate answer C, and each way of writing it in a response,
    if C is graded correct for golds g1 and g2, then g1 and g2 are themselves equivalent

where "equivalent" means the grader accepts one for the other (in either direction, so a
lenient-but-consistent policy such as percent or rounded golds is not flagged). A candidate
accepted for exactly one gold is fine (``\\infty`` is the right answer to gold ``\\infty``).

The default run grades every candidate against ``GOLDS_PER_CANDIDATE`` golds: the whole
hand list plus a deterministic sample of MATH-500 golds (a different sample per candidate,
so together they cover the set). ``-m slow`` grades the full product.
"""

from __future__ import annotations

import json
import logging
import random
import zlib
from functools import lru_cache

import pytest

from r1zero.grading import Verdict, grade
from tests.helpers import DATA

MATH500 = DATA / "jsonl" / "math500.jsonl"
# A time-out is a reject, so it can never make a candidate universal: a short limit keeps
# slow comparisons (e^{1000} against \sin x) from eating the budget. Deciding whether two
# golds are the same answer must not time out (that would be a false failure): longer.
TIMEOUT_S = 1.0
EQUIV_TIMEOUT_S = 10.0
GOLDS_PER_CANDIDATE = 60

_ZEROS_TO_100 = [str(i) for i in range(101)]
_ONE_TO_20 = range(1, 21)
_HUGE = "10^{400}"

# Candidate "answers to everything". THIS CORPUS MUST KEEP GROWING: every grader change
# (new parser, new normalisation, new tolerance, new structure) is a chance for a new
# universal answer. When one is found in the wild (or in RL reward curves), add it here.
UNIVERSAL_CANDIDATES: list[str] = [
    # Huge powers: overflow to inf in float, or blow up sympy's evaluation.
    r"2^{1024}",
    r"3^{1000}",
    r"10^{309}",
    r"10^{400}",
    r"10^{1000}",
    r"10^{10^{10}}",
    r"e^{1000}",
    r"\exp(1000)",
    r"9^{9^{9}}",
    r"2^{2^{2^{2^{2}}}}",
    r"1000^{1000}",
    r"2^{10000}",
    r"99**99**99",
    r"10**400",
    r"1e400",
    r"1e309",
    r"1.0e+999",
    r"1.8e308",
    "1" + "0" * 400,
    "9" * 400,
    r"-10^{500}",
    r"-2^{1024}",
    r"10^{400}+1",
    r"\sinh(1000)",
    r"\cosh(1000)",
    r"e^{e^{e^{e}}}",
    # Factorials, binomials, gamma.
    r"1000!",
    r"10000!",
    r"171!",
    r"(10^{10})!",
    r"\binom{10000}{5000}",
    r"\frac{1}{1000!}",
    r"\Gamma(1000)",
    # Tiny values: underflow to 0, then "0 <= tol" or a relative test of 0 against 0.
    r"10^{-400}",
    r"1e-400",
    r"e^{-1000}",
    r"2^{-1100}",
    r"\frac{1}{10^{400}}",
    r"-10^{-400}",
    # Infinities.
    r"\infty",
    r"-\infty",
    r"+\infty",
    r"\pm\infty",
    r"oo",
    r"\text{infinity}",
    r"\infty^{\infty}",
    r"\infty\%",
    # NaN and indeterminate forms.
    r"\text{NaN}",
    r"nan",
    r"0/0",
    r"\frac{0}{0}",
    r"\infty-\infty",
    r"0\cdot\infty",
    r"\frac{\infty}{\infty}",
    r"\text{undefined}",
    r"\text{DNE}",
    r"\text{no solution}",
    # Complex infinity.
    r"\frac{1}{0}",
    r"1/0",
    r"zoo",
    r"\tilde{\infty}",
    r"\frac{10^{400}}{0}",
    r"i\infty",
    r"10^{400}i",
    r"\sqrt{-1}",
    r"\tan\frac{\pi}{2}",
    r"\cot 0",
    r"\ln 0",
    r"\log(0)",
    # Divergent sums, integrals, limits.
    r"\sum_{n=1}^{\infty} n",
    r"\int_0^{\infty} x\,dx",
    r"\lim_{x\to 0}\frac{1}{x}",
    r"\sum_{k=0}^{\infty} k!",
    # Free symbols: "simplify(a - b) == 0" or random points must not make them match.
    r"x",
    r"n",
    r"k",
    r"y",
    r"a+b",
    r"\theta",
    r"\alpha",
    r"x_0",
    r"f(x)",
    r"\text{anything}",
    r"\text{any number}",
    # Tautologies and truth values.
    r"x=x",
    r"0=0",
    r"1=1",
    r"a=a",
    r"x+1=x+1",
    r"x-x=0",
    r"\text{true}",
    r"True",
    r"\top",
    # Everything-sets and empty sets.
    r"(-\infty,\infty)",
    r"(-\infty, +\infty)",
    r"\mathbb{R}",
    r"\mathbb{C}",
    r"\mathbb{Z}",
    r"\mathbb{N}",
    r"\mathbb{Q}",
    r"\text{all real numbers}",
    r"x\in\mathbb{R}",
    r"x>0",
    r"x\neq 0",
    r"\emptyset",
    r"\varnothing",
    r"\{\}",
    r"\text{all of the above}",
    r"\text{none}",
    # Long lists and sets of numbers: a collection must never match one of its items.
    ",".join(_ZEROS_TO_100),
    ", ".join(_ZEROS_TO_100),
    r"\{" + ",".join(_ZEROS_TO_100) + r"\}",
    "; ".join(_ZEROS_TO_100),
    ", ".join(_ZEROS_TO_100[:-1]) + " and 100",
    " or ".join(_ZEROS_TO_100),
    r"1,2,\ldots,100",
    r"1, 2, \dots, 100",
    r"0,1,2,3,4,5,6,7,8,9",
    r"-100,\ldots,100",
    # Every multiple-choice letter at once.
    r"\text{A, B, C, D, E}",
    r"A, B, C, D, E",
    r"ABCDE",
    r"A or B or C or D",
    r"(A)(B)(C)(D)(E)",
    r"\text{(A) or (B) or (C) or (D) or (E)}",
    # Matrices of huge or infinite numbers.
    r"\begin{pmatrix}" + _HUGE + "&" + _HUGE + r"\\" + _HUGE + "&" + _HUGE + r"\end{pmatrix}",
    r"\begin{pmatrix}2^{1024}\\2^{1024}\end{pmatrix}",
    r"\begin{pmatrix}\infty\end{pmatrix}",
    # Percent and unit forms of huge numbers.
    _HUGE + r"\%",
    r"2^{1024}\%",
    _HUGE + r" \text{ km}",
    _HUGE + r"^\circ",
    r"\$" + _HUGE,
    r"\text{about } " + _HUGE,
    # Many boxes in one response.
    ", ".join(rf"\boxed{{{i}}}" for i in _ONE_TO_20),
    r"\boxed{1}\boxed{2}\boxed{3}\boxed{\infty}",
]

# Golds of many kinds, always graded against every candidate.
HAND_GOLDS: list[str] = [
    "5",
    "0",
    "1",
    "-3",
    "42",
    "1000000",
    "2^{100}",
    "10^{10}",
    r"\frac{1}{2}",
    r"-\frac{1}{2}",
    r"\frac{3}{7}",
    "0.75",
    "3.14",
    "1.5",
    r"\sqrt{2}",
    r"2\sqrt{3}",
    r"\frac{\sqrt{3}}{2}",
    r"\pi",
    r"2\pi",
    "e",
    r"\log_2 3",
    "3+4i",
    "2x+1",
    "x^2-1",
    r"\sin x",
    "x=3",
    "y=2x+1",
    "(1,2)",
    "(3,-4)",
    "[0,1)",
    r"(-\infty,0)\cup(1,\infty)",
    r"\{1,2\}",
    "1, 2, 3",
    "B",
    r"\text{(D)}",
    r"\text{Monday}",
    r"\text{even}",
    r"25\%",
    r"12.5\%",
    r"\begin{pmatrix}1&2\\3&4\end{pmatrix}",
    r"\begin{pmatrix}1\\0\end{pmatrix}",
    r"90^\circ",
    r"\$5.00",
    r"\infty",
    r"\mathbb{R}",
]

# Ways to put a candidate into a response: (id, extract mode, response builder).
WRAPPINGS = [
    ("boxed", "boxed", lambda c: "\\boxed{" + c + "}"),
    ("answer_is", "auto", lambda c: "The answer is $" + c + "$."),
    ("bare", "auto", lambda c: c),
]


def _grade(response: str, gold: str, extract: str, timeout_s: float = TIMEOUT_S) -> Verdict:
    return grade(response, gold, extract=extract, timeout_s=timeout_s)


@lru_cache(maxsize=None)
def _math500_golds() -> tuple[str, ...]:
    """All distinct MATH-500 gold answers, in a fixed order."""
    if not MATH500.exists():
        pytest.skip(f"{MATH500} not available")
    answers = {json.loads(line)["answer"] for line in MATH500.read_text(encoding="utf-8").splitlines() if line.strip()}
    return tuple(sorted(answers))


def _all_golds() -> list[str]:
    golds = list(HAND_GOLDS)
    golds += [g for g in _math500_golds() if g not in set(HAND_GOLDS)]
    return golds


def _golds_for(candidate: str, n: int | None) -> list[str]:
    """The hand golds plus a deterministic (per-candidate) sample of MATH-500 golds;
    all golds when ``n`` is None."""
    others = [g for g in _math500_golds() if g not in set(HAND_GOLDS)]
    if n is not None:
        rng = random.Random(zlib.crc32(candidate.encode("utf-8")))
        others = rng.sample(others, max(0, min(len(others), n - len(HAND_GOLDS))))
    return list(HAND_GOLDS) + others


@lru_cache(maxsize=None)
def _equivalent(g1: str, g2: str) -> bool:
    """The grader itself says the two golds are the same answer (either direction)."""
    return (
        g1 == g2
        or _grade("\\boxed{" + g1 + "}", g2, "boxed", EQUIV_TIMEOUT_S).correct
        or _grade("\\boxed{" + g2 + "}", g1, "boxed", EQUIV_TIMEOUT_S).correct
    )


def _check_not_universal(candidate: str, wrap_id: str, extract: str, response: str, golds: list[str]) -> None:
    accepted = [g for g in golds if _grade(response, g, extract).correct]
    for i, g1 in enumerate(accepted):
        for g2 in accepted[i + 1 :]:
            if not _equivalent(g1, g2):
                pytest.fail(
                    f"universal answer: candidate {candidate!r} (as {wrap_id}, extract={extract!r}, "
                    f"response {response[:200]!r}) is accepted for {len(accepted)}/{len(golds)} golds, "
                    f"including the different golds {g1!r} and {g2!r}; accepted: {accepted[:12]!r}"
                )


def _cases():
    for c in UNIVERSAL_CANDIDATES:
        for wrap_id, extract, build in WRAPPINGS:
            yield pytest.param(c, wrap_id, extract, build(c), id=f"{wrap_id}-{c[:40]}")


def test_corpus_size():
    assert len(UNIVERSAL_CANDIDATES) >= 80
    assert len(set(UNIVERSAL_CANDIDATES)) == len(UNIVERSAL_CANDIDATES)
    assert len(_all_golds()) >= 200
    assert len(set(_all_golds())) == len(_all_golds())


@pytest.mark.parametrize(("candidate", "wrap_id", "extract", "response"), list(_cases()))
def test_no_universal_answer(candidate, wrap_id, extract, response):
    _check_not_universal(candidate, wrap_id, extract, response, _golds_for(candidate, GOLDS_PER_CANDIDATE))


@pytest.mark.slow
@pytest.mark.parametrize(("candidate", "wrap_id", "extract", "response"), list(_cases()))
def test_no_universal_answer_full(candidate, wrap_id, extract, response):
    _check_not_universal(candidate, wrap_id, extract, response, _golds_for(candidate, None))


SPECIFIC_GOLDS = ["5", r"\frac{1}{2}", "x=3", r"\sqrt{2}", "2x+1"]


@pytest.mark.parametrize("candidate", UNIVERSAL_CANDIDATES, ids=[c[:40] for c in UNIVERSAL_CANDIDATES])
def test_candidate_rejected_for_specific_golds(candidate):
    response = "\\boxed{" + candidate + "}"
    accepted = [g for g in SPECIFIC_GOLDS if _grade(response, g, "boxed").correct]
    assert accepted == [], f"{candidate!r} accepted for {accepted!r}"


def test_overflowing_answer_is_a_plain_verdict(caplog):
    with caplog.at_level(logging.ERROR):
        v = _grade("\\boxed{10^{309}}", "0.5", "boxed")
    assert isinstance(v, Verdict)
    assert v.correct is False
    assert v.reason in {"wrong_answer", "timeout"}
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
