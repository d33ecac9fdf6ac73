"""A fast numeric *rejection* of two closed-form constants, before the sympy worker:
``\\sqrt{60}`` and ``\\sqrt{51}``, ``17\\pi`` and ``12\\pi`` differ by far more than
rounding, so no parser and no process round trip is needed to say so.

It only ever says "different": equal-looking values, anything it cannot read (variables,
functions, decimals, whose tolerance rules live in :mod:`r1zero.grading.symbolic`), and
any evaluation that could lose the difference to floating point (huge intermediate
values, division by zero, overflow) go to sympy as before. The grammar is a whitelist:
numbers, ``+ - * / ^``, ``\\cdot \\times \\div``, ``\\frac``, ``\\sqrt`` (with an index),
``\\pi``, brackets, and implicit multiplication (``2\\sqrt{3}``, ``3\\pi``). Letters are
variables to the LaTeX parser (``i`` included), so they are left to sympy.
"""

from __future__ import annotations

import cmath
import math
import re

# Values are compared at this relative (and absolute, near 0) distance. With every
# intermediate value below MAX_MAGNITUDE and at most MAX_CHARS of input, accumulated float
# error stays below 200 ops * 1e6 * 2.2e-16 ~ 4e-8, far under SEPARATION: an equal pair is
# never called different.
SEPARATION = 1e-6
MAX_MAGNITUDE = 1e6
MAX_CHARS = 200

_TOKEN_RE = re.compile(r"\s*(\d+|\\[A-Za-z]+|[-+*/^(){}\[\]])")
_OPS = {"\\cdot": "*", "\\times": "*", "\\div": "/", "\\left": None, "\\right": None}


class _Unreadable(Exception):
    """Outside the whitelist, or numerically unsafe: leave the pair to sympy."""


def _tokens(s: str) -> list[str]:
    out, pos = [], 0
    while pos < len(s):
        m = _TOKEN_RE.match(s, pos)
        if m is None:
            if s[pos:].strip():
                raise _Unreadable(s[pos:])
            break
        tok = _OPS.get(m.group(1), m.group(1))
        if tok is not None:
            out.append(tok)
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over the token list; every value is checked for magnitude."""

    def __init__(self, tokens: list[str]) -> None:
        self.t, self.k = tokens, 0

    def peek(self) -> str | None:
        return self.t[self.k] if self.k < len(self.t) else None

    def take(self, want: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (want is not None and tok != want):
            raise _Unreadable(f"expected {want!r}")
        self.k += 1
        return tok

    def checked(self, v: complex) -> complex:
        if not (cmath.isfinite(v) and abs(v) <= MAX_MAGNITUDE):
            raise _Unreadable("magnitude")
        return v

    def expr(self) -> complex:
        v = self.term()
        while self.peek() in ("+", "-"):
            v = self.checked(v + self.term() if self.take() == "+" else v - self.term())
        return v

    def term(self) -> complex:
        v = self.signed()
        while True:
            tok = self.peek()
            if tok in ("*", "/"):
                self.take()
                rhs = self.signed()
                if tok == "/" and rhs == 0:
                    raise _Unreadable("division by zero")
                v = self.checked(v * rhs if tok == "*" else v / rhs)
            elif tok in ("(", "\\pi", "\\sqrt", "\\frac"):
                if tok == "\\frac" and self.t[self.k - 1][0].isdigit():
                    raise _Unreadable("mixed number")  # "1\frac{4}{11}" is 1 + 4/11 to the parser
                v = self.checked(v * self.power())  # implicit product: 2\sqrt{3}, 3\pi
            elif tok is not None and tok[0].isdigit():
                raise _Unreadable("juxtaposed number")  # "\frac{270}{1}4": leave it to the parser
            else:
                return v

    def signed(self) -> complex:
        if self.peek() in ("-", "+"):
            return -self.signed() if self.take() == "-" else self.signed()
        return self.power()

    def power(self) -> complex:
        base = self.atom()
        if self.peek() != "^":
            return base
        self.take()
        exponent = self.group() if self.peek() == "{" else self.atom()
        if base == 0 and exponent.real <= 0:
            raise _Unreadable("0 to a non-positive power")
        try:
            return self.checked(_principal(base) ** exponent)
        except (OverflowError, ZeroDivisionError):
            raise _Unreadable("power") from None

    def group(self) -> complex:
        self.take("{")
        v = self.expr()
        self.take("}")
        return v

    def atom(self) -> complex:
        tok = self.take()
        if tok[0].isdigit():
            return self.checked(complex(int(tok)))
        if tok == "\\pi":
            return complex(math.pi)
        if tok in ("(", "{"):
            v = self.expr()
            self.take(")" if tok == "(" else "}")
            return v
        if tok == "\\frac":
            num, den = self.group(), self.group()
            if den == 0:
                raise _Unreadable("division by zero")
            return self.checked(num / den)
        if tok == "\\sqrt":
            index = None
            if self.peek() == "[":
                self.take("[")
                index = self.expr()
                self.take("]")
            radicand = self.group() if self.peek() == "{" else self.atom()
            if index == 0:
                raise _Unreadable("0th root")
            radicand = _principal(radicand)
            return self.checked(cmath.sqrt(radicand) if index is None else radicand ** (1 / index))
        raise _Unreadable(tok)


def _principal(v: complex) -> complex:
    """``v`` with a negative zero imaginary part made positive: cmath puts ``sqrt(-4-0j)``
    on the other side of the branch cut (-2j), sympy's principal root is 2i."""
    return complex(v.real, 0.0) if v.imag == 0 else v


def value(latex: str) -> complex | None:
    """The value of a whitelisted closed-form constant, or None when it is not one."""
    if len(latex) > MAX_CHARS or "." in latex or "%" in latex:
        return None
    try:
        p = _Parser(_tokens(latex))
        v = p.expr()
        return v if p.peek() is None else None
    except (_Unreadable, RecursionError, ValueError, ZeroDivisionError, OverflowError):
        return None


def clearly_different(a: str, b: str) -> bool:
    """True only when both are readable constants whose values differ by more than
    ``SEPARATION`` (relative, with an absolute floor of the same size near 0)."""
    va = value(a)
    if va is None:
        return False
    vb = value(b)
    if vb is None:
        return False
    return abs(va - vb) > SEPARATION * max(1.0, abs(va), abs(vb))
