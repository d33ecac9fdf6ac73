"""``auto`` extraction reads the answer a response *commits to*: one table per rule of the
ordered list in docs/grading.md, each with positives (the committed answer is read and
graded right) and negatives (the wrong commitment, an earlier value, or a phrase that
commits to nothing must not be graded right). All cases are written for this file in the
shapes real model outputs take (PRM800K steps, GSM8K few-shot, lm-eval's "Final Answer:",
R1's <think>, olympiad prose)."""

from __future__ import annotations

import pytest

from r1zero.grading import extract_answer, grade
from tests.helpers import check_grade, grading_params

_PRM = "Let me add the two parts.\n3 + 4 = 7, so the total is 7.\n"

# Rule 0: only the committed part of the text is read.
COMMITTED_PART = [
    # R1: the thinking is scratch work; the answer comes after </think>
    ("<think>\nMaybe 12? No: 3 * 5 = 15.\n</think>\n\nThe area is 15.", "15", True),
    ("<think>\nMaybe 12? No: 3 * 5 = 15.\n</think>\n\nThe area is 15.", "12", False),
    ("<think>\nthe answer is 9\n</think>\nSo the answer is $\\boxed{8}$.", "9", False),
    # thinking that never closes has committed to nothing (a truncated R1 response)
    ("<think>\nLet me see, 6 * 7 = 42, so the answer is 42", "42", False),
    ("<think>\nfirst 2+2=4 </think> <answer>4</answer>", "4", True),
    # a hallucinated next turn after an end-of-turn token is not the answer
    ("We get $x = 4$.<|im_end|>\n<|im_start|>user\nNow solve 2x = 18. The answer is 9", "4", True),
    ("We get $x = 4$.<|im_end|>\n<|im_start|>user\nNow solve 2x = 18. The answer is 9", "9", False),
    ("<|im_start|>assistant\nThe answer is 6.<|im_end|>", "6", True),
    ("The answer is 11.</s>[INST] Next: what is 5+7? [/INST] The answer is 12.", "12", False),
    # GSM8K calculator notes are hidden tool calls, not text the model states
    ("She pays 3*4 = $<<3*4=12>>12 per week.\nA: 12", "12", True),
    ("Cost: 2*9 = <<2*9=18>>18\nTotal with tax: 18+2 = <<18+2=20>>20\n#### 20", "18", False),
]

# Rule 1a: a box is a strong commitment; an empty box is the instruction echoed.
BOXES = [
    ("Please put your final answer within \\boxed{}.\n\nThe sum is 9, so \\boxed{9}.", "9", True),
    ("So the area is \\boxed{24}. Please reason step by step and put it in \\boxed{}.", "24", True),
    ("So the area is \\boxed{24}. Please reason step by step and put it in \\boxed{}.", "12", False),
    ("First guess \\boxed{3}, then corrected: \\boxed{5}.", "3", False),
    ("So $x = \\boxed{5}$.\n\nThe final answer is $\\boxed{}$.", "5", True),
    ("So $x = \\boxed{5}$.\n\nThe final answer is $\\boxed{}$.", "\\boxed{}", False),
]

# Rule 1b: format markers — the answer follows by the format's own rule.
MARKERS = [
    # PRM800K: "# Answer" on its own line, the answer in the next paragraph
    (_PRM + "# Answer\n\n7", "7", True),
    (_PRM + "# Answer\n\n8", "7", False),
    ("I simplify to get $\\frac{6}{8}$.\n# Answer\n\n\\frac{3}{4}", "0.75", True),
    ("I simplify to get $\\frac{6}{8}$.\n# Answer\n\n$\\frac{3}{4}$", "\\frac34", True),
    ("The roots are x = 2 and x = 5.\n# Answer\n\n2, 5", "5, 2", True),
    ("The roots are x = 2 and x = 5.\n# Answer\n\n2, 5", "2", False),
    ("Tina ends with 19 stickers.\n\n# Answer\n\nTina has 19 stickers left.", "19", True),
    ("Tina ends with 19 stickers.\n\n# Answer\n\nTina has 19 stickers left.", "9", False),
    # an earlier box is intermediate work when an answer section follows
    ("So one side is $\\boxed{4}$ cm.\nThe perimeter is 16 cm.\n# Answer\n\n16", "16", True),
    ("So one side is $\\boxed{4}$ cm.\nThe perimeter is 16 cm.\n# Answer\n\n16", "4", False),
    ("## Final Answer\n\n$x = -3$", "-3", True),
    ("**Final Answer**\n\\[\n\\boxed{28}\n\\]", "28", True),
    # an empty answer slot: nothing before it is read in its place
    ("We want $\\sin^2 30^\\circ + \\cos^2 30^\\circ$.\nFinal Answer: I could not finish the computation.", "1", False),
    # GSM8K: "A: n" closes a few-shot answer, "#### n" a reference solution
    ("He buys 4 packs for $5 each, so he spends $20 and has $80 left.\nA: 80", "80", True),
    ("He buys 4 packs for $5 each, so he spends $20 and has $80 left.\nA: 80", "20", False),
    ("Each box holds 12 eggs, so 5 boxes hold 60 eggs.\nA: She has 60 eggs.", "60", True),
    ("The total is 7 + 8 = 15 marbles.\n#### 15", "15", True),
    ("The total is 7 + 8 = 15 marbles.\n#### 15", "8", False),
    # "A:" listing options or points is not GSM8K's answer line
    ("The points are\nA: (1, 2)\nB: (3, 4)\nC: (5, 6)", "(1, 2)", False),
]

# Rule 1c: answer phrases, the last strong one wins (over an earlier box too).
PHRASES = [
    (("$10,200 \\cdot 0.05/2 = \\boxed{255}$ interest, so she has $10,455.\n"
      "Final Answer: The final answer is $10,455$. I hope it is correct."), "10455", True),
    (("$10,200 \\cdot 0.05/2 = \\boxed{255}$ interest, so she has $10,455.\n"
      "Final Answer: The final answer is $10,455$. I hope it is correct."), "255", False),
    ("So the answer is $\\boxed{12}$.\nFinal Answer: 12", "12", True),
    ("We tried $x=2$ first.\nThe answer is: $x = 3$.", "3", True),
    ("We tried $x=2$ first.\nThe answer is: $x = 3$.", "2", False),
    # phrases that commit to nothing do not hide the real answer
    ("I will write the final answer in a clear and complete sentence.\n# Answer\n\nThere are 14 cars.", "14", True),
    ("The final answer should be a whole number. After dividing we get $\\boxed{6}$.", "6", True),
    ("\\boxed{6}\n\nI checked it twice, so I am confident my answer is correct.", "6", True),
    ("\\boxed{6}\n\nThe answer is the same if we start from the other corner.", "6", True),
    ("\\boxed{6}\n\nThe answer is in the box above; no other value works.", "6", True),
    ("Let me state the final answer clearly: $y = 10$.", "10", True),
    ("The final answer within \\boxed{} is 42.", "42", True),
    ("The final answer within \\boxed{} is 42.", "4", False),
    ("**Answer**: 42", "42", True),
    ("Ans: 42", "42", True),
    ("Ans: 42", "24", False),
    # a phrase introducing a check is not the answer
    ("So the result is $\\boxed{7}$.\n\nLet me verify the answer: $7 + 3 = 10$.", "7", True),
    ("So the result is $\\boxed{7}$.\n\nLet me verify the answer: $7 + 3 = 10$.", "10", False),
    ("Multiplying out, $i^2 = -1$ cancels.\nThe answer is i.", "i", True),
    ("Final answer - 12", "12", True),  # a dash after a bare phrase separates
    ("Final answer - 12", "-12", False),
    ("Answer: Let's think step by step. Each row has 6 seats and there are 9 rows, so 54.", "54", True),
    ("Answer: Let's think step by step. Each row has 6 seats and there are 9 rows, so 54.", "6", False),
    # a word answer opening the fragment, then its reason
    ("The answer is no, since 91 = 7 * 13 is not prime.", "No", True),
    ("The answer is no, since 91 = 7 * 13 is not prime.", "91", False),
]

# Rule 1d: postfix phrases — the value stands before "is the final answer".
POSTFIX = [
    ("Adding the cases gives 12.\n12 is the final answer.", "12", True),
    ("Adding the cases gives 12.\n13 is the final answer.", "12", False),
    ("Simplifying, this gives me $\\frac{2}{5}$ as the final answer.", "0.4", True),
    ("Simplifying, this gives me $\\frac{2}{5}$ as the final answer.", "2", False),
    ("After checking, $\\boxed{7}$ is my final answer.", "7", True),
    # "This is the final answer" points back at the sentence before
    ("Dividing both by 25, I get $\\frac{27}{8}$.\nThis is the final answer.", "\\frac{27}{8}", True),
    ("Dividing both by 25, I get $\\frac{27}{8}$.\nThis is the final answer.", "25", False),
]

# Rule 1e: currency "$" is not a math delimiter.
CURRENCY = [
    ("He had $1,000 and then spent $200 on a bike and $300 on a phone.\nA: 500", "500", True),
    ("He had $1,000 and then spent $200 on a bike and $300 on a phone.\nA: 500", "1000", False),
    (("The shirt costs $25 and the hat costs $15, so together they cost $40 in all. "
      "That is what she pays at the register today."), "40", True),
    (("Tickets are $4.00 + $2.50 = $6.50 per person, so for two people it is $13.00 in total, "
      "which is the amount on the receipt."), "13", True),
    (("Tickets are $4.00 + $2.50 = $6.50 per person, so for two people it is $13.00 in total, "
      "which is the amount on the receipt."), "4", False),
    # real math spans that open with a digit stay math
    (("From the table we read off the value, and after simplifying the sum we find that "
      "the total is $5 \\times 6 \\times 4 = 120$."), "120", True),
]

# Rule 1f: chains and assignments reduce to the value; a lone variable is a name.
CHAINS_AND_NAMES = [
    ("# Answer\n\n$f^{-1}\\left(\\frac{1}{5}\\right)=9$", "9", True),
    ("# Answer\n\n$f^{-1}\\left(\\frac{1}{5}\\right)=9$", "\\frac15", False),
    ("Final Answer: $g(f(2)) = g(5) = 11$", "11", True),
    ("Final Answer: $\\sqrt{12 \\times 3} = \\sqrt{36} = 6$", "6", True),
    ("Final Answer: $\\sqrt{12 \\times 3} = \\sqrt{36} = 6$", "36", False),
    ("Final Answer: $\\text{Area} = \\frac{1}{2} \\cdot 6 \\cdot 8 = 24$", "24", True),
    ("Final Answer: $\\text{Area} = \\frac{1}{2} \\cdot 6 \\cdot 8 = 24$", "\\frac12", False),
    ("Final Answer: The largest $n$ is 34.", "34", True),
    ("Final Answer: The largest $n$ is 34.", "n", False),
    ("Final Answer: The area of $ABCD$ is 48.", "48", True),
    ("The answer is $k$, which equals 17 here.", "17", True),
    ("Final Answer: The number of solutions of $f(x) = 0$ is 3.", "3", True),
    ("Final Answer: The number of solutions of $f(x) = 0$ is 3.", "0", False),
    # an equation in an unknown is not its value
    ("The final answer is $3x = 12$.", "4", False),
    ("The final answer is $9 = 5a + b$.", "9", False),
]

# Rules 4-6: the fallbacks for responses that commit nowhere.
FALLBACKS = [
    (("We place the first ball in any of the boxes and continue until all are used up, and "
      "therefore the count works out. Therefore, there are 12 arrangements in all. I hope it is correct."), "12", True),
    (("We find $d = \\frac{90}{n}$ for each divisor. Thus the number of sequences is 12 in total. "
      "I hope it is correct."), "12", True),
    (("Thus we still need $a$. Working it out, we eventually get $a = 5$ after checking all the "
      "other possible values carefully one by one."), "5", True),
    (("Thus we still need $a$. Working it out, we eventually get $a = 5$ after checking all the "
      "other possible values carefully one by one."), "a", False),
]

TABLES = {
    "committed_part": COMMITTED_PART, "boxes": BOXES, "markers": MARKERS, "phrases": PHRASES,
    "postfix": POSTFIX, "currency": CURRENCY, "chains_and_names": CHAINS_AND_NAMES,
    "fallbacks": FALLBACKS,
}


@pytest.mark.parametrize("response,gold,expected,extract", grading_params(TABLES))
def test_commitment_tables(response, gold, expected, extract):
    check_grade(response, gold, expected, extract)


@pytest.mark.parametrize("name", TABLES)
def test_each_rule_has_positives_and_negatives(name):
    verdicts = {e for _, _, e in TABLES[name]}
    assert verdicts == {True, False}, f"table {name} needs both positives and negatives"


def test_unclosed_thinking_is_no_answer():
    v = grade("<think>\n2 + 2 = 4, so 4", "4", extract="auto")
    assert (v.correct, v.reason) == (False, "no_answer")


def test_empty_text_after_think_is_no_answer():
    assert extract_answer("<think>3 + 4 = 7</think>\n\n", mode="auto") is None


def test_empty_answer_slot_is_no_answer():
    # the values before an empty "Final Answer:" slot are work, not the answer
    v = grade("We need $2^{10} = 1024$.\nFinal Answer: (none)", "1024", extract="auto")
    assert not v.correct


@pytest.mark.parametrize(
    "response,answer",
    [
        ("Rewrite it.\n# Answer\n\n216", "216"),
        ("Step one gives $x=2$.\nA: 36", "36"),
        ("so 12 is the final answer.", "12"),
        ("The final answer is $10,455$. I hope it is correct.", "10,455"),
    ],
)
def test_extracted_text_is_the_committed_answer(response, answer):
    assert extract_answer(response, mode="auto") == answer


# Long runs of spaces around the markers once made nested optional-space patterns
# backtrack polynomially; every shape must stay linear (well under a second at 15 kB).
_RUNS = [
    "answer" + " " * 15_000 + "x",
    "# answer" + " \t" * 7_000 + "x",
    "final answer **" + " " * 15_000 + "y",
    "A:" + " " * 15_000,
    "Therefore" + " " * 15_000 + "5",
    "$5" + " " * 15_000 + "$",
    "x is the final answer" * 700,
    "no" + " " * 15_000 + "x",
    "A or " * 3_000,
    "I hope it is correct" + " " * 15_000,
    "A" + " " * 15_000 + "x",
    "A: 1\n" * 3_000,
    "<answer>the answer is" + " " * 15_000 + "x</answer>",
]


@pytest.mark.parametrize("response", _RUNS, ids=range(len(_RUNS)))
@pytest.mark.parametrize("gold", ["5", "B"])
def test_long_runs_are_linear(response, gold):
    import time

    start = time.perf_counter()
    grade(response, gold, extract="auto", timeout_s=1.0)
    assert time.perf_counter() - start < 1.0
