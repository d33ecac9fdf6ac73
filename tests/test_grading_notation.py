"""Equivalence across notations a careful grader reads as the same value: counting
notation and factorials, ordinals and words counting what a number counts, the table of
text synonyms (both ways), a free parameter stated in words, and the smaller shapes found
on real outputs (a numeral's base left implicit, degrees inside a trigonometric function,
a set written in plain braces, semicolons between coordinates, a matrix expression).
Every table holds negatives: the rewrite must never make two different values equal."""

from __future__ import annotations

import pytest

from r1zero.grading import answers_equal
from r1zero.grading.notation import rewrite, strip_count_words
from r1zero.grading.synonyms import TEXT_SYNONYMS, canonical_text
from tests.helpers import check_grade, grading_params

# C(7,4) = 35, P(7,3) = 7*6*5 = 210, 35 * (1/5)^4 * (4/5)^3 = 35 * 64 / 5^7 = 2240/78125
# = 448/15625.
COUNTING = [
    ("Final Answer: C(7, 4) * ((1/5)^4) * ((4/5)^3)", "\\frac{448}{15625}", True),
    ("Final Answer: C(7, 4) * ((1/5)^4) * ((4/5)^3)", "\\frac{448}{78125}", False),
    ("The probability is $C(7,4)\\cdot(1/5)^4\\cdot(4/5)^3$.", "\\frac{448}{15625}", True),
    ("The probability is $\\binom{7}{4}\\left(\\frac15\\right)^4\\left(\\frac45\\right)^3$.", "\\frac{448}{15625}", True),
    ("The answer is ${}_7C_4 (0.2)^4 (0.8)^3$.", "\\frac{448}{15625}", True),
    ("There are $_{7}C_{3} = 35$ committees.", "35", True),
    ("There are 7C3 committees in all, so the answer is 7C3.", "35", True),
    ("There are 7C3 committees in all, so the answer is 7C3.", "21", False),
    ("So the count is $C_{7}^{3}$.", "35", True),
    ("So the count is $C^{3}_{7}$.", "35", True),  # k above, n below
    ("So the count is $C^{3}_{7}$.", "21", False),
    ("The answer is $P(7, 3)$.", "210", True),
    ("The answer is $P(7, 3)$.", "35", False),
    ("The answer is ${}^{7}P_{3}$.", "210", True),
    ("# Answer\n\n(8 choose 3)(6 choose 2)", "840", True),
    ("# Answer\n\n(8 choose 3)(6 choose 2)", "56", False),
    ("# Answer\n\n$\\frac{10!}{3!\\,7!}$", "120", True),
    ("# Answer\n\n2 * 5! * 5!", "28800", True),
    ("# Answer\n\n2 * 5! * 5!", "14400", False),
    ("# Answer\n\n$4! \\cdot 3!$", "144", True),
    # a point named C or P is not a count when it cannot be one (k > n)
    ("The vertex is $C(2, 5)$.", "10", False),
]

ORDINALS_AND_COUNT_WORDS = [
    ("The answer is $\\boxed{12^{\\mathrm{th}}\\ grade}$.\nFinal Answer: 12^{\\mathrm{th}} grade", "12", True),
    ("Final Answer: 12^{\\mathrm{th}} grade", "11", False),
    ("The answer is the 3rd term.", "3", True),
    ("She finished in $2^{nd}$ place.\nFinal Answer: $2^{nd}$", "2", True),
    ("Final Answer: 21st", "21", True),
    ("The winner is in the 12th-grade class.\n# Answer\n\n12th-grade", "12", True),
    ("# Answer\n\n10-x", "10", False),  # a minus, not a hyphenated word
    ("Final Answer: 21st", "20", False),
    ("The answer is $\\boxed{7 \\text{ nickels}}$.", "7", True),
    ("# Answer\n\n7 nickels", "7", True),
    ("# Answer\n\n14 red marbles", "14", True),
    ("# Answer\n\n14 red marbles", "15", False),
    # words that change the value are never dropped
    ("# Answer\n\n5 million", "5", False),
    ("# Answer\n\n3 more apples", "3", False),
    ("# Answer\n\n4 squared", "4", False),
    ("# Answer\n\n12 dozen eggs", "12", False),
]

# TEXT_SYNONYMS, each row both ways (response wording -> gold wording and back).
TEXT_ANSWERS = [
    ("\\boxed{\\text{irrational}}", "\\text{not a rational number}", True),
    ("\\boxed{\\text{not a rational number}}", "\\text{irrational}", True),
    ("\\boxed{\\text{an irrational number}}", "irrational", True),
    ("\\boxed{\\text{rational}}", "\\text{not a rational number}", False),
    ("\\boxed{\\text{yes}}", "\\text{True}", True),
    ("\\boxed{\\text{True}}", "yes", True),
    ("\\boxed{\\text{False}}", "yes", False),
    ("\\boxed{\\text{impossible}}", "No", True),
    ("\\boxed{\\text{No}}", "\\text{impossible}", True),
    ("\\boxed{\\text{infinitely many}}", "\\text{infinite}", True),
    ("\\boxed{\\text{infinite}}", "\\text{infinitely many}", True),
    ("\\boxed{\\text{finitely many}}", "\\text{infinitely many}", False),
    ("\\boxed{\\text{DNE}}", "\\text{does not exist}", True),
    ("\\boxed{\\text{even}}", "\\text{an even number}", True),
    ("\\boxed{\\text{odd}}", "\\text{an even number}", False),
    # a word answer opening a sentence in a box
    ("\\boxed{\\text{No, because } 91 = 7 \\cdot 13}", "\\text{No}", True),
    ("\\boxed{\\text{No, because } 91 = 7 \\cdot 13}", "\\text{Yes}", False),
    ("\\boxed{\\text{Yes, it is possible.}}", "yes", True),
]

FREE_PARAMETERS = [
    ("\\boxed{(a, 1) for any positive integer a}", "(a, n) = (a, 1)", True),
    ("\\boxed{(a, 1) \\text{ for all positive integers } a}", "(a, 1)", True),
    ("\\boxed{(a, 2) for any positive integer a}", "(a, n) = (a, 1)", False),
    ("The solutions are $x = 2k\\pi$, where $k$ is an integer.\nFinal Answer: $2k\\pi$, where k is any integer",
     "2k\\pi", True),
    ("\\boxed{f(x) = 0 \\text{ for all } x}", "f(x) = 0", True),
    ("\\boxed{f(x) = 1 \\text{ for all } x}", "f(x) = 0", False),
    ("\\boxed{(a, 1), a \\in \\mathbb{Z}^+}", "(a, 1)", True),
    ("\\boxed{x = k\\pi, k \\in \\mathbb{Z}}", "k\\pi", True),
    ("\\boxed{(a, a) \\text{ with } a \\text{ a positive integer}}", "(a, a)", True),
    ("\\boxed{(1, 1)}", "(a, 1) \\text{ for any positive integer } a", False),  # one instance
    ("\\boxed{(a, 1) \\text{ for } a \\geq 1}", "(a, 1)", True),
    ("\\boxed{(a, 1) \\text{ for } a \\geq 1}", "(1, a)", False),
]

SMALL_SHAPES = [
    # a numeral in the base the question asked for, written without its subscript
    ("The groups give 2, 5, 1, 6 in base eight.\n# Answer\n\n2516", "2516_8", True),
    ("# Answer\n\n2516", "2561_8", False),
    ("# Answer\n\n1358", "2516_8", False),  # the decimal value is not the base-8 numeral
    # degrees inside a trigonometric function: tan 80(4cos 80 - 1) = -sqrt(3)
    ("# Answer\n\n$\\frac{\\sin 80^\\circ (-1 + 4 \\cos 80^\\circ)}{\\cos 80^\\circ}$", "-\\sqrt{3}", True),
    ("# Answer\n\n$\\frac{\\sin 80^\\circ (-1 + 4 \\cos 80^\\circ)}{\\cos 80^\\circ}$", "\\sqrt{3}", False),
    ("\\boxed{\\sin 30^\\circ}", "\\frac12", True),
    ("\\boxed{30^\\circ}", "\\frac{\\pi}{6}", False),  # an angle is not its radian value
    # plain-text constants
    ("# Answer\n\n12*pi", "12\\pi", True),
    ("# Answer\n\n2*sqrt(3)", "2\\sqrt{3}", True),
    ("# Answer\n\n2*sqrt(3)", "3\\sqrt{2}", False),
    # a set in plain braces
    ("$${2, 3, 5, 7}$$", "\\{7, 5, 3, 2\\}", True),
    ("\\boxed{1},\\boxed{2},\\boxed{3}", "{1,2,3}", True),
    ("${-4, 4}$", "\\pm 4", True),
    ("${-4, 5}$", "\\pm 4", False),
    ("${1,3}$", "(1,3)", False),  # a set is not a tuple
    # semicolons between coordinates
    ("\\boxed{(1, -2, 0), (0, 0, 3)}", "(0;0;3),(1;-2;0)", True),
    ("\\boxed{(1, -2, 0), (0, 0, 4)}", "(0;0;3),(1;-2;0)", False),
    # one spelling of a subscripted label
    ("\\boxed{y_1 = 2x + 1, y_2 = x - 3}", "y_{1}=2x+1, y_{2}=x-3", True),
    ("\\boxed{y_1 = x - 3, y_2 = 2x + 1}", "y_{1}=2x+1, y_{2}=x-3", False),
    # a matrix expression is evaluated
    ("The sum is $\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$",
     "\\begin{pmatrix}2 & 2 \\\\ 3 & 5\\end{pmatrix}", True),
    ("The sum is $\\begin{pmatrix}1 & 2 \\\\ 3 & 4\\end{pmatrix} + \\begin{pmatrix}1 & 0 \\\\ 0 & 1\\end{pmatrix}$",
     "\\begin{pmatrix}2 & 2 \\\\ 3 & 4\\end{pmatrix}", False),
    # a product by juxtaposition is a product (the LaTeX parser alone reads 2(3) as 2 + 3)
    ("\\boxed{2(3)}", "6", True),
    ("\\boxed{2(3)}", "5", False),
    ("\\boxed{(4)(5)}", "9", False),
    # the exact value before "\approx", never its rounding
    ("\\boxed{\\frac{22}{7} \\approx 3.14}", "\\frac{22}{7}", True),
    ("\\boxed{\\frac{22}{7} \\approx 3.14}", "3.15", False),
]

TABLES = {
    "counting": COUNTING, "ordinals_and_count_words": ORDINALS_AND_COUNT_WORDS,
    "text_answers": TEXT_ANSWERS, "free_parameters": FREE_PARAMETERS, "small_shapes": SMALL_SHAPES,
}


@pytest.mark.parametrize("response,gold,expected,extract", grading_params(TABLES))
def test_notation_tables(response, gold, expected, extract):
    check_grade(response, gold, expected, extract)


@pytest.mark.parametrize("name", TABLES)
def test_each_table_has_positives_and_negatives(name):
    assert {e for _, _, e in TABLES[name]} == {True, False}


@pytest.mark.parametrize("key,alts", sorted(TEXT_SYNONYMS.items()))
def test_every_synonym_row_holds_both_ways(key, alts):
    for alt in alts:
        assert canonical_text(alt) == canonical_text(key)
        assert answers_equal(f"\\text{{{alt}}}", f"\\text{{{key}}}")
        assert answers_equal(f"\\text{{{key}}}", f"\\text{{{alt}}}")


def test_synonym_rows_are_disjoint():
    # one wording never belongs to two answers (the table is an equivalence relation)
    seen: dict[str, str] = {}
    for key, alts in TEXT_SYNONYMS.items():
        for w in (key, *alts):
            assert seen.setdefault(w, key) == key, f"{w!r} is listed under {seen[w]!r} and {key!r}"


@pytest.mark.parametrize(
    "text,expected",
    [
        ("C(7,4)", "(35)"),  # 7!/(4!3!) = 35
        ("P(7,3)", "(210)"),  # 7*6*5
        ("7C3 + 1", "(35) + 1"),
        ("2\\binom{4}{2}", "2(6)"),  # 2 * 6, not the digits "26"
        ("C(2,5)", "C(2,5)"),  # k > n: not a count
        ("12th", "12"),
        ("12 apples", "12"),
        ("5 million", "5 million"),
        ("(a, 1) for any positive integer a", "(a, 1)"),
        ("x^2 + 1", "x^2 + 1"),
    ],
)
def test_rewrite_by_hand(text, expected):
    assert rewrite(text) == expected


def test_count_words_need_a_number_before_them():
    assert strip_count_words("Monday morning") == "Monday morning"
    assert strip_count_words("7 nickels") == "7"
