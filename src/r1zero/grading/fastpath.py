"""Structure-aware parsing of cleaned answers, without sympy.

An answer is parsed into a small tree: exact numbers (``Fraction``), sequences (sets,
tuples, intervals, unions, bare comma lists), matrices, multiple-choice letters, plain
text, or an opaque expression left for the symbolic comparer. Comparing the *structure*
here, and handing only scalar leaves to sympy, is what removes the lenient accepts of
general-purpose graders: a set never matches one of its elements, ``[1,2)`` never matches
``[1,2]``, and ``0.33`` is exactly 33/100, never 1/3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction

# Exponents beyond this are not numbers a math benchmark asks for; building the
# Fraction would cost time and memory proportional to the exponent.
MAX_EXPONENT = 400
MAX_DEPTH = 6  # nesting of sequences inside sequences we parse structurally
MAX_ELEMENTS = 64

_INT_OR_DEC = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DEC_RE = re.compile(rf"^{_INT_OR_DEC}$")
_THOUSANDS_RE = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_SCI_E_RE = re.compile(rf"^({_INT_OR_DEC})[eE]([+-]?\d+)$")
_SCI_TIMES_RE = re.compile(rf"^(?:({_INT_OR_DEC})(?:\\times|\\cdot|\*|x))?10\^(?:\{{([+-]?\d+)\}}|([+-]?\d))$")
_FRAC_RE = re.compile(r"^\\frac\{([^{}]*)\}\{([^{}]*)\}$")
_FRAC_SHORT_RE = re.compile(r"^\\frac(\d)(\d)$")
_CHOICE_RE = re.compile(r"^\(?([A-E])\)?$")
_TEXT_ANSWER_RE = re.compile(r"^[A-Za-z][A-Za-z'\- ]*[A-Za-z]$")
# "x =", "f(x) =", "\theta =", "a_1 =" : a simple left-hand side naming the answer.
_LHS_RE = re.compile(r"^\s*((?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?\w+\}?)?(?:\([A-Za-z]\))?)\s*=(.*)$", re.DOTALL)
_MATRIX_RE = re.compile(r"^\\begin\{([pbBv]?matrix)\}(.*)\\end\{\1\}$", re.DOTALL)
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Num:
    """An exact rational; ``pct`` marks a trailing ``%``; ``decimal`` a decimal literal."""

    value: Fraction
    pct: bool = False
    decimal: bool = False
    text: str = field(default="", compare=False)


@dataclass(frozen=True)
class Named:
    """An answer given as ``name = value`` with a plain name (``x = 3``, ``f(x) = 2x``)."""

    name: str
    value: object


@dataclass(frozen=True)
class Seq:
    """A sequence: kind is "set", "list" (bare commas), "union", or a bracket pair such as
    "()", "[)", "[]" (tuples and intervals share spelling; brackets must match exactly)."""

    kind: str
    items: tuple


@dataclass(frozen=True)
class Matrix:
    """A matrix as rows of cell nodes (pmatrix and bmatrix are the same object)."""

    rows: tuple


@dataclass(frozen=True)
class Choice:
    """A multiple-choice letter A-E, however it was wrapped."""

    letter: str


@dataclass(frozen=True)
class Text:
    """A plain-words answer, compared case- and whitespace-insensitively."""

    words: str


@dataclass(frozen=True)
class Expr:
    """Anything else: a scalar math expression for the symbolic comparer."""

    latex: str


def split_lhs(s: str) -> tuple[str | None, str]:
    """``("x", "3")`` for ``"x = 3"``; ``(None, s)`` when there is not exactly one ``=``
    or the left side is not a plain name (``a+b=5`` stays an equation)."""
    if s.count("=") != 1:
        return None, s
    m = _LHS_RE.match(s)
    if not m or not m.group(2).strip():
        return None, s
    return m.group(1).replace(" ", ""), m.group(2).strip()


def _pow10(exp_text: str) -> Fraction | None:
    """``10**exp`` as a Fraction, or None when the exponent is absurd."""
    e = int(exp_text)
    if abs(e) > MAX_EXPONENT:
        return None
    return Fraction(10) ** e


def _decimal(s: str) -> Fraction | None:
    """An unsigned integer/decimal literal (thousands separators allowed) as a Fraction."""
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    if _DEC_RE.match(s):
        return Fraction(s if not s.endswith(".") else s[:-1])
    return None


def _unsigned_number(s: str) -> tuple[Fraction, bool] | None:
    """Value and is-decimal flag of an unsigned number spelling (no sign, no %)."""
    v = _decimal(s)
    if v is not None:
        return v, "." in s
    m = _SCI_E_RE.match(s)
    if m:
        p = _pow10(m.group(2))
        return (Fraction(m.group(1)) * p, True) if p is not None else None
    m = _SCI_TIMES_RE.match(s)
    if m:
        p = _pow10(m.group(2) or m.group(3))
        mant = Fraction(m.group(1)) if m.group(1) else Fraction(1)
        return (mant * p, True) if p is not None else None
    m = _FRAC_RE.match(s) or _FRAC_SHORT_RE.match(s)
    if not m and s.count("/") == 1:
        m = re.match(r"^([^/]+)/([^/]+)$", s)
    if m:
        num, den = parse_number(m.group(1)), parse_number(m.group(2))
        if num and den and den.value != 0 and not (num.pct or den.pct):
            return num.value / den.value, num.decimal or den.decimal
    return None


def parse_number(s: str) -> Num | None:
    """An exact number from a squashed (whitespace-free) spelling, or None.

    Accepts integers, decimals, ``1,000``, ``1e3``, ``1\\times10^{3}``, ``\\frac{a}{b}``,
    ``a/b``, a sign and a trailing ``%``. Anything else (``\\sqrt``, ``\\pi``, ``2^{10}``)
    is not a literal and is left to the symbolic comparer.
    """
    text = s
    pct = s.endswith("%")
    if pct:
        s = s[:-1]
    sign = 1
    while s[:1] in ("-", "+"):
        if s[0] == "-":
            sign = -sign
        s = s[1:]
    if s.startswith("{") and s.endswith("}") and _closes_at_end(s):
        s = s[1:-1]
    got = _unsigned_number(s) if s else None
    if got is None:
        return None
    return Num(sign * got[0], pct, got[1], text)


def _closes_at_end(s: str) -> bool:
    """True when the bracket opening at ``s[0]`` closes exactly at ``s[-1]``."""
    depth = 0
    for i, c in enumerate(s):
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
            if depth == 0:
                return i == len(s) - 1
    return False


def split_top(s: str, sep: str) -> list[str]:
    """Split on ``sep`` at bracket depth 0 (all bracket kinds share one counter, which
    also handles half-open intervals such as ``[1,2)``)."""
    parts, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            parts.append(s[start:i])
            start = i + len(sep)
            i = start
            continue
        i += 1
    parts.append(s[start:])
    return parts


def _parse_seq(s: str, depth: int) -> Seq | None:
    """Sets ``\\{..\\}``, bracketed tuples/intervals, unions, and bare comma lists."""
    if s.startswith("\\{") and s.endswith("\\}") and _closes_at_end(s[1:-1] + "}"):
        inner = s[2:-2]
        return Seq("set", tuple(parse_answer(p, depth + 1) for p in split_top(inner, ",") if p))
    if len(split_top(s, "\\cup")) > 1:
        return Seq("union", tuple(parse_answer(p, depth + 1) for p in split_top(s, "\\cup")))
    if s[:1] in "([" and s[-1:] in ")]" and _closes_at_end(s):
        parts = split_top(s[1:-1], ",")
        if len(parts) > 1:
            return Seq(s[0] + s[-1], tuple(parse_answer(p, depth + 1) for p in parts))
        return None
    parts = split_top(s, ",")
    if len(parts) > 1 and all(p.strip() for p in parts):
        return Seq("list", tuple(parse_answer(p, depth + 1) for p in parts))
    return None


def _parse_matrix(s: str, depth: int) -> Matrix | None:
    """``\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}`` (p/b/B/plain matrix)."""
    m = _MATRIX_RE.match(s)
    if not m or m.group(1) == "vmatrix":  # vmatrix is a determinant, a scalar
        return None
    rows = [r for r in m.group(2).split("\\\\") if r.strip()]
    return Matrix(tuple(tuple(parse_answer(c, depth + 1) for c in r.split("&")) for r in rows))


def parse_answer(s: str, depth: int = 0):
    """Parse a cleaned answer string into a Num/Seq/Matrix/Choice/Text/Expr tree."""
    s = s.strip()
    flat = s.replace(" ", "")
    if depth > MAX_DEPTH or len(flat) > 1000 or flat.count(",") > MAX_ELEMENTS:
        return Expr(s)
    num = parse_number(flat)
    if num is not None:
        return num
    name, rhs = split_lhs(s)
    if name is not None:
        return Named(name, parse_answer(rhs, depth + 1))
    m = _CHOICE_RE.match(flat)
    if m:
        return Choice(m.group(1))
    mat = _parse_matrix(flat, depth)
    if mat is not None:
        return mat
    seq = _parse_seq(flat, depth)
    if seq is not None:
        return seq
    if s[:1] == "(" and s[-1:] == ")" and _closes_at_end(flat):
        return parse_answer(s[1:-1], depth + 1)  # "(5)" is 5: parentheses, not a tuple
    if _TEXT_ANSWER_RE.match(s) and len(s) >= 3:
        return Text(" ".join(s.lower().split()))
    return Expr(s)  # spaces kept: "\\log_2 8" is not "\\log_28"
