"""Multiple choice: a letter counts only when the response commits to it. A hedge, a list
of letters, a negated letter, or a letter that is only a name in prose (players, points,
sets) is no answer. Cases written for this file in the shapes of real model outputs."""

from __future__ import annotations

import pytest

from r1zero.grading.choice import extract_choice, gold_choice
from tests.helpers import check_grade, grading_params

_LONG = (
    "We compare the two strategies move by move. Player A picks a coefficient first and "
    "player B answers with the opposite sign, so every pair of moves cancels out. "
)

COMMITTED = [
    ("\\boxed{C}", "C", True),
    ("So the answer is $\\boxed{\\textbf{(D)}}$.", "D", True),
    ("<answer>B</answer>", "B", True),
    ("D. It cannot be A or B because the sum is odd.", "D", True),
    ("After checking each option, the answer is (C).", "C", True),
    ("After checking each option, the answer is (C).", "A", False),
    (_LONG + "Comparing the options, **B** is correct.", "B", True),
    (_LONG + "Comparing the options, option E is the answer.", "E", True),
    (_LONG + "So I would say it's D.", "D", True),
    (_LONG + "After weighing both, I'm confident it's (C).", "C", True),
    (_LONG + "The options A and B fail, so it is definitely not A, B, or C. So D.", "D", True),
    (_LONG + "The answer could be A or B.", "B", False),
    (_LONG + "Thus the correct choice is:\n(B) 12", "B", True),
    ("C", "C", True),
    ("(A)", "A", True),
]

NOT_COMMITTED = [
    # letters that are only names in prose
    (_LONG + "Player A wins regardless of B's responses.\n\nThe final answer is:", "B", False),
    (_LONG + "Player A wins regardless of B's responses.\n\nThe final answer is:", "A", False),
    (_LONG + "Hence the line through A and B meets the circle at two points.", "B", False),
    (_LONG + "The set B contains every element of A, and nothing else remains.", "A", False),
    # an evaluation of the options that never chooses
    ("Let's evaluate the options.\n(A) 12 - too small\n(B) 15 - fits\n(C) 18 - too big", "C", False),
    ("Let's evaluate the options.\n(A) 12 - too small\n(B) 15 - fits\n(C) 18 - too big\nSo the answer is B.", "C", False),
    # hedges and lists
    (_LONG + "It must be A or B or C or D or E.", "B", False),
    ("The answer is (A) or (C).", "A", False),
    ("The answer is A, B, or D.", "D", False),
    ("\\boxed{A \\text{ or } B}", "A", False),
    ("B or C", "B", False),
    # negated letters
    ("The answer is not B.", "B", False),
    (_LONG + "It cannot be C, so it is D.", "C", False),
]

# The committed letter wins over letters named along the way.
LAST_WORD = [
    (_LONG + "At first I thought A. After checking again, the answer is E.", "E", True),
    (_LONG + "At first I thought A. After checking again, the answer is E.", "A", False),
    ("The answer is surely C; it can't be A or D.", "C", True),
    ("The answer is surely C; it can't be A or D.", "D", False),
]

TABLES = {"committed": COMMITTED, "not_committed": NOT_COMMITTED, "last_word": LAST_WORD}


@pytest.mark.parametrize("response,gold,expected,extract", grading_params(TABLES))
def test_choice_tables(response, gold, expected, extract):
    check_grade(response, gold, expected, extract)


@pytest.mark.parametrize(
    "gold,letter",
    [("B", "B"), ("(B)", "B"), ("\\text{(C)}", "C"), ("(D) Alina", "D"), ("C Cecile", "C"),
     ("A Peter\nCelina", "A"), ("Alina", None), ("A tree", None), ("12", None)],
)
def test_gold_choice(gold, letter):
    assert gold_choice(gold) == letter


def test_a_name_in_prose_is_no_answer():
    assert extract_choice(_LONG + "Player A wins regardless of B's responses.") is None


def test_a_hedge_in_a_short_response_is_returned_whole():
    # returned as written so that it is graded wrong, not silently dropped
    assert extract_choice("A or B") == "A or B"
