"""A whitelist parser for the arithmetic equations models write in Countdown answers.

Model text is never ``eval``-ed. A tokenizer accepts only digits, ``+ - * /``, their
unicode forms (``− × ÷``), parentheses and spaces; a recursive-descent parser evaluates
over exact `Fraction`s, so ``(1/49)*49`` is exactly 1 and no float rounding can turn a
wrong equation into a right one. Size, literal length and nesting are bounded, and powers
are rejected, so adversarial answers such as ``9**9**9**9`` fail fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

MAX_CHARS = 200
"""Longest expression accepted (a 6-number Countdown equation needs ~40 characters)."""
MAX_DIGITS = 6
"""Longest integer literal: bounds the size of every intermediate value."""
MAX_DEPTH = 50
"""Deepest nesting of parentheses / unary signs; keeps recursion far from Python's limit."""

# Unicode operators that models (and people) write for the ASCII ones.
_CANONICAL = {"−": "-", "–": "-", "×": "*", "·": "*", "÷": "/"}
_OPERATORS = set("+-*/()")
_SPACES = set(" \t\r\n")


class ExpressionError(ValueError):
    """The text is not a well-formed, bounded arithmetic expression."""


@dataclass(frozen=True)
class Evaluated:
    """An expression's exact value and the integer literals it used, in order."""

    value: Fraction
    numbers: tuple[int, ...]


def evaluate(text: str) -> Evaluated:
    """Parse and evaluate ``text`` exactly; raises `ExpressionError` on anything else."""
    if len(text) > MAX_CHARS:
        raise ExpressionError(f"expression longer than {MAX_CHARS} characters")
    parser = _Parser(tokenize(text))
    value = parser.expression(depth=0)
    if parser.peek() is not None:
        raise ExpressionError(f"unexpected {parser.peek()!r} after the expression")
    return Evaluated(value, tuple(parser.numbers))


def tokenize(text: str) -> list[str]:
    """Split into integer literals and single-character operators (whitelist only)."""
    if "**" in text or "^" in text:
        raise ExpressionError("powers are not allowed")
    tokens: list[str] = []
    i = 0
    while i < len(text):
        ch = _CANONICAL.get(text[i], text[i])
        if ch in _SPACES:
            i += 1
        elif ch in _OPERATORS:
            tokens.append(ch)
            i += 1
        elif "0" <= ch <= "9":  # ASCII only: str.isdigit() also accepts '²' and friends
            j = i
            while j < len(text) and "0" <= text[j] <= "9":
                j += 1
            if j - i > MAX_DIGITS:
                raise ExpressionError(f"number literal longer than {MAX_DIGITS} digits")
            tokens.append(text[i:j])
            i = j
        else:
            raise ExpressionError(f"character {text[i]!r} is not allowed")
    if not tokens:
        raise ExpressionError("empty expression")
    return tokens


class _Parser:
    """Recursive descent over the grammar

        expression := term (("+" | "-") term)*
        term       := factor (("*" | "/") factor)*
        factor     := ("+" | "-") factor | INTEGER | "(" expression ")"
    """

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.numbers: list[int] = []

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise ExpressionError("expression ends too early")
        self.pos += 1
        return token

    def expression(self, depth: int) -> Fraction:
        value = self.term(depth)
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term(depth)
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self, depth: int) -> Fraction:
        value = self.factor(depth)
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.factor(depth)
            if op == "*":
                value *= rhs
            elif rhs == 0:
                raise ExpressionError("division by zero")
            else:
                value /= rhs
        return value

    def factor(self, depth: int) -> Fraction:
        if depth > MAX_DEPTH:
            raise ExpressionError(f"nesting deeper than {MAX_DEPTH}")
        token = self.take()
        if token in ("+", "-"):
            value = self.factor(depth + 1)
            return value if token == "+" else -value
        if token == "(":
            value = self.expression(depth + 1)
            if self.take() != ")":
                raise ExpressionError("missing ')'")
            return value
        if token.isdigit():
            self.numbers.append(int(token))
            return Fraction(int(token))
        raise ExpressionError(f"unexpected {token!r}")
