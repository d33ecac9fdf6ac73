"""End-to-end ``grade`` tests by category: what a careful human math grader would say about
whole responses (bare answers, prose in several languages, runs of boxes, labelled
answers, list separators, formatting quirks, choice letters) against golds written the
way datasets write them (math delimiters, their own box, whole worked solutions, units).

Mostly ``extract="auto"`` (the ``r1zero grade`` default), plus a table for
``extract="boxed"`` (the paper's training reward). The policy is strict: exact arithmetic,
ordered tuples/intervals, unordered sets and bare lists, a collection never equals one of
its items, and hedged answers listing several candidates are wrong.
"""

from __future__ import annotations

import time

import pytest

from r1zero.grading import grade
from tests.helpers import GRADE_TIME_LIMIT_S, check_grade, grading_params

# (response, gold, expected)
BARE_ANSWERS = [
    # a bare number, the whole response
    ("-7", "-7", True),
    ("-7", "7", False),
    ("  12\n", "12", True),
    ("250.0", "250", True),
    ("250.5", "250", False),
    # thousands separators in a bare answer
    ("2 500", "2500", True),
    ("2 500", "250", False),
    ("3,150,000", "3150000", True),
    ("3,150,000", "315000", False),
    # fractions and radicals, with or without math delimiters
    ("\\frac{7}{3}", "\\frac{7}{3}", True),
    ("\\frac{7}{3}", "7/3", True),
    ("\\frac{7}{3}", "3", False),
    ("0.75", "\\frac{3}{4}", True),
    ("0.75", "\\frac{3}{5}", False),
    ("\\(\\frac{1}{4}\\)", "0.25", True),
    ("$\\sqrt{5}$", "\\sqrt{5}", True),
    # intervals, choices, equations wrapped in $...$ / $$...$$
    ("$(2,4]$", "(2,4]", True),
    ("$(2,4]$", "(2,4)", False),
    ("$(2,4]$", "[2,4]", False),
    ("$[-1, 3)$", "[-1,3)", True),
    ("$\\text{B}$", "B", True),
    ("$\\text{B}$", "C", False),
    ("$$g(t) = 2t$$", "2t", True),
    ("$$g(t) = 2t$$", "2t+1", False),
    ("$x = -3$", "-3", True),
    ("$x = -3$", "3", False),
    # a short sentence holding one number
    ("The total is 42 apples.", "42", True),
    ("The total is 42 apples.", "24", False),
    ("She needs 18 more stickers.", "18", True),
    ("There are 6 ways.", "6", True),
    ("There are 6 ways.", "7", False),
    # nothing at all
    ("", "0", False),
]

GOLD_FORMATS = [
    # gold wrapped in math delimiters
    ("\\boxed{12}", "$12$", True),
    ("\\boxed{12}", "$$12$$", True),
    ("\\boxed{13}", "$12$", False),
    ("\\boxed{\\frac{3}{8}}", "\\(\\frac{3}{8}\\)", True),
    ("\\boxed{\\frac{3}{8}}", "\\[\\frac{3}{8}\\]", True),
    ("\\boxed{\\frac{3}{8}}", "\\(\\frac{8}{3}\\)", False),
    ("\\boxed{(2, -1)}", "$(2,-1)$", True),
    ("\\boxed{(-1, 2)}", "$(2,-1)$", False),
    ("\\boxed{x^2 - 1}", "$$x^2-1$$", True),
    ("\\boxed{x^2+1}", "$$x^2-1$$", False),
    # gold holding its own box
    ("\\boxed{45}", "\\boxed{45}", True),
    ("\\boxed{45}", "$\\boxed{45}$", True),
    ("The answer is 45.", "\\boxed{45}", True),
    ("\\boxed{45}", "\\boxed{54}", False),
    ("\\boxed{B}", "$\\boxed{\\textbf{(B)}}$", True),
    # gold that is a whole worked solution
    ("\\boxed{9}", "We have $3^2 = 9$ so the number of tiles is $\\boxed{9}$.", True),
    ("\\boxed{4}", "We have $2^2 = 4$ and $4 + 5 = 9$, so the answer is $\\boxed{9}$.", False),
    ("\\boxed{9}", "Adding the two counts gives 4 + 5 = 9. The answer is 9.", True),
    ("\\boxed{5}", "Adding the two counts gives 4 + 5 = 9. The answer is 9.", False),
    (
        "\\boxed{\\dfrac{5}{6}}",
        "The die shows a six with probability $\\frac{1}{6}$, so "
        "$P = 1 - \\frac{1}{6} = \\boxed{\\frac{5}{6}}$.",
        True,
    ),
    (
        "\\boxed{\\frac{1}{6}}",
        "The die shows a six with probability $\\frac{1}{6}$, so "
        "$P = 1 - \\frac{1}{6} = \\boxed{\\frac{5}{6}}$.",
        False,
    ),
    # gold with units or words
    ("\\boxed{60\\textnormal{ km}}", "$60$ km", True),
    ("\\boxed{60}", "60 km", True),
    ("\\boxed{6}", "$60$ km", False),
    ("\\boxed{60\\textnormal{ km}}", "$600$ km", False),
    ("\\boxed{15}", "15 dollars", True),
    ("\\boxed{16}", "15 dollars", False),
    # a gold with two required answers
    ("\\boxed{3}", "$$x = 3 \\text{ or } x = 5$$", False),
]

MULTI_BOX = [
    # a final run of boxes is one collection
    ("So $x = \\boxed{3}, \\boxed{5}$.", "3, 5", True),
    ("\\boxed{3}, \\boxed{5}", "5, 3", True),
    ("\\boxed{3}, \\boxed{5}", "\\{3, 5\\}", True),
    ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "1,2,3", True),
    ("\\boxed{1}; \\boxed{2}; \\boxed{3}", "3, 2, 1", True),
    ("\\boxed{\\frac{1}{2}} and \\boxed{-3}", "-3, \\frac12", True),
    ("Two values work: $\\boxed{0}$ and $\\boxed{1}$.", "0, 1", True),
    (
        "The solutions are $\\boxed{(1, 4)} \\quad\\text{and}\\quad \\boxed{(4, 1)}$.",
        "(1,4), (4,1)",
        True,
    ),
    ("$\\boxed{(1, 4)} \\quad\\text{and}\\quad \\boxed{(4, 1)}$", "(4,1), (1,4)", True),
    # an earlier box is not part of the final run
    ("First $\\boxed{7}$ pairs. So the roots are $\\boxed{3}, \\boxed{5}$.", "3, 5", True),
    ("First $\\boxed{7}$ pairs. So the roots are $\\boxed{3}, \\boxed{5}$.", "3, 5, 7", False),
    # a run never equals one of its items
    ("\\boxed{3}, \\boxed{5}", "3", False),
    ("\\boxed{3}, \\boxed{5}", "5", False),
    ("$\\boxed{(1, 4)} \\quad\\text{and}\\quad \\boxed{(4, 1)}$", "(1, 4)", False),
    # one of the boxes wrong, or an item missing / extra
    ("\\boxed{3}, \\boxed{6}", "3, 5", False),
    ("\\boxed{3}", "3, 5", False),
    ("$\\boxed{(1, 4)} \\quad\\text{and}\\quad \\boxed{(4, 2)}$", "(1,4), (4,1)", False),
    ("$\\boxed{(1, 4)}$", "(1,4), (4,1)", False),
    ("\\boxed{1}, \\boxed{2}, \\boxed{3}", "1, 2", False),
    ("\\boxed{1}, \\boxed{2}", "1, 2, 3", False),
    # boxes separated by prose are not a run: the last box is the answer
    ("Earlier I got $\\boxed{3}$. Rechecking, the answer is $\\boxed{5}$.", "3, 5", False),
    ("Earlier I got $\\boxed{3}$. Rechecking, the answer is $\\boxed{5}$.", "5", True),
]

LABELS = [
    # labelled tuples
    ("$(a,b)=(5,1)$", "(5,1)", True),
    ("\\boxed{(a, b) = (5, 1)}", "(5,1)", True),
    ("\\boxed{(a,b)=(5,1)}", "(1,5)", False),
    ("\\boxed{(a,b)=(5,2)}", "(5,1)", False),
    # several named values
    ("$PQ=7, RS=2$", "7, 2", True),
    ("\\boxed{PQ = 7,\\ RS = 2}", "7, 2", True),
    ("$PQ=7, RS=3$", "7, 2", False),
    ("\\boxed{y = 2, m = \\frac{5}{3}}", "y=2, m=\\frac53", True),
    ("\\boxed{y = 2, m = \\frac{5}{3}}", "2, \\frac{5}{3}", True),
    ("\\boxed{y = 2, m = \\frac{3}{5}}", "y=2, m=\\frac53", False),
    ("\\boxed{y = 2}", "y=2, m=\\frac53", False),
    ("\\boxed{a = 4, b = 9}", "b=9, a=4", True),
    ("\\boxed{a = 9, b = 4}", "a=4, b=9", False),
    # membership in a set
    ("\\boxed{x \\in \\{2\\} \\cup [3,5)}", "\\{2\\}\\cup[3,5)", True),
    ("\\boxed{x \\in \\{2\\} \\cup [3,5)}", "\\{2\\}\\cup[3,5]", False),
    ("\\boxed{x \\in [3,5)}", "\\{2\\}\\cup[3,5)", False),
    # functions and single variables
    ("\\boxed{f(x) = 2x+1}", "2x+1", True),
    ("$f(x) = 2x + 1$", "2x+1", True),
    ("\\boxed{f(x) = 2x-1}", "2x+1", False),
    ("\\boxed{k = -\\frac{1}{2}}", "-\\frac12", True),
    ("\\boxed{n=6}", "6", True),
    ("\\boxed{n=6}", "7", False),
    ("The width is $w = 8$ cm.", "8", True),
    ("\\boxed{x = 2 \\text{ or } x = -2}", "-2, 2", True),
    ("\\boxed{x = 2}", "-2, 2", False),
    # clearly different names
    ("\\boxed{x = 3}", "y = 3", False),
]

SEPARATORS = [
    # the same two items, separated every which way
    ("\\boxed{1; 2}", "1, 2", True),
    ("\\boxed{1 \\text{ and } 2}", "1, 2", True),
    ("\\boxed{3 and 7}", "3, 7", True),
    ("\\boxed{x = 1 \\text{ or } x = 2}", "1, 2", True),
    ("\\boxed{-1 \\text{or} 4}", "4, -1", True),
    ("\\boxed{1 \\quad 2}", "1, 2", True),
    ("\\boxed{2,\\ 5,\\ 11}", "2, 5, 11", True),
    ("\\boxed{2 \\quad 5 \\quad 11}", "11, 5, 2", True),
    ("\\boxed{\\frac12; -\\frac32}", "-\\frac{3}{2}, \\frac{1}{2}", True),
    # braced sets against separated items
    ("\\boxed{\\{1, 2\\}}", "1; 2", True),
    ("\\boxed{1; 2}", "\\{1, 2\\}", True),
    ("\\boxed{(0,1); (1,0)}", "(1,0), (0,1)", True),
    # missing or extra items, wrong items
    ("\\boxed{1; 2}", "1, 2, 3", False),
    ("\\boxed{1; 2; 3}", "1, 2", False),
    ("\\boxed{1 \\text{ and } 3}", "1, 2", False),
    ("\\boxed{\\{1, 2\\}}", "1; 2; 4", False),
    ("\\boxed{3 and 7}", "3, 8", False),
    ("\\boxed{\\frac12; \\frac32}", "-\\frac{3}{2}, \\frac{1}{2}", False),
    ("\\boxed{(0,1); (1,1)}", "(1,0), (0,1)", False),
    # a list is neither one of its items nor its digits glued together
    ("\\boxed{1 \\quad 2}", "12", False),
    ("\\boxed{2 \\text{ or } 5}", "5", False),
    ("\\boxed{(0,1); (1,0)}", "(0,1)", False),
]

FORMATTING = [
    # \left( ... \right) and friends
    ("\\boxed{\\left( 2, \\frac{1}{3} \\right)}", "(2,\\frac13)", True),
    ("\\boxed{\\left( 2, \\frac{1}{3} \\right)}", "(\\frac13, 2)", False),
    ("\\boxed{\\left[ 0, 1 \\right)}", "[0,1)", True),
    ("\\boxed{\\left[ 0, 1 \\right)}", "[0,1]", False),
    # braceless arguments
    ("\\boxed{\\sqrt 3}", "\\sqrt{3}", True),
    ("\\boxed{2\\sqrt 3}", "2\\sqrt{3}", True),
    ("\\boxed{\\sqrt 3}", "3", False),
    ("\\boxed{\\tfrac52}", "\\frac{5}{2}", True),
    ("\\boxed{\\tfrac52}", "\\frac{2}{5}", False),
    ("\\boxed{\\frac23i}", "\\frac{2}{3}i", True),
    ("\\boxed{\\frac23i}", "\\frac{2}{3i}", False),
    ("\\boxed{\\dfrac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}2", True),
    # wrappers: choice text, currency
    ("\\boxed{\\text{(B)}}", "B", True),
    ("\\boxed{\\text{(B)}}", "D", False),
    ("\\boxed{\\$25}", "25", True),
    ("\\boxed{\\$25.00}", "25", True),
    ("\\boxed{\\$25}", "2.5", False),
    # matrices with newlines inside the box
    ("\\boxed{\\begin{pmatrix}\n1 \\\\\n-2\n\\end{pmatrix}}", "\\begin{pmatrix}1\\\\-2\\end{pmatrix}", True),
    (
        "\\boxed{\\begin{bmatrix}\n  1 & 0 \\\\\n  0 & 3\n\\end{bmatrix}}",
        "\\begin{pmatrix}1&0\\\\0&3\\end{pmatrix}",
        True,
    ),
    ("\\boxed{\\begin{pmatrix}\n-2 \\\\\n1\n\\end{pmatrix}}", "\\begin{pmatrix}1\\\\-2\\end{pmatrix}", False),
    # doubled backslashes (text escaped twice on its way through JSON)
    ("\\\\boxed{\\\\frac{1}{2}}", "\\frac{1}{2}", True),
    ("\\\\frac{1}{2}", "0.5", True),
    ("\\\\boxed{\\\\frac{1}{3}}", "\\frac{1}{2}", False),
    # decimal commas next to thousands separators
    ("\\boxed{3,75}", "3.75", True),
    ("\\boxed{0,5}", "\\frac12", True),
    ("\\boxed{3,75}", "375", False),
    ("\\boxed{1,2}", "12", False),
    ("\\boxed{3,150,000}", "3150000", True),
    ("\\boxed{3,150,000}", "3.15", False),
    ("\\boxed{2 500}", "2500", True),
    ("\\boxed{2\\,500}", "2500", True),
    ("\\boxed{2{,}500}", "2500", True),
    ("\\boxed{2\\,500}", "2.5", False),
]

CHOICES = [
    # English prose
    ("I'd say the answer is B.", "B", True),
    ("I'd say the answer is B.", "C", False),
    ("The answer: A, it can't be C or D.", "A", True),
    ("The answer: A, it can't be C or D.", "C", False),
    ("Thus the correct option is (E).", "E", True),
    ("The answer is $\\textbf{(D)}$", "D", True),
    ("After checking each option, **B** is correct.", "B", True),
    ("\\boxed{(C)}", "C", True),
    ("\\boxed{(C)}", "B", False),
    ("The answer is not B; it is C.", "C", True),
    ("The answer is not B; it is C.", "B", False),
    # other languages
    ("la réponse est D, pas B.", "D", True),
    ("la réponse est D, pas B.", "B", False),
    ("C。不是 D", "C", True),
    ("C。不是 D", "D", False),
    ("答案选 A。", "A", True),
    ("Die richtige Antwort ist C.", "C", True),
    ("Die richtige Antwort ist C.", "A", False),
    ("La respuesta correcta es la B.", "B", True),
    ("La respuesta correcta es la B.", "D", False),
    ("La risposta corretta è A.", "A", True),
    ("A resposta certa é E.", "E", True),
    ("Правильный ответ: B.", "B", True),
    ("Правильный ответ: B.", "A", False),
    ("正解は C です。", "C", True),
    ("正解は C です。", "B", False),
    ("정답은 D입니다.", "D", True),
    ("정답은 D입니다.", "A", False),
    # hedges listing several candidates
    ("It could be A or B.", "A", False),
    ("The answer is A, B, or D.", "B", False),
    ("\\boxed{B, C}", "B", False),
    ("**B** or **C**, I am not sure.", "B", False),
]

FOREIGN_PROSE = [
    # Spanish, French, German, Italian, Portuguese
    ("Respuesta: el precio final es 45 €.", "45", True),
    ("Respuesta: el precio final es 45 €.", "54", False),
    ("La respuesta es 1 250.", "1250", True),
    ("La respuesta es 1 250.", "125", False),
    ("La réponse finale est $\\frac{3}{4}$.", "0.75", True),
    ("La réponse finale est $\\frac{3}{4}$.", "\\frac{4}{3}", False),
    ("Die Antwort ist 12.", "12", True),
    ("Die Antwort ist 12.", "21", False),
    ("Die Antwort ist 12, nicht 13.", "13", False),
    ("Die Lösung ist $x = -4$.", "-4", True),
    ("Quindi la risposta è $2\\sqrt{2}$.", "2\\sqrt{2}", True),
    ("Quindi la risposta è $2\\sqrt{2}$.", "\\sqrt{2}", False),
    ("Portanto, a resposta é 36.", "36", True),
    ("Portanto, a resposta é 36.", "6", False),
    # Russian
    ("Ответ: 7", "7", True),
    ("Ответ: 7", "1", False),
    ("Ответ: $-\\frac{2}{5}$.", "-0.4", True),
    ("Итак, ответ: 3,5.", "3.5", True),
    ("Итак, ответ: 3,5.", "35", False),
    # Chinese, Japanese, Korean
    ("概率是5/12", "\\frac{5}{12}", True),
    ("概率是5/12", "\\frac{7}{12}", False),
    ("答案是：$x=5$", "5", True),
    ("答案是：$x=5$", "-5", False),
    ("所以最终答案是 $\\frac{1}{6}$。", "\\frac16", True),
    ("したがって、答えは 64 です。", "64", True),
    ("したがって、答えは 64 です。", "46", False),
    ("따라서 답은 $15$입니다.", "15", True),
    ("따라서 답은 $15$입니다.", "16", False),
]

NEAR_MISSES = [
    # huge powers and factorials: exact, not "close enough"
    ("\\boxed{\\frac{1}{3^{60}}}", "\\frac{1}{3^{61}}", False),
    ("\\boxed{\\frac{1}{3^{61}}}", "\\frac{1}{3^{61}}", True),
    ("\\boxed{3^{-61}}", "\\frac{1}{3^{61}}", True),
    ("\\boxed{\\frac{1}{1000!}}", "\\frac{1}{998!}", False),
    ("\\boxed{\\frac{1}{1000!}}", "\\frac{1}{1000!}", True),
    ("\\boxed{2^{100}}", "2^{100}+1", False),
    ("\\boxed{2^{100}+1}", "1+2^{100}", True),
    ("\\boxed{10^{9}+7}", "1000000007", True),
    ("\\boxed{10^{9}+9}", "1000000007", False),
    ("\\boxed{1-\\frac{1}{2^{20}}}", "\\frac{2^{20}-1}{2^{20}}", True),
    ("\\boxed{1-\\frac{1}{2^{20}}}", "\\frac{2^{20}-1}{2^{21}}", False),
    # rounded values are wrong values
    ("\\boxed{0.3333}", "\\frac{1}{3}", False),
    ("\\boxed{1.414}", "\\sqrt{2}", False),
    ("\\boxed{3.14}", "\\pi", False),
    ("\\boxed{\\frac{22}{7}}", "\\pi", False),
    ("\\boxed{0.999}", "1", False),
    ("\\boxed{\\frac{99}{100}}", "0.99", True),
    ("\\boxed{2\\pi}", "\\frac{4\\pi}{2}", True),
    ("\\boxed{\\binom{10}{3}}", "120", True),
    ("\\boxed{\\binom{10}{4}}", "120", False),
    # ordered triples
    ("\\boxed{(1, 2, 3)}", "(1, 3, 2)", False),
    ("\\boxed{(3, 2, 1)}", "(1, 2, 3)", False),
    ("\\boxed{(1, 2, 3)}", "\\left(1,2,3\\right)", True),
    # one of two required answers
    ("\\boxed{x = 4}", "x = 4 \\text{ or } x = -1", False),
    ("\\boxed{4}", "4, -1", False),
    # planes: a multiple of the same equation is the same plane
    ("\\boxed{x+2y+3z=6}", "x+2y+3z=5", False),
    ("\\boxed{2x+4y+6z=12}", "x+2y+3z=6", True),
    ("\\boxed{-x-2y-3z+6=0}", "x+2y+3z=6", True),
    ("\\boxed{2x+4y+6z=6}", "x+2y+3z=6", False),
]

# extract="boxed": the training reward only reads boxes
BOXED_MODE = [
    # no box, no credit, however plain the answer
    ("The answer is 5.", "5", False),
    ("5", "5", False),
    ("The answer is **7**.", "7", False),
    ("<think>easy</think> <answer>7</answer>", "7", False),
    ("\\boxed{}", "0", False),
    # boxes, in any of their spellings
    ("\\boxed{5}", "5", True),
    ("$\\boxed{5}$", "5", True),
    ("\\boxed 7", "7", True),
    ("Final answer: \\fbox{12}", "12", True),
    ("\\boxed{x = 3}", "3", True),
    ("\\boxed{\\text{(B)}}", "B", True),
    # the last box wins
    ("First guess $\\boxed{4}$; after rechecking, $\\boxed{5}$.", "5", True),
    ("First guess $\\boxed{5}$; after rechecking, $\\boxed{4}$.", "5", False),
    # a truncated final box (never closed) gets nothing, not an earlier box
    ("\\boxed{4} and then \\boxed{5", "5", False),
    ("\\boxed{4} and then \\boxed{5", "4", False),
    ("So the answer is \\boxed{\\frac{1}{2}", "\\frac12", False),
    # a final run of boxes is one collection
    ("So $x = \\boxed{3}, \\boxed{5}$.", "3, 5", True),
    ("$\\boxed{3} \\text{ and } \\boxed{5}$", "5, 3", True),
    ("\\boxed{3}, \\boxed{5}", "5", False),
    ("\\boxed{3}, \\boxed{5}", "3, 6", False),
    ("I first had $\\boxed{2}$, which fails. The roots are $\\boxed{3}, \\boxed{5}$.", "2, 3, 5", False),
]

AUTO_TABLES = {
    "bare": BARE_ANSWERS,
    "gold_formats": GOLD_FORMATS,
    "multi_box": MULTI_BOX,
    "labels": LABELS,
    "separators": SEPARATORS,
    "formatting": FORMATTING,
    "choices": CHOICES,
    "foreign_prose": FOREIGN_PROSE,
    "near_misses": NEAR_MISSES,
}
ALL_CASES = [(r, g, e, "auto") for table in AUTO_TABLES.values() for r, g, e in table] + [
    (r, g, e, "boxed") for r, g, e in BOXED_MODE
]

# First-call grading time of each case, recorded by the table test (later calls may hit
# the equivalence cache, so they understate the cost).
_ELAPSED: dict[tuple[str, str, str], float] = {}


@pytest.mark.parametrize(
    "response,gold,expected,extract",
    grading_params(AUTO_TABLES) + grading_params({"boxed_mode": BOXED_MODE}, extract="boxed"),
)
def test_category_tables(response, gold, expected, extract):
    _ELAPSED.setdefault((response, str(gold), extract), check_grade(response, gold, expected, extract))


@pytest.mark.parametrize("name", [*AUTO_TABLES, "boxed_mode"])
def test_tables_are_broad_with_many_negatives(name):
    table = AUTO_TABLES.get(name, BOXED_MODE)
    negatives = sum(1 for _, _, e in table if not e)
    assert len(table) >= 15
    assert 0.3 <= negatives / len(table) <= 0.65
    assert len({(r, g) for r, g, _ in table}) == len(table), "duplicate case"


def test_every_case_finishes_in_time():
    slow = []
    for response, gold, _, extract in ALL_CASES:
        start = time.perf_counter()
        grade(response, gold, extract=extract, timeout_s=GRADE_TIME_LIMIT_S)
        took = time.perf_counter() - start
        took = max(took, _ELAPSED.get((response, str(gold), extract), 0.0))
        if took >= GRADE_TIME_LIMIT_S:
            slow.append((round(took, 2), extract, response[:60], gold[:40]))
    assert not slow, f"cases taking {GRADE_TIME_LIMIT_S} s or more: {slow}"
