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

import json
import random
import re
import sys

# Relative tolerance for two exact-valued numbers evaluated to 30 digits: only numerical
# noise is forgiven, never rounding (1e-6 would already accept 0.333333 for 1/3).
REL_TOL = 1e-9
ABS_TOL = 1e-12
EVAL_DIGITS = 30
# Pow towers with exponents beyond this are compared structurally only: evaluating
# 9^{9^{9^9}} would never finish.
MAX_POW_EXPONENT = 10_000
_GOLD_DECIMAL_RE = re.compile(r"^-?(\d+)\.(\d+)$")


def _fix_latex(s: str) -> str:
    """Shorthands the parser rejects: ``\\sqrt8``, ``\\frac12``, Python ``**``."""
    s = re.sub(r"\\sqrt(\d|[A-Za-z](?![A-Za-z]))", r"\\sqrt{\1}", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"(?<!\\)%", r"\\%", s)
    return s.replace("**", "^")


def to_sympy(latex: str):
    """Parse LaTeX into a sympy object, or None when it does not parse as a whole."""
    from latex2sympy2_extended import latex2sympy

    try:
        return latex2sympy(_fix_latex(latex))
    except Exception:  # the parser raises many exception types on malformed model text
        return None


def _too_big(expr) -> bool:
    """True when numeric evaluation could explode (huge exponents, towers)."""
    import sympy

    for node in sympy.preorder_traversal(expr):
        if isinstance(node, sympy.Pow):
            e = node.exp
            if isinstance(e, sympy.Pow) or (e.is_Number and abs(e) > MAX_POW_EXPONENT):
                return True
        if isinstance(node, sympy.factorial) and node.args[0].is_Number and node.args[0] > 1000:
            return True
    return False


def _num_close(a, b) -> bool:
    """Numeric equality of two closed-form constants at ``REL_TOL``."""
    import sympy

    va, vb = sympy.N(a, EVAL_DIGITS), sympy.N(b, EVAL_DIGITS)
    if not (va.is_number and vb.is_number) or va.has(sympy.zoo, sympy.nan):
        return False
    if va.has(sympy.oo, -sympy.oo) or vb.has(sympy.oo, -sympy.oo):
        return bool(va == vb)
    diff = abs(complex(va) - complex(vb))
    scale = max(abs(complex(va)), abs(complex(vb)))
    return diff <= max(REL_TOL * scale, ABS_TOL)


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
    if not value.is_real:
        return False
    return abs(float(value) - float(gold_text)) <= 0.5 * 10 ** (-places) + 1e-15


def _random_points_agree(a, b, symbols, trials: int = 4) -> bool:
    """Both sides agree at several random points (catches identities simplify misses)."""
    import sympy

    rng = random.Random(0)  # deterministic: the same pair always gets the same verdict
    for _ in range(trials):
        subs = {s: sympy.Rational(rng.randint(51, 250), 97) for s in symbols}
        if not _num_close(a.subs(subs), b.subs(subs)):
            return False
    return True


def _expr_equal(a, b) -> bool:
    """Equality of two sympy expressions: exact for rationals, tight numeric tolerance for
    other constants, simplify + random points when free symbols are present."""
    import sympy

    if a == b:
        return True
    if _too_big(a) or _too_big(b):
        return False
    symbols = a.free_symbols | b.free_symbols
    if not symbols:
        if a.is_Rational and b.is_Rational:
            return False  # exact rationals already compared by a == b above
        return _num_close(a, b)
    # No variable renaming (x+1 is not y+1), but an identity may eliminate a variable
    # (sin^2 x + cos^2 x is 1): the difference itself must vanish.
    if sympy.simplify(a - b) == 0:
        return True
    return _random_points_agree(a, b, sorted(symbols, key=str))


def _relation_equal(a, b) -> bool:
    """Equations match when ``lhs - rhs`` agree up to sign; other relations structurally."""
    import sympy

    if isinstance(a, sympy.Eq) and isinstance(b, sympy.Eq):
        da, db = a.lhs - a.rhs, b.lhs - b.rhs
        return _expr_equal(da, db) or _expr_equal(da, -db)
    if type(a) is type(b):
        return _expr_equal(a.lhs, b.lhs) and _expr_equal(a.rhs, b.rhs)
    return a.reversed == b if hasattr(a, "reversed") else False


def compare(pred: str, gold: str) -> bool:
    """True when two scalar LaTeX answers denote the same value (strict)."""
    import sympy

    a, b = to_sympy(pred), to_sympy(gold)
    if a is None or b is None:
        return False
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
