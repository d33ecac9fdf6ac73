"""Notations people and models use for a value, rewritten into the one spelling the
comparers read: counting notation (``C(7,4)``, ``_7C_4``, ``7 choose 4``, ``P(7,4)``),
plain-text constants (``12*pi``, ``sqrt(3)``), ordinals (``12^{th}``), words counting
what a number counts (``7 nickels``, ``12 grade``), degrees inside a trigonometric
function, and a free parameter stated in words (``(a, 1) for any positive integer a``).

Each rewrite is value-preserving under the reading a careful grader gives the answer;
each is guarded by a cheap substring test so that the common answer pays nothing.
"""

from __future__ import annotations

import math
import re

MAX_COUNT_N = 1000  # C(n, k) and P(n, k) are expanded only for n up to this (exact ints)

_N = r"\{?\s*(\d{1,4})\s*\}?"
# C(n, k) and P(n, k) with literal arguments, not part of a longer name ("PC(1,2)").
_FUNC_RE = re.compile(r"(?<![A-Za-z\\_^])([CP])\s*\(\s*(\d{1,4})\s*,\s*(\d{1,4})\s*\)")
# Calculator and textbook forms: _nC_k, {}^nP_k, nCk, C_n^k (n below, k above).
_PRE_RE = re.compile(rf"(?:\{{\s*\}})?[_^]{_N}\s*([CP])\s*_{_N}")
_INFIX_RE = re.compile(r"(?<![\w\\{])(\d{1,4})\s*([CP])\s*(\d{1,4})(?![\w])")
_SUBSUP_RE = re.compile(rf"(?<![A-Za-z\\])([CA])\s*_{_N}\s*\^{_N}")
_SUPSUB_RE = re.compile(rf"(?<![A-Za-z\\])([CA])\s*\^{_N}\s*_{_N}")  # C^k_n, k above
_CHOOSE_RE = re.compile(
    r"\\binom\s*\{\s*(\d{1,4})\s*\}\s*\{\s*(\d{1,4})\s*\}|\{\s*(\d{1,4})\s*\\choose\s*(\d{1,4})\s*\}"
    r"|(?<![\w\\])(\d{1,4})\s+choose\s+(\d{1,4})(?!\d)",
    re.IGNORECASE,
)
# Plain-text constants and roots: "12*pi", "2 sqrt(3)".
_PI_RE = re.compile(r"(?<![A-Za-z\\])pi(?![A-Za-z])")
_SQRT_RE = re.compile(r"(?<![A-Za-z\\])sqrt\s*\(")
# Ordinals: "12^{th}", "12^{\mathrm{th}}" (after \text unwrapping), "12th", "3rd".
_ORDINAL_RE = re.compile(
    r"(?<=\d)\s*(?:\^\s*\{?\s*(?:th|st|nd|rd)\s*\}?|(?:th|st|nd|rd)(?![A-Za-z]))(?:-(?=[A-Za-z]{3}))?"
)  # "12th-grade": the hyphen goes with the ordinal
# Words after a number naming what it counts ("7 nickels", "12 grade", "3 more apples"
# is not: see _KEEP_WORDS). One to three words at the very end.
_COUNT_WORDS_RE = re.compile(r"(?<=[\d}])((?:\s+[A-Za-z][a-z'\-]{2,}){1,3})\.?\s*$")
_KEEP_WORDS = frozenset(
    """and or not more less than times plus minus over per each half dozen hundred thousand
    million billion trillion squared cubed factorial percent sin cos tan cot sec csc log
    exp mod choose""".split()
)
# Degrees inside a trigonometric function: "\sin 80^\circ" is sin(4\pi/9), not sin(80).
_TRIG_RE = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc)(?![A-Za-z])")
_DEG_ARG_RE = re.compile(r"(\d+(?:\.\d+)?)\s*\^\s*(?:\{\s*\\circ\s*\}|\\circ(?![A-Za-z]))")
# A free parameter stated in words: "(a, 1) for any positive integer a", "2k\pi, where k
# is an integer", "f(x) = 0 for all x".
_QUALIFIER_RE = re.compile(
    r"(?<![A-Za-z])(?:(?:for|with)\s+(?:any|all|every|each|some|arbitrary|an?\s+arbitrary)\b"
    r"|for\s+[A-Za-z]\s*(?:\\in|\\geq?|\\leq?|\\ge|\\le|>|<|≥|≤)"
    r"|(?:where|with)\s+[A-Za-z](?:\s*,\s*[A-Za-z])*\s+(?:(?:is|are)\s+)?(?:an?|any|some|arbitrary)\b)[^=]*$"
    # ", a \in \mathbb{Z}^+": the parameter's domain after a comma
    r"|,\s*[A-Za-z]\s*\\in\s*\\mathbb\s*\{?[NZRQC]\}?(?:\^\{?[+*]\}?|_\{?[+>0-9]+\}?)?\s*$",
    re.IGNORECASE,
)


def _counted(kind: str, n: str, k: str) -> str | None:
    """``C(n, k)`` or ``P(n, k)`` as an exact integer in parentheses (``2C(4,2)`` is
    2 * 6, never "26"), or None when it is not one (k > n: then "C(2, 5)" is more likely
    a point named C)."""
    n_, k_ = int(n), int(k)
    if k_ > n_ or n_ > MAX_COUNT_N:
        return None
    return f"({math.comb(n_, k_) if kind == 'C' else math.perm(n_, k_)})"


def _choose(m: re.Match) -> str:
    n, k = next((m.group(i), m.group(i + 1)) for i in (1, 3, 5) if m.group(i))
    return _counted("C", n, k) or m.group(0)


def _counting(s: str) -> str:
    """Binomial and permutation notations with literal arguments -> their values.
    ``\\binom`` is expanded too: the LaTeX parser reads ``\\binom{8}{3}\\binom{6}{2}`` as
    a mixed number, 56 + 15."""
    if "C" in s or "P" in s:
        s = _FUNC_RE.sub(lambda m: _counted(m.group(1), m.group(2), m.group(3)) or m.group(0), s)
        s = _PRE_RE.sub(lambda m: _counted(m.group(2), m.group(1), m.group(3)) or m.group(0), s)
        s = _INFIX_RE.sub(lambda m: _counted(m.group(2), m.group(1), m.group(3)) or m.group(0), s)
    if "_" in s and "^" in s:  # C_n^k, C^k_n (combinations) and A_n^k (arrangements)
        kind = {"C": "C", "A": "P"}
        s = _SUBSUP_RE.sub(lambda m: _counted(kind[m.group(1)], m.group(2), m.group(3)) or m.group(0), s)
        s = _SUPSUB_RE.sub(lambda m: _counted(kind[m.group(1)], m.group(3), m.group(2)) or m.group(0), s)
    if "choose" in s or "binom" in s:
        s = _CHOOSE_RE.sub(_choose, s)
    return s


def _plain_math(s: str) -> str:
    """``pi`` -> ``\\pi``; ``sqrt(x)`` -> ``\\sqrt{x}`` (balanced parentheses)."""
    if "pi" in s:
        s = _PI_RE.sub(r"\\pi ", s)
    while (m := _SQRT_RE.search(s)) is not None:
        depth, j = 1, m.end()
        while j < len(s) and depth:
            depth += {"(": 1, ")": -1}.get(s[j], 0)
            j += 1
        if depth:
            break  # unbalanced: leave the rest as written
        s = s[: m.start()] + "\\sqrt{" + s[m.end() : j - 1] + "}" + s[j:]
    return s


def strip_count_words(s: str) -> str:
    """``7 nickels`` -> ``7``, ``12 grade`` -> ``12``: up to three words after a number,
    unless one of them changes the value ("5 million", "3 more", "2 squared")."""
    m = _COUNT_WORDS_RE.search(s)
    if m is None or any(w.lower() in _KEEP_WORDS for w in m.group(1).split()):
        return s
    return s[: m.start()].rstrip()


def degrees_in_trig(s: str) -> str:
    """``\\sin 80^\\circ`` -> ``\\sin (80\\pi/180)``: inside a trigonometric function a
    degree sign changes the value, so it is converted rather than dropped."""
    if "circ" in s and _TRIG_RE.search(s):
        return _DEG_ARG_RE.sub(r"(\1\\pi/180)", s)
    return s


def rewrite(s: str) -> str:
    """All rewrites above that apply after ``\\text{}`` unwrapping, in order."""
    if "for" in s or "where" in s or "with" in s or "\\in" in s:
        m = _QUALIFIER_RE.search(s)
        s = s[: m.start()].rstrip(" \t,") if m else s
    s = _counting(s)
    s = _plain_math(s)
    if "th" in s or "st" in s or "nd" in s or "rd" in s:
        s = _ORDINAL_RE.sub(" ", s).replace("  ", " ").strip()
    return strip_count_words(s)
