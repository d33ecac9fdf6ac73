"""The numeric pre-check before sympy: it reads only whitelisted closed-form constants,
says "different" only when their values are far apart, and never rejects a pair sympy
calls equal (checked against the symbolic comparer on equal pairs written by hand)."""

from __future__ import annotations

import cmath
import math

import pytest

from r1zero.grading.numeric import clearly_different, value
from r1zero.grading.symbolic import compare


@pytest.mark.parametrize(
    "latex,expected",
    [
        ("\\sqrt{60}", math.sqrt(60)),
        ("17\\pi", 17 * math.pi),
        ("\\frac{\\sqrt{3}}{12}", math.sqrt(3) / 12),
        ("2^{10}", 1024),
        ("-2^2", -4),  # the power binds tighter than the sign
        ("\\sqrt{-4}", 2j),  # principal root, as sympy: not -2j from a signed zero
        ("\\sqrt{2 - 6}", 2j),
        ("\\sqrt[3]{8}", 2),
        ("2 \\cdot 3 \\times 4 \\div 6", 4),
        ("3\\pi\\sqrt{2}", 3 * math.pi * math.sqrt(2)),
    ],
)
def test_values_by_hand(latex, expected):
    assert cmath.isclose(value(latex), expected, rel_tol=1e-12)


@pytest.mark.parametrize(
    "latex",
    [
        "x + 1",  # a variable
        "6 - 12i",  # i is a symbol to the LaTeX parser
        "0.5",  # decimals follow the tolerance rules of the symbolic comparer
        "50%",
        "1\\frac{4}{11}",  # a mixed number to the LaTeX parser
        "\\frac{270}{1}4",  # juxtaposed numbers
        "\\frac{2}{0}",
        "10^{7}",  # beyond the magnitude bound: float error could hide a difference
        "\\sin 3",
        "e^{2}",
        "2^3^2",
        "\\infty",
    ],
)
def test_unreadable_is_left_to_sympy(latex):
    assert value(latex) is None


EQUAL = [
    ("\\sqrt{8}", "2\\sqrt{2}"),
    ("\\frac{1}{\\sqrt{3}}", "\\frac{\\sqrt{3}}{3}"),
    ("(1+\\sqrt{2})^2", "3 + 2\\sqrt{2}"),
    ("\\frac{\\pi}{2} + \\frac{\\pi}{3}", "\\frac{5\\pi}{6}"),
    ("2^{-3}", "\\frac{1}{8}"),
    ("\\sqrt{2}^{2} - 2", "0"),  # cancellation to zero
    ("(\\sqrt{5} - 1)(\\sqrt{5} + 1)", "4"),
    ("\\sqrt[3]{27}", "3"),
]


@pytest.mark.parametrize("a,b", EQUAL)
def test_equal_pairs_are_never_called_different(a, b):
    assert compare(a, b)  # sympy agrees they are equal
    assert not clearly_different(a, b) and not clearly_different(b, a)


@pytest.mark.parametrize(
    "a,b",
    [("\\sqrt{60}", "\\sqrt{51}"), ("17\\pi", "12\\pi"), ("\\sqrt{-4}", "-2"),
     ("\\frac{\\sqrt{3}}{12}", "\\frac{\\sqrt{3}}{3}"), ("2^{10}", "1000")],
)
def test_far_apart_pairs_are_different(a, b):
    assert clearly_different(a, b) and not compare(a, b)
