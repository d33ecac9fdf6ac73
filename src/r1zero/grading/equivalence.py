"""Answer equivalence: a fast exact path over parsed structure, sympy only for scalar
leaves that need it (in a killable worker process).

Policy (strict on purpose: a false accept is a reward hack, a false reject only noise):

* numbers are exact rationals: ``0.5 == 1/2 == \\frac{1}{2}``, ``1,000 == 1000 == 1e3``,
  but ``0.33 != 1/3`` and ``0.333333 != 1/3``; a decimal matches a fraction only to 1e-9
  relative (rounded answers are wrong answers; 16-digit ones are not rounded);
* percent: gold ``50\\%`` accepts ``50``, ``50\\%`` and ``0.5`` (as the public graders do);
  the same holds with the roles swapped;
* sets and bare comma lists are order-insensitive (except a list of numbers that the gold
  writes neither ascending nor descending: its order was chosen, `listed_in_order`),
  tuples/points and intervals are ordered, and interval brackets must match; a collection never equals one of its items;
* ``x = 3`` matches ``3``; two named answers must share the name (``x=3`` is not ``y=3``);
* units, ``\\$``, degree signs, ``\\text{}`` and spacing are ignored; choice letters
  match however wrapped (``(B)``, ``B``, ``\\text{(B)}``); words compare case-insensitively;
* other scalars are compared by sympy: exactly for rationals, 1e-9 relative for other
  constants, simplify + random points for expressions with variables; two closed-form
  constants whose float values are far apart are rejected before sympy
  (:mod:`r1zero.grading.numeric`).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from fractions import Fraction

from .fastpath import (
    MAX_ELEMENTS,
    Choice,
    Expr,
    Matrix,
    Named,
    Num,
    Seq,
    Text,
    parse_answer,
    parse_number,
)
from .normalize import clean, squash
from .numeric import clearly_different
from .symbolic import REL_TOL
from .worker import POOL, WorkerError, WorkerTimeout

_REL_TOL = Fraction(REL_TOL)  # the same tolerance, as an exact rational
_ORDERLESS = {"set", "list"}
_CACHE_MAX = 100_000
_cache: dict[tuple[str, str], bool] = {}
_cache_lock = threading.Lock()


class GradingTimeout(Exception):
    """The comparison ran past its deadline."""


def _symbolic(pred: str, gold: str, deadline: float) -> bool:
    """Cached sympy comparison in the worker pool, bounded by ``deadline``."""
    key = (pred, gold)
    hit = _cache.get(key)
    if hit is not None:
        return hit
    left = deadline - time.monotonic()
    if left <= 0:
        raise GradingTimeout
    try:
        result = POOL.compare(pred, gold, left)
    except WorkerTimeout as e:
        raise GradingTimeout from e
    except WorkerError:
        return False  # a crashed worker means sympy could not decide: reject, do not raise
    with _cache_lock:
        if len(_cache) >= _CACHE_MAX:
            _cache.clear()  # crude but bounded; hit rates come from repeats within a batch
        _cache[key] = result
    return result


def _same_value(a: Fraction, b: Fraction, decimal: bool) -> bool:
    """Exact equality; a long decimal may differ from a repeating fraction by ``REL_TOL``
    (``0.0833333333333333`` is 1/12 to 16 digits), which ``0.333333`` for 1/3 is not."""
    if a == b:
        return True
    # Exact: a float tolerance would overflow (or turn into inf) for 10^{309} and up.
    return decimal and abs(a - b) <= _REL_TOL * max(abs(a), abs(b))


def _nums_equal(p: Num, g: Num) -> bool:
    """Exact rational equality with the percent policy from the module docstring."""
    dec = p.decimal != g.decimal
    if _same_value(p.value, g.value, dec):
        return True
    if g.pct and not p.pct and _same_value(p.value * 100, g.value, dec):
        return True
    return p.pct and not g.pct and _same_value(p.value, g.value * 100, dec)


def _decimal_comma(seq: Seq) -> Num | None:
    """``3,75`` read as 3.75 (a decimal comma), for comparison with a non-integer number
    only: against a list it stays the list (3, 75), against 375 it is neither."""
    if seq.kind != "list" or len(seq.items) != 2:
        return None
    a, b = seq.items
    if not (isinstance(a, Num) and isinstance(b, Num)) or a.pct or b.pct:
        return None
    if not (a.text.lstrip("-").isdigit() and b.text.isdigit()):
        return None
    if len(b.text) == 3 and a.text.lstrip("-") != "0":
        return None  # "3,750" is thousands, never a decimal comma ("0,111" is 0.111)
    value = abs(a.value) + Fraction(int(b.text), 10 ** len(b.text))
    return Num(-value if a.text.startswith("-") else value, decimal=True, text=f"{a.text}.{b.text}")


def _match_orderless(ps: tuple, gs: tuple, deadline: float) -> bool:
    """Every gold item matched by a distinct predicted item (counts must agree)."""
    if len(ps) != len(gs):
        return False
    left = list(ps)
    for g in gs:
        for i, p in enumerate(left):
            if nodes_equal(p, g, deadline):
                del left[i]
                break
        else:
            return False
    return True


def listed_in_order(g: Seq) -> bool:
    """A bare comma list of three or more numbers that the gold writes neither ascending nor
    descending: whoever wrote it chose that order, so the order is part of the answer (the
    coefficients 1, 1, -2, -1/2; the values of a, b, c). A sorted list is a list of
    solutions and compares as a set (MATH's "enter all the solutions, separated by
    commas": 31 of the 34 such golds of the MATH level 3-5 training set and MATH-500 are
    sorted): ``1, 2, 3`` = ``3, 2, 1``, but ``0.1, 4, 2`` != ``4, 0.1, 2``. Two items carry
    no such signal."""
    if g.kind != "list" or len(g.items) < 3 or not all(isinstance(x, Num) for x in g.items):
        return False
    v = [x.value for x in g.items]
    pairs = list(zip(v, v[1:]))
    return not (all(a <= b for a, b in pairs) or all(a >= b for a, b in pairs))


def _seqs_equal(p: Seq, g: Seq, deadline: float) -> bool:
    """Collections: kinds must be compatible, then items compared (ordered or not)."""
    if p.kind == "list" and listed_in_order(g):
        return len(p.items) == len(g.items) and all(nodes_equal(a, b, deadline) for a, b in zip(p.items, g.items))
    if p.kind in _ORDERLESS and g.kind in _ORDERLESS or {p.kind, g.kind} <= {"union", "list"}:
        return _match_orderless(p.items, g.items, deadline)
    if p.kind != g.kind or len(p.items) != len(g.items):
        return False
    return all(nodes_equal(a, b, deadline) for a, b in zip(p.items, g.items))


def _stated_value(latex: str) -> Num | None:
    """The number an equation ``expression = number`` ends on, or None."""
    parts = latex.split("=")
    # A sum or difference of named quantities ("a + b", "m - n"): "x^2 = 4" stays an
    # equation (its solutions are ±2, not 4).
    if len(parts) != 2 or not re.fullmatch(r"[A-Za-z0-9+\-\s_{}\\]*[A-Za-z][A-Za-z0-9+\-\s_{}\\]*", parts[0]):
        return None
    return parse_number(parts[1].replace(" ", ""))


def _latex(node) -> str | None:
    """Source spelling of a scalar leaf for the symbolic comparer (None: not a scalar)."""
    if isinstance(node, Expr):
        return node.latex
    if isinstance(node, Num):
        return node.text
    return None


_BASE_NUMERAL_RE = re.compile(r"([0-9A-Za-z]+)_(\d+)")


def _same_numeral(p, g) -> bool:
    """A gold numeral with its base (``2516_8``) is answered by the same digits written
    without it (``2516``): the question named the base."""
    m = _BASE_NUMERAL_RE.fullmatch(g.words) if isinstance(g, Text) else None
    return bool(m) and isinstance(p, Num) and p.text.lower() == m.group(1)


def _matrix_expression(p, g) -> tuple[str, str] | None:
    """Source spellings when one side is a matrix and the other an expression of matrices
    (``A + B``, a product): sympy evaluates it."""
    for a, b in ((p, g), (g, p)):
        if isinstance(a, Matrix) and isinstance(b, Expr) and "\\begin" in b.latex and a.text:
            return (a.text, b.latex) if a is p else (b.latex, a.text)
    return None


def nodes_equal(p, g, deadline: float) -> bool:
    """Structural equality of two parsed answers; scalar leaves may go to sympy."""
    if time.monotonic() > deadline:
        raise GradingTimeout
    for named, other in ((p, g), (g, p)):
        if isinstance(named, Named) and isinstance(other, Expr) and "=" in other.latex:
            # "y = -x/2 + 3/4" against the equation "2x + 4y - 3 = 0": the same line.
            return named.text != "" and _symbolic(named.text, other.latex, deadline)
    if isinstance(p, Named) or isinstance(g, Named):
        if isinstance(p, Named) and isinstance(g, Named) and p.name != g.name:
            return False
        p = p.value if isinstance(p, Named) else p
        g = g.value if isinstance(g, Named) else g
        return nodes_equal(p, g, deadline)
    if isinstance(p, Num) and isinstance(g, Num):
        return _nums_equal(p, g)
    for seq, num in ((p, g), (g, p)):
        if isinstance(seq, Seq) and isinstance(num, Num) and num.value.denominator != 1:
            dec = _decimal_comma(seq)
            return dec is not None and _nums_equal(dec, num)
    if isinstance(p, Seq) and isinstance(g, Seq):
        return _seqs_equal(p, g, deadline)
    if isinstance(p, Matrix) and isinstance(g, Matrix):
        shape_ok = [len(r) for r in p.rows] == [len(r) for r in g.rows]
        return shape_ok and all(
            nodes_equal(a, b, deadline) for ra, rb in zip(p.rows, g.rows) for a, b in zip(ra, rb)
        )
    if isinstance(p, Choice) and isinstance(g, Choice):
        return p.letter == g.letter
    if isinstance(p, Text) and isinstance(g, Text):
        return p.words == g.words
    if _same_numeral(p, g):
        return True
    pair = _matrix_expression(p, g)
    if pair is not None:
        return _symbolic(pair[0], pair[1], deadline)
    if isinstance(p, Expr) and isinstance(g, Num):
        # "a + b = 11" states the value asked for when the gold is that number (a gold that
        # is itself an equation, "2x + z = 1", is never a number: see fastpath.split_lhs).
        rhs = _stated_value(p.latex)
        if rhs is not None:
            return _nums_equal(rhs, g)
    lp, lg = _latex(p), _latex(g)
    if lp is None or lg is None or not isinstance(p, Expr) and not isinstance(g, Expr):
        return False  # different kinds of answer (e.g. a set vs a number, text vs math)
    if lp == lg:
        return True
    if max(lp.count(","), lg.count(",")) > MAX_ELEMENTS:
        return False  # a list too long to parse structurally is no answer for sympy either
    if clearly_different(lp, lg):
        return False  # "\\sqrt{60}" vs "\\sqrt{51}": no parser, no worker round trip
    return _symbolic(lp, lg, deadline)


@functools.lru_cache(maxsize=65_536)
def _prepared(answer: str) -> tuple[str, object]:
    """``(squashed spelling, parsed tree)`` of one answer. Cached: golds recur every step
    and answers recur across a group; the trees are immutable."""
    cleaned = clean(answer)
    return (squash(cleaned) if cleaned else ""), parse_answer(cleaned)


def equal_by_deadline(pred: str, gold: str, deadline: float) -> bool:
    """``answers_equal`` against an absolute ``time.monotonic()`` deadline; raises
    GradingTimeout when it cannot decide in time."""
    (sp, tp), (sg, tg) = _prepared(pred), _prepared(gold)
    if sp and sp == sg:
        return True
    return nodes_equal(tp, tg, deadline)


def answers_equal(pred: str, gold: str, *, timeout_s: float = 5.0) -> bool:
    """True when the answer ``pred`` is equivalent to ``gold`` (both bare answers, not
    responses). Never raises on text; a time-out counts as not equal."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False
    try:
        return equal_by_deadline(pred, gold, time.monotonic() + timeout_s)
    except GradingTimeout:
        return False
