"""Strict symbolic equality of two scalar LaTeX answers (runs inside the grading worker).

LaTeX is parsed with ``latex2sympy2_extended`` (math-verify's own parser: the part of
math-verify that is excellent). The *comparison* is ours and deliberately stricter than
``math_verify.verify``: no 6-digit float rounding (so ``0.333333`` is not ``1/3``), no
variable renaming, and no set/tuple/interval leniency (structures are compared upstream in
:mod:`r1zero.grading.fastpath`; any that reach here must be structurally identical).

Run as ``python -m r1zero.grading.symbolic`` this module is the worker process: JSON lines
in (``{"id", "pred", "gold"}``), JSON lines out (``{"id", "equal"}``). The parent kills it
on timeout, which is the only time limit that works from any thread.
"""

from __future__ import annotations

import functools
import json
import random
import re
import sys

# Relative tolerance for two exact-valued numbers evaluated to 30 digits: only numerical
# noise is forgiven, never rounding (1e-6 would already accept 0.333333 for 1/3).
REL_TOL = 1e-9
EVAL_DIGITS = 30
# Pow towers with exponents beyond this are compared structurally only: evaluating
# 9^{9^{9^9}} would never finish.
MAX_POW_EXPONENT = 10_000
_GOLD_DECIMAL_RE = re.compile(r"^-?(\d+)\.(\d+)$")
# A number (not an exponent or subscript) or a closing parenthesis right before "(".
_JUXTAPOSED_RE = re.compile(r"((?<![\^_{A-Za-z\d.])\d+(?:\.\d+)?|\))\s*(?=\()")


def _fix_latex(s: str) -> str:
    """Shorthands the parser rejects: ``\\sqrt8``, ``\\frac12``, Python ``**``; and a
    product written by juxtaposition before a parenthesis (``2(3)``, ``(56)(15)``), which
    the parser would read as a mixed number, 2 + 3."""
    s = _JUXTAPOSED_RE.sub(r"\1 \\cdot ", s)
    s = re.sub(r"\\sqrt(\d|[A-Za-z](?![A-Za-z]))", r"\\sqrt{\1}", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"(?<!\\)%", r"\\%", s)
    return s.replace("**", "^")


@functools.lru_cache(maxsize=4_096)
def to_sympy(latex: str):
    """Parse LaTeX into a sympy object, or None when it does not parse as a whole.
    Symbols come back plain (name only): the parser may attach different assumptions to
    the same name on two sides (``F_k`` in a sum), which would make them unequal. Cached:
    parsing is most of a comparison's cost (the ANTLR parser), and a gold is compared with
    every response of its group; sympy objects are immutable."""
    import sympy
    from latex2sympy2_extended import latex2sympy

    try:
        expr = latex2sympy(_fix_latex(latex))
    except Exception:  # the parser raises many exception types on malformed model text
        return None
    if isinstance(expr, sympy.Basic):
        plain = {s: sympy.Symbol(s.name) for s in expr.atoms(sympy.Symbol) if s.assumptions0}
        if plain:
            expr = expr.xreplace(plain)
    return expr


def _too_big(expr) -> bool:
    """True when numeric evaluation could explode (huge exponents, towers), or when the
    "answer" is an unevaluated problem (an integral, limit, sum or derivative): a value is
    expected, and evalf of a divergent integral returns noise."""
    import sympy

    if expr.has(sympy.Integral, sympy.Limit, sympy.Sum, sympy.Product, sympy.Derivative):
        return True
    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow):
            e = node.exp
            if isinstance(e, sympy.Pow) or _beyond(e, MAX_POW_EXPONENT):
                return True
        if isinstance(node, (sympy.factorial, sympy.gamma, sympy.factorial2)) and _beyond(node.args[0], 1000):
            return True
        if isinstance(node, sympy.binomial) and _beyond(node.args[0], 100_000):
            return True
    return False


def _beyond(e, limit: int) -> bool:
    """True when the constant ``e`` (possibly unevaluated: ``10^{10}``) exceeds ``limit`` in
    absolute value. Symbols and non-numbers are not constants and never "beyond"."""
    import sympy

    if not e.is_number:
        return False
    if e.has(sympy.Pow) and any(isinstance(a.exp, sympy.Pow) for a in e.atoms(sympy.Pow)):
        return True  # a tower inside the argument
    try:
        return bool(abs(sympy.N(e, 5)) > limit)
    except (TypeError, ValueError):
        return True  # complex or undecidable magnitude: do not evaluate


def _numerically_zero(v, scale=1) -> bool:
    """True for an exact 0 and for an evalf result with no significant digits whose bound
    is negligible next to ``scale`` (``0.e-166``): what an exact zero looks like after
    numeric cancellation. ``0.e+209`` (evalf giving up on a divergent integral) is not."""
    import sympy

    if v == 0:
        return True
    if not (isinstance(v, sympy.Float) and v._prec <= 1):
        return False
    m = re.match(r"-?0\.e([+-]\d+)$", str(v))
    if m is None:
        return False
    magnitude = abs(sympy.N(scale, 5)) if scale != 0 else 1
    return int(m.group(1)) < -EVAL_DIGITS // 2 + (sympy.floor(sympy.log(magnitude, 10)) if magnitude > 1 else 0)


def _num_close(a, b) -> bool:
    """Numeric equality of two closed-form constants at ``REL_TOL``, in arbitrary precision.

    Never through Python floats: ``2^{1024}``, ``1000!`` or ``e^{1000}`` overflow a float
    to ``inf``, and ``inf <= tol * inf`` once made such an answer equal to *every* gold (a
    universal reward hack). sympy Floats have unbounded exponents, the difference is
    evaluated directly (adaptive precision resolves cancellation), and a non-finite value
    (``oo``, ``zoo``, ``nan``) is never close to anything: identical infinities were
    already matched exactly upstream.
    """
    import sympy

    va, vb = sympy.N(a, EVAL_DIGITS), sympy.N(b, EVAL_DIGITS)
    if not (va.is_number and vb.is_number) or not (va.is_finite and vb.is_finite):
        return False
    if not (_has_digits(va) and _has_digits(vb)):
        return False
    diff = sympy.N(a - b, EVAL_DIGITS)
    if not diff.is_finite:
        return False
    scale = sympy.Max(abs(va), abs(vb))
    if all(_numerically_zero(part, scale) for part in diff.as_real_imag()):
        return True
    return bool(abs(diff) <= REL_TOL * scale)


def _matches_rounded_gold(pred, gold_text: str) -> bool:
    """Gold written as a rounded decimal (e.g. ``1.41``, 3+ significant digits) accepts an
    exact irrational prediction that rounds to it (``\\sqrt{2}``). Rational predictions are
    not rounded: ``1/3`` vs ``0.33`` is decided exactly, as is every decimal prediction."""
    import sympy

    m = _GOLD_DECIMAL_RE.match(gold_text.strip())
    if not m or pred.has(sympy.Float) or pred.is_Rational or pred.free_symbols:
        return False
    digits = (m.group(1) + m.group(2)).lstrip("0")
    if len(digits) < 3:
        return False
    places = len(m.group(2))
    value = sympy.N(pred, EVAL_DIGITS)
    if not (value.is_real and value.is_finite):
        return False
    # Exact comparison with the rounding interval (no float: see _num_close).
    gold = sympy.Rational(gold_text.strip())
    return bool(abs(value - gold) <= sympy.Rational(1, 2) * sympy.Rational(10) ** (-places))


def _random_points_agree(a, b, symbols, trials: int = 4) -> bool | None:
    """Whether both sides agree at several random rational points: True, False, or None
    when a side does not evaluate to a finite number there (undefined functions, poles)."""
    import sympy

    rng = random.Random(0)  # deterministic: the same pair always gets the same verdict
    for _ in range(trials):
        subs = {s: sympy.Rational(rng.randint(51, 250), 97) for s in symbols}
        va, vb = a.subs(subs), b.subs(subs)
        if not all(_has_digits(sympy.N(v, EVAL_DIGITS)) for v in (va, vb)):
            return None
        if not _num_close(va, vb):
            return False
    return True


def _exactly_equal(a, b) -> bool:
    """Equality of two closed-form constants without symbols.

    Rationals (``2^{100}`` vs ``2^{100}+1``, ``\\frac{1}{3^{60}}`` vs ``\\frac{1}{3^{61}}``)
    are evaluated exactly. Other exact constants are equal when their difference has no
    significant digit at evalf's adaptive precision (``\\sqrt{8}`` vs ``2\\sqrt{2}``). Only a
    side holding a decimal (a Float) is compared with the relative tolerance ``REL_TOL``.
    """
    import sympy

    if a.has(sympy.Float) or b.has(sympy.Float):
        return _num_close(a, b)
    if a.is_rational and b.is_rational:
        return bool(a.doit() == b.doit())
    if not (a.is_finite and b.is_finite):
        return False  # oo, zoo, nan: equal only when identical (checked by the caller)
    va, vb = sympy.N(a, EVAL_DIGITS), sympy.N(b, EVAL_DIGITS)
    if not all(_has_digits(v) for v in (va, vb)):
        return False  # evalf could not give the value itself a single digit
    diff = sympy.N(a - b, EVAL_DIGITS)
    scale = sympy.Max(abs(va), abs(vb))
    return diff.is_finite is True and all(_numerically_zero(p, scale) for p in diff.as_real_imag())


def _has_digits(v) -> bool:
    """True when an evalf result is a number with at least one significant digit (or 0)."""
    return bool(v.is_number) and all(
        p == 0 or not (getattr(p, "_prec", 2) <= 1) for p in v.as_real_imag()
    )


def _expr_equal(a, b) -> bool:
    """Equality of two sympy expressions: exact for constants (see ``_exactly_equal``),
    simplify + random points when free symbols are present."""
    import sympy

    if a == b:
        return True
    if _too_big(a) or _too_big(b):
        return False
    symbols = a.free_symbols | b.free_symbols
    if not symbols:
        return _exactly_equal(a, b)
    # No variable renaming (x+1 is not y+1), but an identity may eliminate a variable
    # (sin^2 x + cos^2 x is 1). Random points first: they are cheap and decide almost
    # every pair, while simplify can run for minutes (e^{1000} - sin x); it only settles
    # pairs the points cannot evaluate (undefined functions, poles).
    points = _random_points_agree(a, b, sorted(symbols, key=str))
    if points is not None:
        return points
    return sympy.simplify(a - b) == 0


def _constant_ratio(da, db, positive: bool) -> bool:
    """True when ``da = c * db`` for a constant ``c`` (``c > 0`` when ``positive``):
    ``2x+4y+6z-12`` and ``x+2y+3z-6`` state the same plane."""
    import sympy

    if da == 0 or db == 0 or _too_big(da) or _too_big(db):
        return False  # a tautology ("x = x", "0 = 0") states nothing: never an answer
    ratio = sympy.simplify(da / db)
    if ratio.free_symbols or not ratio.is_number or ratio == 0 or not ratio.is_finite:
        return False
    return bool(ratio > 0) if positive else ratio.is_real is not False


def _as_positive_form(rel):
    """``(expr, strict)`` with ``rel`` equivalent to ``expr > 0`` (strict) or ``expr >= 0``."""
    import sympy

    if isinstance(rel, (sympy.StrictGreaterThan, sympy.GreaterThan)):
        return rel.lhs - rel.rhs, isinstance(rel, sympy.StrictGreaterThan)
    if isinstance(rel, (sympy.StrictLessThan, sympy.LessThan)):
        return rel.rhs - rel.lhs, isinstance(rel, sympy.StrictLessThan)
    return None


def _relation_equal(a, b) -> bool:
    """Equations match when ``lhs - rhs`` agree up to a non-zero constant factor (the same
    line, plane or curve); inequalities when ``x \\ge 5`` and ``5 \\le x`` (or ``-x \\le -5``)
    agree up to a positive factor with the same strictness; ``\\ne`` structurally."""
    import sympy

    if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
        return _constant_ratio(a.lhs - a.rhs, b.lhs - b.rhs, positive=False)
    fa, fb = _as_positive_form(a), _as_positive_form(b)
    if fa is not None and fb is not None:
        return fa[1] == fb[1] and _constant_ratio(fa[0], fb[0], positive=True)
    if type(a) is type(b):
        return _expr_equal(a.lhs, b.lhs) and _expr_equal(a.rhs, b.rhs)
    return False


def _matrices_equal(a, b) -> bool:
    """Entry-by-entry equality of two matrices, either side possibly an unevaluated matrix
    expression (``A + B``, ``AB``)."""
    import sympy

    try:
        ma, mb = sympy.Matrix(a.doit()), sympy.Matrix(b.doit())
    except (TypeError, ValueError, sympy.ShapeError):
        return False
    return ma.shape == mb.shape and all(_expr_equal(x, y) for x, y in zip(ma, mb))


def _is_matrix(x) -> bool:
    import sympy

    return isinstance(x, (sympy.MatrixBase, sympy.MatrixExpr))


def compare(pred: str, gold: str) -> bool:
    """True when two scalar LaTeX answers denote the same value (strict)."""
    import sympy

    a, b = to_sympy(pred), to_sympy(gold)
    if a is None or b is None:
        return False
    if _is_matrix(a) and _is_matrix(b):
        return _matrices_equal(a, b)
    if isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr):
        if _expr_equal(a, b):
            return True
        return _matches_rounded_gold(a, gold)
    if isinstance(a, sympy.core.relational.Relational) and isinstance(
        b, sympy.core.relational.Relational
    ):
        return _relation_equal(a, b)
    return a == b  # sets, intervals, matrices, booleans: structural identity only


def serve(stdin=sys.stdin, stdout=sys.stdout) -> None:
    """Worker loop: one JSON request per line in, one JSON reply per line out."""
    import sympy  # noqa: F401  (import before "ready" so requests never pay for it)
    from latex2sympy2_extended import latex2sympy  # noqa: F401

    stdout.write(json.dumps({"ready": True}) + "\n")
    stdout.flush()
    for line in stdin:
        req: dict = {}
        try:
            req = json.loads(line)
            equal = compare(str(req["pred"]), str(req["gold"]))
        except Exception:  # a bad pair must not kill the worker; the answer is "not equal"
            equal = False
        stdout.write(json.dumps({"id": req.get("id"), "equal": bool(equal)}) + "\n")
        stdout.flush()


if __name__ == "__main__":
    serve()
