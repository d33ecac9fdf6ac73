"""Extraction tests: last brace-matched box (and final runs of boxes), r1 answer tags, the
``auto`` mode, gold extraction, and the reasons ``grade`` reports when there is no usable
answer."""

from __future__ import annotations

import pytest

from r1zero.grading import extract_answer, extract_gold, grade
from tests.helpers import check_grade, grading_params

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
    assert extract_answer(response, mode="r1") == expected


@pytest.mark.parametrize("response", R1_BAD)
def test_r1_missing_tags_is_format_error(response):
    assert extract_answer(response, mode="r1") is None
    v = grade(response, "5", extract="r1")
    assert (v.correct, v.reason) == (False, "format_error")


AUTO = [
    ("Thus the answer is 42.", "42"),
    ("Final answer: 3/4", "3/4"),
    ("The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
    ("we get 3 apples and 7 pears", "7"),  # last number: the final resort
    ("total 1,000", "1,000"),
    ("no numbers here", "no numbers here"),  # short text is read whole (a word answer)
    ("-7", "-7"),
    ("\\frac{7}{3}", "\\frac{7}{3}"),  # whole, not the last number 3
    ("$$g(t) = 2t$$", "g(t) = 2t"),
    ("\\boxed{} so 12", "12"),  # an empty box (the instruction echoed) is skipped
    ("<answer> 5 </answer>", "5"),
    ("Die Antwort ist 12.", "12"),
    ("答案是：$x=5$", "x=5"),
    ("Ответ: 7", "7"),
    ("#### 1,234", "1,234"),
    ("概率是5/12", "5/12"),
    ("Step 1 " + "blah " * 30 + "so we get $x = 4$ and then $y = 2$", "y = 2"),
    ("Step 1 " + "blah " * 30 + "so the roots are $3$ and $5$", "3, 5"),
]
RUNS = [
    ("\\boxed{3}, \\boxed{5}", "3, 5"),
    ("\\boxed{(1, 4)} \\quad\\text{and}\\quad \\boxed{(4, 1)}", "(1, 4), (4, 1)"),
    ("$x = \\boxed{3}$ and $y = \\boxed{5}$", "x=3, y=5"),
    ("\\boxed{3} is wrong, so \\boxed{5}", "5"),  # prose between: not a run
    ("\\boxed{5}\n\n**Final Answer**\n\\boxed{5}", "5"),
    ("\\boxed{5} \\boxed{5}", "5"),  # a repeated box is one answer
]


@pytest.mark.parametrize("response,expected", AUTO)
def test_extract_auto(response, expected):
    assert extract_answer(response, mode="auto") == expected


@pytest.mark.parametrize("response,expected", RUNS)
def test_final_run_of_boxes_is_one_collection(response, expected):
    assert extract_answer(response) == expected


def test_boxed_mode_reads_boxes_only():
    assert extract_answer("The answer is 42.") is None
    assert grade("The answer is 42.", "42").reason == "no_answer"
    assert grade("The answer is 42.", "42", extract="auto").correct


def test_box_beats_everything_in_auto():
    assert extract_answer("the answer is 3 so \\boxed{4}", mode="auto") == "4"


@pytest.mark.parametrize(
    "gold,expected",
    [
        ("$60$ km", "60  km"),
        ("\\(x=3\\)", "x=3"),
        ("$$\\frac{1}{2}$$", "\\frac{1}{2}"),
        ("5, 7", "5, 7"),  # a short gold is taken whole: never cut to its last number
        ("We add: $2+3=5$, so the total is $\\boxed{5}$.", "5"),
        ("First we note that " + "x " * 60 + "so the answer is $12$.", "12"),
        ("\\text{Monday}", "\\text{Monday}"),
    ],
)
def test_extract_gold(gold, expected):
    assert extract_gold(gold) == expected


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


def test_grade_unknown_mode_is_bad_input():
    assert grade("\\boxed{5}", "5", extract="xml").reason == "bad_input"


def test_verdict_is_frozen():
    v = grade("\\boxed{5}", "5")
    assert v.extracted == "5"
    with pytest.raises(AttributeError):
        v.correct = False  # type: ignore[misc]


# Shapes found while benchmarking against math-verify (each was wrong once).
FOUND_IN_BENCH = [
    ("Working... thus \\boxed{52_10}.", "52_8", False),  # base-n numerals compare as numerals
    ("\\boxed{204_{5}}", "204_5", True),
    ("\\boxed{\\text{(C)}+1}", "\\text{(C)}", False),  # a box holding more than a letter
    ("\\boxed{\\text{(C)}}", "C", True),
    ("The final answer is \\$32,\\!348.", "\\$32,\\!348", True),  # \$ is not a delimiter
    ("The final answer is 11,\\! 111,\\! 111,\\! 100.", "11111111100", True),  # \! ends nothing
    ("The final answer is \\begin{pmatrix} -2 \\\\ 5 \\end{pmatrix}.", "\\begin{pmatrix}-2\\\\5\\end{pmatrix}", True),
    ("\\boxed{\\varnothing}", "\\emptyset", True),
    ("\\boxed{\\mathbb{R}}", "(-\\infty, \\infty)", True),
    ("\\boxed{\\text{all real numbers}}", "\\mathbb{R}", True),
    ("$1:00$", "$12:00$", False),
    ("\\boxed{B}", "(B) Alina", True),  # an option with its text is answered by the letter
    ("\\boxed{A}", "(B) Alina", False),
    ("\\boxed{\\int_0^{\\infty} x\\,dx}", "2x+1", False),  # evalf noise is not a value
]



def test_grade_file_defaults_to_auto(tmp_path):
    import json

    from r1zero.grading import grade_file

    src = tmp_path / "in.jsonl"
    rows = [{"response": "The answer is 42.", "gold": "42"},
            {"response": "<think>a</think> <answer>7</answer>", "gold": "7", "template": "r1"},
            {"response": "7", "gold": "7", "template": "r1"}]
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    summary = grade_file(src, tmp_path / "auto.jsonl")
    assert summary["correct"] == 2 and summary["reasons"]["format_error"] == 1
    assert grade_file(src, tmp_path / "boxed.jsonl", extract="boxed")["correct"] == 1
    with pytest.raises(ValueError, match="extract"):
        grade_file(src, tmp_path / "x.jsonl", extract="fallbacks")


# Peer-suite and issue-thread shapes, in our own words (each checked once by hand).
PEER_SHAPES = [
 ("how many $? just about 1$", "1", True),
 (r"\boxed{1} papers and \boxed{2} bins", r"\{1,2\}", True),
 (r"\boxed{3} is wrong, so \boxed{5}", "5", True),
 (r"$x = \frac{22}{7} \approx 3.14$", r"\frac{22}{7}", True),
 (r"$x \approx 3.14$", r"\frac{22}{7}", False),
 (r"$0<f(x)<1$", "(0,1)", True),
 (r"1,000.99m²", "1000.99", True),
 (r"0,111", "0.111", True),
 (r"0,111", "111", False),
 (r"1000,99", "1000.99", True),
 (r"2,74 $", "2.74", True),
 (r"Answer: 42<|im_end|>", "42", True),
 ("réponse est (35 + 70 = 105).", "105", True),
 ("72000 / 18 = 4000千克", "4000", True),
 (r"$x = 5+5+1 = 7 = 11$", r"$x = 11$", True),
 (r"\boxed{1} and and or thus but \boxed{2} and \boxed{3}", r"\{2,3\}", True),
 (r"\boxed{1} and and or thus but \boxed{2} and \boxed{3}", r"\{1,2,3\}", False),
 ("AZYUK2A", "2", False),
 ("Let's think step by step. Option A is not right since it is odd. Therefore I think it's B", "B", True),
 ("The answer is for sure D, it can't be A or B", "D", True),
 ("B不是 A", "B", True),
 (r"\boxed{5m}", "5", False),
(r"$\frac{1}{2006!}$", r"$\frac{1}{2004!}$", False),
 (r"$\frac{1}{2^{98}}$", r"$\frac{1}{2^{99}}$", False),
 (r"$n=1, 2, 3$", r"$n=2, 3, 4$", False),
 (r"$D = (0, 1.5)$", r"$D = (0, 1)$", False),
 (r"$F_n = \sum_{k=0}^{n-2} F_k F_{n-k-2}$", r"$F_n = \sum_{k=0}^{n-1} F_k F_{n-k-1}$", False),
 (r"$21, 36, and 82$", r"$19, 46, \text{ and } 82$", False),
 (r"$19, 46, and 82$", r"$19, 46, \text{ and } 82$", True),
 (r"$\frac{1}{3 \cdot 2^{2006}}$", r"$\frac{2^{2005}+1}{3 \cdot 2^{2006}}$", False),
 (r"$1 + \frac{1}{\mathrm{e}}$", r"$1 - \frac{1}{\mathrm{e}}$", False),
 (r"$1 - \frac{1}{e}$", r"$1 - \frac{1}{\mathrm{e}}$", True),
 (r"$2021$", r"$\pm 2021$", False),
 (r"$1:00$", r"$12:00$", False),
 (r"$12:00$", r"$12:00$", True),
 (r"$1, 3, 5, \ldots, 2n-1$", r"$1, 2, \ldots, n$", False),
 (r"$1:4:9:\ldots$", r"$1:2:3:\ldots$", False),
 (r"$4\sqrt(2)$", "$4$", False),
 (r"3x + 4y + 14=0", r"3*x-1*y+13=0", False),
 (r"3x - y + 13 = 0", r"3*x-1*y+13=0", True),
 (r"$\text{13}$", "$13$", True),
 (r"$x=1$", r"$y=1$", False),
 (r"\boxed{(1,2)}", r"\{1,2\}", False),
 (r"\boxed{\{1,2\}}", r"(1,2)", False),
 (r"\boxed{[1,2]}", r"(1,2)", False),
 (r"\boxed{1,2,3}", r"1,2", False),
 (r"\boxed{2}", r"2,2", False),
 (r"\boxed{50\%}", r"\frac{1}{2}", True),
 (r"\boxed{\frac{\sqrt{3}}{2}}", r"\frac{\sqrt{3}}{3}", False),
 (r"\boxed{x^2+1}", r"x^2-1", False),
 (r"\boxed{a+b}", r"ab", False),
 (r"\boxed{\infty}", r"-\infty", False),
 (r"\boxed{0}", r"\emptyset", False),
 (r"\boxed{\emptyset}", r"\varnothing", True),
 (r"\boxed{\text{no solution}}", r"\emptyset", False),
 (r"\boxed{10}", r"10^\circ", True),
 (r"\boxed{\frac{\pi}{2}}", r"90^\circ", False),
 (r"\boxed{5\sqrt{2}}", r"\sqrt{50}", True),
 (r"\boxed{6.28}", r"2\pi", False),
 (r"\boxed{1.5}", r"\frac{3}{2}", True),
 (r"\boxed{3/2}", r"1\frac{1}{2}", True),
 (r"\boxed{1\frac{1}{2}}", r"\frac{3}{2}", True),
 (r"\boxed{11}", r"\frac{1}{2}", False),
 (r"\boxed{\sqrt{2}/2}", r"\frac{1}{\sqrt{2}}", True),
 (r"\boxed{x \le 3}", r"x < 3", False),
 (r"\boxed{(-\infty, 3]}", r"x \le 3", True),
 (r"\boxed{\mathbb{R}}", r"(-\infty,\infty)", True),
 (r"\boxed{\text{all real numbers}}", r"(-\infty,\infty)", True),
 (r"\boxed{16}", r"16 \text{ square units}", True),
 (r"\boxed{\$ 1.50}", r"1.50", True),
 (r"\boxed{150}", r"1.50", False),
 (r"\boxed{2 \text{ and } 3}", r"2", False),
 (r"The answer is 2 and 3", r"2", False),
 (r"\boxed{y = 2x + 3}", r"2x + 3", True),
 (r"\boxed{f(x) = 2x + 3}", r"2x+3", True),
 (r"\boxed{2x + 3}", r"y = 2x + 4", False),
 (r"\boxed{x = 3}", r"x^2 = 9", False),
 (r"\boxed{\{3, -3\}}", r"\pm 3", True),
 (r"\boxed{10^{-400}}", r"0", False),
 (r"\boxed{0.0001}", r"0", False),
 (r"\boxed{1000001}", r"1000000", False),
 (r"\boxed{3.0000001}", r"3", False),
 (r"\boxed{\text{Monday}}", r"\text{Tuesday}", False),
 (r"\boxed{\text{Monday}}", r"Monday", True),
 (r"\boxed{B}", r"\text{(A) } 12", False),
 (r"\boxed{1 + \sqrt{3}i}", r"1+i\sqrt{3}", True),
 (r"\boxed{1 - \sqrt{3}i}", r"1+i\sqrt{3}", False),
 (r"\boxed{\log_2 8}", r"3", True),
 (r"\boxed{\log 8}", r"3", False),
 (r"\boxed{7 \text{ km}}", r"7000 \text{ m}", False),
]



# Answer phrases, GSM8K and r1 shapes, scripts with their own digits.
MORE_PHRASES = [
("الإجابة هي ٥", "5", True),
 ("उत्तर है ५", "5", True),
 ("答えは5です。", "5", True),
 ("답은 5입니다.", "5", True),
 ("最终答案是5。", "5", True),
 ("#### $42", "42", True),
 ("The answer is $42.50", "42.5", True),
 ("The answer is $42.", "42", True),
 ("So the answer is 1,234.", "1234", True),
 ("Answer: 42", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72", False),
 ("Answer: 43", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72", False),
 ("Answer: 72", "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether.\n#### 72", True),
 ("<think>\nlet me compute\n</think>\n<answer>\n\\boxed{7}\n</answer>", "7", True),
 ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "0.75", True),
 ("The final answer is $x^2 + 1$. I hope it is correct.", "x^2+1", True),
 ("The final answer is $x^2 + 1$. I hope it is correct.", "x^2-1", False),
 ("Therefore, the answer is $\\boxed{\\text{(B)}}$.", "B", True),
 ("so the answer is (C) 12", "C", True),
 ("The correct option is B: 12 apples.", "B", True),
 ("Hence the value is 12.", "12", True),
 ("Hence the value is 12.", "13", False),
 ("We get x = 3 or x = -3.", "\\pm 3", True),
 ("We get x = 3.", "\\pm 3", False),
 ("forty-two", "42", False),
 ("\\boxed{5}", "five", False),
]



# Qwen2.5-Math-style equivalences: matrices, planes, unions, identities.
MORE_EQUIVALENCES = [
(r"\boxed{\begin{pmatrix} \sqrt[3]{2} & 0 \\ 0 & 1 \\ \end{pmatrix}}", r"\begin{pmatrix} 2^{1/3} & 0 \\ 0 & 1 \end{pmatrix}", True),
 (r"\boxed{(1,4.5)}", r"(1,\frac{9}{2})", True),
 (r"\boxed{-\frac{1}{2}x + \frac{3}{4}}", r"\frac{3}{4} - \frac{x}{2}", True),
 (r"\boxed{\frac{x}{7}+\frac{2}{7}}", r"\frac{x+2}{7}", True),
 (r"\boxed{2x + 3y - z = 4}", r"-2x - 3y + z + 4 = 0", True),
 (r"\boxed{2x + 3y - z = 4}", r"2x + 3y - z = -4", False),
 (r"\boxed{\frac{1+\sqrt{5}}{2}}", "2", False),
 (r"\boxed{(a+5)(b+2)}", r"(+5)(b+2)", False),
 (r"\boxed{\frac{1}{\frac{1}{2}}}", "2", True),
 (r"\boxed{\dfrac{3}{8}}", r"0.375", True),
 (r"\boxed{37.5\%}", r"\frac{3}{8}", True),
 (r"\boxed{x \in (-\infty, -3) \cup (2, \infty)}", r"(-\infty,-3)\cup(2,\infty)", True),
 (r"\boxed{(2, \infty) \cup (-\infty, -3)}", r"(-\infty,-3)\cup(2,\infty)", True),
 (r"\boxed{(-\infty, -3] \cup (2, \infty)}", r"(-\infty,-3)\cup(2,\infty)", False),
 (r"\boxed{x < -3 \text{ or } x > 2}", r"(-\infty,-3)\cup(2,\infty)", True),
 (r"\boxed{\text{Yes}}", r"\text{yes}", True),
 (r"\boxed{\text{No}}", r"\text{yes}", False),
 (r"\boxed{9\pi}", r"9 \pi", True),
 (r"\boxed{28.26}", r"9\pi", False),
 (r"\boxed{\sqrt{3}/3}", r"\frac{\sqrt{3}}{3}", True),
 (r"\boxed{\frac{1}{\sqrt{3}}}", r"\frac{\sqrt{3}}{3}", True),
 (r"\boxed{3\sqrt{2}+1}", r"1+3\sqrt2", True),
 (r"\boxed{\{1,2,3\}}", r"\{3,2,1\}", True),
 (r"\boxed{(1,2,3)}", r"(3,2,1)", False),
 (r"\boxed{1,2,3}", r"3,2,1", True),           # a sorted gold: a set of solutions
 (r"\boxed{10, 4, -2}", r"4, 10, -2", False),  # gold in a chosen order: ordered
 (r"\boxed{4, 10, -2}", r"10, 4, -2", True),   # a sorted (descending) gold: a set
 (r"\boxed{4, 0.1, 2}", r"0.1, 4, 2", False),  # gold in a chosen order: ordered
 (r"\boxed{0.1, 4, 2}", r"0.1, 4, 2", True),
 (r"\boxed{1, -2, 1, -1/2}", r"1, 1, -2, -\frac{1}{2}", False),  # coefficients, reordered
 (r"\boxed{4, 10}", r"10, 4", True),           # two items: no order to read
 (r"\boxed{\text{A and C}}", r"A, C", True),
 (r"\boxed{A}", r"A, C", False),
]


# Final-answer sentences as models write them (markdown, several languages, quantities).
ANSWER_SENTENCES = [
 ("Therefore, the answer is: **5**", "5", True),
 ("**Answer:** 12 apples", "12", True),
 ("**Final Answer:** $\\frac{3}{4}$", "0.75", True),
 ("The final answer is: $\\boxed{B}$", "B", True),
 ("Answer: (C)", "C", True),
 ("### Final Answer\nThe value of $x$ is $\\boxed{7}$.", "7", True),
 ("So x = 7.\n\nAnswer: 7", "7", True),
 ("So x = 7.\n\nAnswer: 8", "7", False),
 ("The answer is $x = -2$ or $x = 3$.", "-2, 3", True),
 ("The answer is $x = -2$ or $x = 3$.", "3", False),
 ("The solutions are $x=1$ and $x=2$.", "1,2", True),
 ("Thus $f(3) = 10$.", "10", True),
 ("The area is $24\\text{ cm}^2$.", "24", True),
 ("The probability is $\\dfrac{1}{6}$.", "1/6", True),
 ("The probability is $\\dfrac{1}{6}$.", "1/5", False),
 ("We find that $a+b = 11$.", "11", True),
 ("Hence the minimum value is $-\\frac{1}{4}$.", "-0.25", True),
 ("The answer is 3 hours and 20 minutes.", "3", False),
 ("It takes 200 seconds.", "200", True),
 ("$\\boxed{\\text{Yes}}$", "yes", True),
 ("The answer is no.", "No", True),
 ("The answer is yes.", "No", False),
 ("The final answer is $\\boxed{(2,3)}$", "(2, 3)", True),
 ("The final answer is $(2,3)$", "(3, 2)", False),
 ("The largest is 27, the smallest is 3, so the answer is 24.", "24", True),
 ("答案：B", "B", True),
 ("正确答案是C。", "C", True),
 ("Die richtige Antwort ist (D).", "D", True),
 ("La respuesta correcta es la B.", "B", True),
 ("A resposta é 42.", "42", True),
 ("La risposta è $\\frac{1}{2}$.", "0.5", True),
 ("Ответ: 3,5 см.", "3.5", True),
]


@pytest.mark.parametrize(
    "response,gold,expected,extract",
    grading_params({"bench": FOUND_IN_BENCH, "peer": PEER_SHAPES, "phrases": MORE_PHRASES,
                    "equivalences": MORE_EQUIVALENCES, "sentences": ANSWER_SENTENCES}),
)
def test_shape_tables(response, gold, expected, extract):
    check_grade(response, gold, expected, extract)
