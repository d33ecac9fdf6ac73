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

from .synonyms import canonical_text

# Exponents beyond this are not numbers a math benchmark asks for; building the
# Fraction would cost time and memory proportional to the exponent.
MAX_EXPONENT = 400
MAX_DEPTH = 6  # nesting of sequences inside sequences we parse structurally
MAX_ELEMENTS = 64

_INT_OR_DEC = r"(?:\d+(?:\.\d*)?|\.\d+)"
_DEC_RE = re.compile(rf"^{_INT_OR_DEC}$")
_THOUSANDS_RE = re.compile(r"^[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")  # "0,111" is not
# Digit groups of a number written with spaces ("2 500", "1 000 000"): not two numbers.
_THIN_GROUPS_RE = re.compile(r"(?<![\d.])\d{1,3}(?: \d{3})+(?![\d])")
_SCI_E_RE = re.compile(rf"^({_INT_OR_DEC})[eE]([+-]?\d+)$")
_SCI_TIMES_RE = re.compile(rf"^(?:({_INT_OR_DEC})(?:\\times|\\cdot|\*|x))?10\^(?:\{{([+-]?\d+)\}}|([+-]?\d))$")
_FRAC_RE = re.compile(r"^\\frac\{([^{}]*)\}\{([^{}]*)\}$")
_FRAC_SHORT_RE = re.compile(r"^\\frac(\d)(\d)$")
_CHOICE_RE = re.compile(r"^\(?([A-E])\)?$")
_TEXT_ANSWER_RE = re.compile(r"^[A-Za-z][A-Za-z'\- ]*[A-Za-z]$")
# Separators of a bare list of answers: commas, semicolons, \quad, and/or (also \text{and}).
_LIST_SEP_RE = re.compile(r"\s*(?:,|;|\\q?quad(?![A-Za-z])|(?<![A-Za-z\\])(?:and|or)(?![A-Za-z]))\s*")
# "=" of an assignment or equation (not part of <=, >=, !=, :=, ==).
_EQ_RE = re.compile(r"(?<![<>!:=])=(?!=)")
# A label naming the answer: "x", "PQ", "a_1", "f(x)", "(a,b)", "|AB|", "\angle ABC",
# "V_1:V_2", "\frac{NO}{BO}". Digits only in subscripts and no +/- at the top level: a
# left side such as "2x+z" or "x^2" makes an equation, not a label.
_LABEL_CHARS_RE = re.compile(r"^[A-Za-z\\{}()|:_, ']+$")
_MATRIX_RE = re.compile(
    r"^[(\[]?\\begin\{([pbBv]?matrix|array)\}(?:\{[lcr|]*\})?(.*)\\end\{\1\}[)\]]?$", re.DOTALL
)
# A one-variable inequality chain "a < x \le b" (or one side, "x > 3"), read as an interval.
_REL = r"(<=|>=|<|>|\\lt|\\gt|\\leqslant|\\geqslant|\\leq?|\\geq?)"
_CHAIN_RE = re.compile(rf"^(?:(.+?){_REL})?(-?[A-Za-z](?:_\{{?\w+\}}?)?(?:\([A-Za-z]\))?)(?:{_REL}(.+))?$")
_BASE_N_RE = re.compile(r"^([0-9A-Za-z]+)_\{?(\d+)\}?$")
_PM_RE = re.compile(r"\\(pm|mp)(?![A-Za-z])")
_SUBSCRIPT_RE = re.compile(r"_\{?\w+\}?")
_FUNC_APP_RE = re.compile(r"[A-Za-z](?:\^\{?-1\}?)?\s*\(")
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_GREEK_VAR_RE = re.compile(
    r"\\(?:alpha|beta|gamma|delta|epsilon|varepsilon|zeta|eta|theta|vartheta|kappa|lambda|mu|nu"
    r"|xi|rho|sigma|tau|phi|varphi|chi|psi|omega|Gamma|Delta|Theta|Lambda|Phi|Psi|Omega)(?![A-Za-z])"
)
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
    text: str = field(default="", compare=False)


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
    text: str = field(default="", compare=False)


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


def _is_label(lhs: str) -> bool:
    """True when ``lhs`` names an answer rather than stating an equation (see above)."""
    bare = re.sub(r"_\{?\w+\}?", "", lhs.replace(" ", ""))  # subscripts may hold digits
    bare = re.sub(r"(?<=[A-Za-z])\(-?[\d.]+\)", "", bare)  # f(2) = 5: a value at a point
    return bool(bare) and len(bare) <= 24 and bool(_LABEL_CHARS_RE.match(bare))


def _is_evaluation(side: str) -> bool:
    """True when one side of "=" has a value rather than unknowns: numbers, functions
    applied to something (``f^{-1}(\\frac{1}{5})``, ``g(f(2))``), LaTeX operators, numerals
    with a base (``1011_{2}``). ``x^2``, ``2x + z`` and ``\\sqrt{x}`` hold unknowns."""
    if _GREEK_VAR_RE.search(side):
        return False  # "\\cos 2\\theta = \\frac12" is an equation in theta
    bare = _SUBSCRIPT_RE.sub("", side)
    bare = _COMMAND_RE.sub("", _FUNC_APP_RE.sub("(", bare))
    return not re.search(r"[A-Za-z]", bare) and bool(re.search(r"\d", bare))


def _label_name(lhs: str) -> str:
    """One spelling of a label: no spaces, one-token subscripts unbraced (``y_{1}`` = ``y_1``)."""
    return re.sub(r"_\{(\w)\}", r"_\1", lhs.replace(" ", ""))


def split_lhs(s: str) -> tuple[str | None, str]:
    """``("x", "3")`` for ``"x = 3"`` (also ``x \\in S``, ``(a,b) = (5,1)``, a chain
    ``x = 5+6 = 11`` whose last side is the answer); ``("", value)`` when the left side
    only leads to the value: worked arithmetic ``2+3 = 5``, an evaluation
    ``f^{-1}(\\frac15) = 9``, or any chain ``lhs = ... = value`` of three or more sides;
    ``(None, s)`` when ``s`` is an equation such as ``a+b=5`` or ``x^2=4``."""
    s = re.sub(r"\\in(?![A-Za-z])", "=", s, count=1) if "=" not in s else s
    # "x = 22/7 \\approx 3.14": the exact value comes before the approximation.
    # "\\frac{9.5}{3.14} \\approx 3.03": the exact value, never its rounding; "x \\approx 3.14"
    # is the label x given a rounded value.
    approx = re.split(r"\\approx(?![A-Za-z])", s)
    if len(approx) > 1:
        head = approx[0].strip()
        s = approx[0] if head and ("=" in head or not _is_label(head)) else "=".join(approx)
    parts = split_top_re(s, _EQ_RE)
    if len(parts) < 2 or not parts[-1].strip() or not parts[0].strip():
        return None, s
    lhs, rhs = parts[0].strip(), parts[-1].strip()
    if _is_label(lhs):
        return _label_name(lhs), rhs
    if len(parts) >= 3 or (_is_evaluation(lhs) and _is_evaluation(rhs)):
        return "", rhs  # the work before the last "=" leads to the answer ("9 = 5a+b" does not)
    if not re.search(r"[A-Za-z]", lhs) and parse_number(rhs.replace(" ", "")):
        return "", rhs  # "2+3=5": the worked arithmetic ends in the answer
    return None, s


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
    """Split on the literal ``sep`` at bracket depth 0 (see `split_top_re`)."""
    return split_top_re(s, re.compile(re.escape(sep)))


def split_top_re(s: str, sep: re.Pattern) -> list[str]:
    """Split on matches of ``sep`` that lie at bracket depth 0. All bracket kinds share one
    counter, which also handles half-open intervals such as ``[1,2)``, and ``\\{`` counts
    as a bracket too: a set is one item."""
    depth, level = 0, []
    for c in s:
        if c in _OPEN:
            depth += 1
        elif c in _CLOSE:
            depth -= 1
        level.append(depth)
    parts, start = [], 0
    for m in sep.finditer(s):
        if m.start() >= start and level[m.start()] == 0 and (m.start() == 0 or level[m.start() - 1] == 0):
            parts.append(s[start : m.start()])
            start = m.end()
    parts.append(s[start:])
    return parts


def _parse_seq(s: str, depth: int) -> Seq | None:
    """Sets ``\\{..\\}``, bracketed tuples/intervals, unions, and bare comma lists."""
    if s.startswith("\\{") and s.endswith("\\}") and _closes_at_end(s[1:-1] + "}"):
        inner = s[2:-2]
        return Seq("set", tuple(parse_answer(p, depth + 1) for p in split_top(inner, ",") if p))
    if re.fullmatch(r"\d+(?::\d+)+", s):  # "12:00", "3:4": ordered, compared exactly
        return Seq(":", tuple(parse_answer(p, depth + 1) for p in s.split(":")))
    if len(split_top(s, "\\cup")) > 1:
        return Seq("union", tuple(parse_answer(p, depth + 1) for p in split_top(s, "\\cup")))
    if s[:1] == "{" and s[-1:] == "}" and _closes_at_end(s) and len(split_top(s[1:-1], ",")) > 1:
        # "{1, 2, 3}": braces without backslashes, as models write a set (a TeX group
        # holds no top-level comma in an answer)
        return Seq("set", tuple(parse_answer(p, depth + 1) for p in split_top(s[1:-1], ",") if p))
    if s[:1] in "([" and s[-1:] in ")]" and _closes_at_end(s):
        parts = split_top(s[1:-1], ",")
        if len(parts) == 1 and ";" in s:  # "(0;-2;6)": semicolons separate the coordinates
            parts = split_top(s[1:-1], ";")
        if len(parts) > 1:
            return Seq(s[0] + s[-1], tuple(parse_answer(p, depth + 1) for p in parts))
        return None
    return None


def _parse_list(s: str, depth: int) -> Seq | None:
    """A bare list ``3, 5`` / ``3; 5`` / ``3 \\quad 5`` / ``3 and 5`` / ``x=3 or x=5``
    (unordered, like a set). Needs the spaced string: "and" is a word."""
    parts = [p for p in split_top_re(s, _LIST_SEP_RE) if p.strip()]
    if len(parts) > 1:
        return Seq("list", tuple(parse_answer(p, depth + 1) for p in parts))
    return None


def _is_less(op: str) -> bool:
    return op in ("<", "<=", "\\lt") or op.startswith("\\le")


def _parse_chain(flat: str, depth: int) -> Seq | None:
    """``-2 \\le x < 7`` -> ``[-2, 7)``; ``x > 3`` -> ``(3, \\infty)``; ``5 \\ge x`` ->
    ``(-\\infty, 5]``: a one-variable inequality is the interval it describes, so it
    matches the interval written out (and ``x \\in [-2, 7)``)."""
    m = _CHAIN_RE.match(flat)
    if not m or (m.group(1) is None and m.group(5) is None):
        return None
    left, op1, var, op2, right = m.groups()
    if var.startswith("-"):  # "-x > -2" is "x < 2": negate the bounds, flip the relations
        var = var[1:]
        left, right = (f"-({left})" if left else None), (f"-({right})" if right else None)
        left, op1, op2, right = right, op2, op1, left
    letter = var[0]
    if any(letter in re.sub(r"\\[A-Za-z]+", "", side or "") for side in (left, right)):
        return None  # "x < 2x + 1" is not a bound on x
    lo = hi = None  # (value text, closed)
    for side, op, var_on_right in ((left, op1, True), (right, op2, False)):
        if side is None:
            continue
        less = _is_less(op)
        closed = op not in ("<", ">", "\\lt", "\\gt")
        # "a < x" and "x > a" bound x from below; "x < b" and "b > x" from above.
        if less == var_on_right:
            if lo is not None:
                return None
            lo = (side, closed)
        else:
            if hi is not None:
                return None
            hi = (side, closed)
    lo = lo or ("-\\infty", False)
    hi = hi or ("\\infty", False)
    kind = ("[" if lo[1] else "(") + ("]" if hi[1] else ")")
    return Seq(kind, (parse_answer(lo[0], depth + 1), parse_answer(hi[0], depth + 1)))


def _parse_pm(s: str, depth: int) -> Seq | None:
    """``a \\pm b`` -> the set ``{a + b, a - b}`` (one ``\\pm`` at the top level)."""
    found = list(_PM_RE.finditer(s))
    if len(found) != 1 or len(split_top_re(s, _PM_RE)) != 2:
        return None
    m = found[0]
    a, b = s[: m.start()].strip(), s[m.end() :].strip()
    if not b:
        return None
    plus, minus = (f"{a}+{b}", f"{a}-{b}") if a else (b, f"-{b}")
    return Seq("set", (parse_answer(plus, depth + 1), parse_answer(minus, depth + 1)))


def _parse_matrix(s: str, depth: int) -> Matrix | None:
    """``\\begin{pmatrix} a & b \\\\ c & d \\end{pmatrix}`` (p/b/B/plain matrix)."""
    m = _MATRIX_RE.match(s) if s.count("\\begin") == 1 else None  # A + B: an expression
    if not m or m.group(1) == "vmatrix":  # vmatrix is a determinant, a scalar
        return None
    if (s[0] in "([") != (s[-1] in ")]"):
        return None
    rows = [r for r in m.group(2).split("\\\\") if r.strip()]
    return Matrix(tuple(tuple(parse_answer(c, depth + 1) for c in r.split("&")) for r in rows), s)


def parse_answer(s: str, depth: int = 0):
    """Parse a cleaned answer string into a Num/Named/Seq/Matrix/Choice/Text/Expr tree."""
    s = s.strip()
    flat = s.replace(" ", "")
    if depth > MAX_DEPTH or len(flat) > 1000 or flat.count(",") > MAX_ELEMENTS:
        return Expr(s)
    # "32, 349" is a list of two numbers; only "32,349" is thousands.
    num = None if re.search(r",\s", s) or re.search(r"\d\s+\d", _THIN_GROUPS_RE.sub("", s)) else parse_number(flat)
    if num is not None:
        return num
    if "\\begin" in flat[:8] and (mat := _parse_matrix(flat, depth)) is not None:
        return mat
    interval = _parse_chain(flat, depth)
    if interval is not None:
        return interval
    pm = _parse_pm(s, depth)
    if pm is not None:
        return pm
    items = _parse_list(s, depth)
    if items is not None:
        return items
    name, rhs = split_lhs(s)
    if name is not None:
        value = parse_answer(rhs, depth + 1)
        return Named(name, value, s) if name else value
    m = _CHOICE_RE.match(flat)
    if m:
        return Choice(m.group(1))
    m = _BASE_N_RE.match(flat)
    if m:  # "204_5", "52_{8}": a numeral in base 5 / 8, equal only to the same numeral
        return Text(f"{m.group(1).lower()}_{m.group(2)}")
    seq = _parse_seq(flat, depth)
    if seq is not None:
        return seq
    if s[:1] == "(" and s[-1:] == ")" and _closes_at_end(flat):
        return parse_answer(s[1:-1], depth + 1)  # "(5)" is 5: parentheses, not a tuple
    if _TEXT_ANSWER_RE.match(s) and (len(s) >= 3 or s.lower() == "no"):  # "ab" is a product
        return Text(canonical_text(s))
    return Expr(s)  # spaces kept: "\\log_2 8" is not "\\log_28"
