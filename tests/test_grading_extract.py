"""Extraction tests: last brace-matched box, r1 answer tags, opt-in fallbacks, and the
reasons ``grade`` reports when there is no usable answer."""

from __future__ import annotations

import pytest

from r1zero.grading import extract_answer, grade

BOXED = [
    ("The answer is \\boxed{5}.", "5"),
    ("\\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{\\frac{\\sqrt{3}}{2}} done", "\\frac{\\sqrt{3}}{2}"),
    ("$\\boxed{\\{1,2\\}}$", "\\{1,2\\}"),
    ("\\fbox{7}", "7"),
    ("\\boxed 5", "5"),
    ("\\boxed 5$.", "5"),
    ("\\boxed{x^{2}}", "x^{2}"),
    ("\\boxed{}", ""),
    ("\\boxed{\\text{(B)}}", "\\text{(B)}"),
    ("so \\boxed{12} and later \\fbox{13}", "13"),
]
NO_BOX = [
    "The answer is 5.",
    "\\boxed{5",  # truncated: an unclosed final box is no answer
    "\\boxed{1} and then \\boxed{2",  # the last box is unfinished: do not fall back to 1
    "\\boxedx{5}",
    "",
    "\\boxed",
]


@pytest.mark.parametrize("response,expected", BOXED)
def test_extract_boxed(response, expected):
    assert extract_answer(response) == expected


@pytest.mark.parametrize("response", NO_BOX)
def test_extract_boxed_none(response):
    assert extract_answer(response) is None


R1 = [
    ("<think>hmm</think> <answer>5</answer>", "5"),
    ("<think>hmm</think>\n\n<answer> 5 </answer>", "5"),
    ("<think>a</think><answer>$\\frac{1}{2}$</answer>", "\\frac{1}{2}"),
    ("<think>a</think> <answer>so \\boxed{7} ok</answer>", "7"),
    ("<think>a</think> <answer>x</answer> tail", "x"),
]
R1_BAD = [
    "<think>hmm</think> 5",
    "<answer>5</answer>",  # no </think>
    "<think>hmm</think> text <answer>5</answer>",  # </think> must be followed by <answer>
    "<think>hmm</think> <answer>5",  # unclosed
    "\\boxed{5}",
]


@pytest.mark.parametrize("response,expected", R1)
def test_extract_r1(response, expected):
    assert extract_answer(response, answer_format="r1") == expected


@pytest.mark.parametrize("response", R1_BAD)
def test_r1_missing_tags_is_format_error(response):
    assert extract_answer(response, answer_format="r1") is None
    v = grade(response, "5", answer_format="r1")
    assert (v.correct, v.reason) == (False, "format_error")


FALLBACK = [
    ("Thus the answer is 42.", "42"),
    ("Final answer: 3/4", "3/4"),
    ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
    ("we get 3 apples and 7 pears", "7"),
    ("total 1,000", "1,000"),
    ("no numbers here", None),
]


@pytest.mark.parametrize("response,expected", FALLBACK)
def test_fallbacks(response, expected):
    assert extract_answer(response, fallbacks=True) == expected


def test_fallbacks_are_off_by_default():
    assert extract_answer("The answer is 42.") is None
    assert grade("The answer is 42.", "42").reason == "no_answer"
    assert grade("The answer is 42.", "42", fallbacks=True).correct


def test_box_beats_fallback():
    assert extract_answer("the answer is 3 so \\boxed{4}", fallbacks=True) == "4"


@pytest.mark.parametrize(
    "response,gold,correct,reason",
    [
        ("\\boxed{5}", "5", True, "correct"),
        ("\\boxed{6}", "5", False, "wrong_answer"),
        ("five", "5", False, "no_answer"),
        ("\\boxed{" + "1" * 2000 + "}", "5", False, "too_long"),
        ("\\boxed{" + "x" * 5000 + "}", "5", False, "too_long"),
        ("\\boxed{5}", ["4", "5"], True, "correct"),
        ("\\boxed{6}", ["4", "5"], False, "wrong_answer"),
        ("\\boxed{5}", 5, True, "correct"),
        (None, "5", False, "bad_input"),
        ("\\boxed{5}", None, False, "bad_input"),
        ("\\boxed{5}", [], False, "bad_input"),
        ("\\boxed{5}", {"a": 1}, False, "bad_input"),
    ],
)
def test_grade_reasons(response, gold, correct, reason):
    v = grade(response, gold)
    assert (v.correct, v.reason) == (correct, reason)


def test_grade_unknown_format_is_bad_input():
    assert grade("\\boxed{5}", "5", answer_format="xml").reason == "bad_input"


def test_verdict_is_frozen():
    v = grade("\\boxed{5}", "5")
    assert v.extracted == "5"
    with pytest.raises(AttributeError):
        v.correct = False  # type: ignore[misc]
