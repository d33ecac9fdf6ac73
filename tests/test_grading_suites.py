"""End-to-end ``grade`` cases in the *shapes* public graders test (Math-Verify, lighteval,
hendrycks MATH ``is_equiv``, GSM8K/SkyRL/verl, DAPO/AIME "Answer:" lines, lm-eval minerva,
R1 answer tags, open-r1), written fresh for this project: no case is copied from those
suites. Verdicts are what a careful human grader says under this project's strict policy
(see :mod:`r1zero.grading.equivalence`): exact arithmetic, ordered tuples/intervals with
matching brackets, unordered sets and bare lists, a collection never equals one of its
items, hedges are wrong, ``x=3`` equals ``3`` but ``2x+z=1`` never equals ``1``, gold
``50\\%`` accepts ``50``/``0.5`` (and vice versa), units ignored, ``2/4 == 1/2``.

Everything is graded with ``extract="auto"`` (the ``r1zero grade`` default) except the
R1 table, which uses ``extract="r1"``. Tables are (response, gold, expected).
"""

from __future__ import annotations

import pytest

from tests.helpers import check_grade, grading_params

# --------------------------------------------------------------------------------------
# Math-Verify style: number formats, currency, units, degrees, decimals
NUMBER_FORMATS = [
    ("\\boxed{6,318,000}", "6318000", True),
    ("The population grew to $6,318,000$.", "$6318000$", True),
    ("\\boxed{6,318,000}", "631800", False),
    ("\\boxed{48,\\!215}", "48215", True),
    ("\\boxed{48,\\!215}", "4821", False),
    ("\\boxed{22,\\!222,\\!222,\\!200}", "22222222200", True),
    ("\\boxed{48, 215}", "48215", False),  # comma + space: a list of two numbers
    ("\\boxed{5 000}", "5000", True),
    ("\\boxed{\\$2,500.75}", "2500.75", True),
    ("\\boxed{\\$2,500.75}", "2500.57", False),
    ("The bill comes to 2,500.75€ in total.", "2500.75", True),
    ("The bill comes to 2,500.75€ in total.", "250075", False),
    ("The room measures 36 m² in total.", "36", True),
    ("\\boxed{36\\text{ cm}^2}", "36", True),
    ("\\boxed{36\\text{ cm}^2}", "63", False),
    ("\\boxed{18\\mbox{ inches}}", "18", True),
    ("\\boxed{18\\mbox{ inches}}", "1.8", False),
    ("\\boxed{7\\textnormal{ miles}}", "7", True),
    ("\\boxed{12 \\text{ meters}}", "12", True),
    ("\\boxed{\\textbf{12}}", "12", True),
    ("\\boxed{60^\\circ}", "60", True),
    ("\\boxed{60^{\\circ}}", "60^\\circ", True),
    ("\\boxed{60^\\circ}", "120", False),
    ("\\boxed{.6}", "0.6", True),
    ("\\boxed{.6}", "6", False),
    ("\\boxed{9.00}", "9", True),
    ("\\boxed{9.01}", "9", False),
    ("\\boxed{-0.25}", "-\\frac{1}{4}", True),
    ("\\boxed{0.25}", "-\\frac{1}{4}", False),
    ("\\boxed{2,35}", "2.35", True),  # decimal comma (two digits after it)
    ("The total is 1500,25 €.", "1500.25", True),
    ("The code is QXB7RZ.", "7", False),  # a digit inside a word is no number
    ("\\boxed{\\frac{6}{8}}", "\\frac{3}{4}", True),
    ("\\boxed{12/4}", "3", True),
    ("\\boxed{12/5}", "3", False),
]

# precision: exact arithmetic, 16-digit decimals are not "rounded"
PRECISION = [
    ("\\boxed{0.667}", "\\frac{2}{3}", False),
    ("\\boxed{0.6666666666666666}", "\\frac{2}{3}", True),
    ("\\boxed{0.1428}", "\\frac{1}{7}", False),
    ("\\boxed{2.718}", "e", False),
    ("\\boxed{3.1416}", "\\pi", False),
    ("\\boxed{33.3}", "\\frac{100}{3}", False),
    ("\\boxed{\\sqrt{19}}", "4.358898943540674", True),
    ("\\boxed{4.3589}", "\\sqrt{19}", False),
    ("\\boxed{(1, 2.5)}", "(1, \\frac52)", True),
    ("\\boxed{(0.4, 1.6667]}", "(\\frac25, \\frac53]", False),
    ("\\boxed{(0.4, 1.6]}", "(\\frac25, \\frac85]", True),
]

PERCENT = [
    ("\\boxed{36\\%}", "36\\%", True),
    ("The answer is 36 percent.", "36\\%", True),
    ("36 pct", "36\\%", True),
    ("36 %", "36\\%", True),
    ("$36$ %", "36\\%", True),
    ("\\boxed{36}", "36\\%", True),
    ("\\boxed{0.36}", "36\\%", True),
    ("\\boxed{36\\%}", "36", True),
    ("\\boxed{36\\%}", "0.36", True),
    ("\\boxed{3.6}", "36\\%", False),
    ("\\boxed{63\\%}", "36\\%", False),
    ("\\boxed{36\\%}", "63", False),
    ("The answer is 3.6 percent.", "36\\%", False),
]

DELIMITERS = [
    ("\\[ \\frac{5}{9} \\]", "$\\frac59$", True),
    ("\\(3\\sqrt{2}\\)", "\\[3\\sqrt2\\]", True),
    ("$$\n\\frac{7}{2}\n$$", "3.5", True),
    ("\\[\n-\\frac{7}{2}\n\\]", "3.5", False),
    ("$-\\frac{3}{4}$", "\\(\\frac34\\)", False),
    ("We get $\\frac{9}{4}$ in the end.", "$$\\frac{9}{4}$$", True),
    ("The price is $\\$14.50$.", "14.5", True),
    ("\\boxed{\\frac13}", "$\\frac{1}{3}$", True),
    ("\\boxed{\\frac3{8}}", "\\frac{3}{8}", True),
    ("\\boxed{\\sqrt5}", "\\sqrt{5}", True),
    ("\\boxed{\\cfrac{2}{9}}", "\\frac{2}{9}", True),
    ("\\boxed{\\cfrac{2}{9}}", "\\frac{9}{2}", False),
]

# --------------------------------------------------------------------------------------
# MATH-style worked solutions as gold (and as response), long <think> responses
_SOL_SQUARE = (
    "Let the side of the square be $s$. Then $s^2 = 81$, so $s = 9$ and the perimeter "
    "is $4s = \\boxed{36}$."
)
_SOL_ASY = (
    "[asy]\ndraw((0,0)--(8,0)--(0,6)--cycle);\nlabel(\"$P$\",(0,0),SW);\n"
    "label(\"$Q$\",(8,0),SE);\n[/asy]\nThe legs are $6$ and $8$, so the hypotenuse is "
    "$\\sqrt{36+64} = \\boxed{10}$."
)
_SOL_ALIGN = (
    "We solve step by step:\n\\begin{align*}\n3x - 4 &= 17\\\\\n3x &= 21\\\\\n"
    "x &= \\boxed{7}\n\\end{align*}"
)
_SOL_BASE = (
    "Dividing repeatedly by 5, $59 = 2\\cdot 25 + 1\\cdot 5 + 4$, so "
    "$59_{10} = \\boxed{214_5}$."
)
_SOL_REPEAT = (
    "The remainder is $\\boxed{008}$.\n\nNote: we checked every case twice.\n"
    "Note: the count is the same either way.\n\n**Final Answer**\n\\boxed{008}"
)
_SOL_FRACTION = (
    "There are $\\binom{6}{2} = 15$ pairs, of which $4$ are adjacent, so the probability "
    "that they are not adjacent is $1 - \\frac{4}{15} = \\boxed{\\frac{11}{15}}$."
)
_THINK_LONG = (
    "<think>\nOkay, so the train covers 240 km in 3 hours. Speed is 240/3 = 80 km/h. "
    "Wait, the question asks for the distance in 5 hours. 80 * 5 = 400. Hmm, let me "
    "double-check: 80 + 80 + 80 + 80 + 80 = 400. Yes.\n</think>\n\n"
    "The train travels $80$ km per hour, so in 5 hours it covers $\\boxed{400}$ km."
)
_THINK_PLAIN = (
    "<think>\nFirst try: 7*8 = 54? No, 7*8 = 56. Then 56 - 9 = 47.\n</think>\n\n"
    "So the final answer is 47."
)
_THINK_DISPLAY = (
    "<think>\nI think it's 12, or maybe 15... the sum 3+5+7 = 15.\n</think>\n\n"
    "**Final Answer**\n\\[\n\\boxed{15}\n\\]"
)
_THINK_REVISED = (
    "<think>\nLet me guess 6. Check: 6*6 = 36 != 49. So try 7: 7*7 = 49. Good.\n</think>\n"
    "The side length is $\\boxed{7}$."
)

WORKED_SOLUTIONS = [
    ("\\boxed{36}", _SOL_SQUARE, True),
    ("\\boxed{9}", _SOL_SQUARE, False),
    ("The hypotenuse is $\\boxed{10}$.", _SOL_ASY, True),
    ("$\\boxed{100}$", _SOL_ASY, False),
    ("\\boxed{7}", _SOL_ALIGN, True),
    ("\\boxed{21}", _SOL_ALIGN, False),
    ("\\boxed{214_5}", _SOL_BASE, True),
    ("\\boxed{214_{5}}", _SOL_BASE, True),
    ("\\boxed{241_5}", _SOL_BASE, False),
    ("\\boxed{008}", _SOL_REPEAT, True),
    ("\\boxed{8}", _SOL_REPEAT, True),
    ("\\boxed{80}", _SOL_REPEAT, False),
    ("\\boxed{\\dfrac{11}{15}}", _SOL_FRACTION, True),
    ("\\boxed{\\frac{4}{15}}", _SOL_FRACTION, False),
    (
        "Pairs: $\\binom{6}{2}=15$; adjacent ones: $4$. Hence $P = \\boxed{\\frac{11}{15}}$.",
        _SOL_FRACTION,
        True,
    ),
    (_THINK_LONG, "400", True),
    (_THINK_LONG, "80", False),
    (_THINK_PLAIN, "47", True),
    (_THINK_PLAIN, "56", False),
    (_THINK_DISPLAY, "15", True),
    (_THINK_DISPLAY, "12", False),
    (_THINK_REVISED, "$7$", True),
    (_THINK_REVISED, "6", False),
]

# --------------------------------------------------------------------------------------
# relations and equations
RELATIONS = [
    ("\\boxed{x \\geq 4}", "4 \\le x", True),
    ("\\boxed{4 \\geq x}", "x \\le 4", True),
    ("\\boxed{x \\ge 4}", "x \\le 4", False),
    ("$-x > -2$", "x < 2", True),
    ("$-x > -2$", "x > 2", False),
    ("\\boxed{x >= 3}", "x \\geq 3", True),
    ("\\boxed{x \\lt 3}", "x < 3", True),
    ("\\boxed{x != 2}", "x \\neq 2", True),
    ("\\boxed{x \\neq 2}", "x = 2", False),
    # chains: the last right-hand side is the answer
    ("\\boxed{x = 4+7 = 11}", "11", True),
    ("\\boxed{x = 4+7 = 11}", "x = 11", True),
    ("\\boxed{x = 4+7 = 12}", "11", False),
    ("\\boxed{2\\sqrt{3} \\approx 3.46}", "3.46", True),
    ("\\boxed{2\\sqrt{3} \\approx 3.46}", "3.47", False),
    # assignments vs bare values, both directions
    ("\\boxed{13}", "x=13", True),
    ("\\boxed{m=2}", "2", True),
    ("\\boxed{2}", "m=2", True),
    ("\\boxed{3}", "m=2", False),
    # equations equal up to scaling or rearrangement
    ("\\boxed{y = -\\frac{x}{2}+\\frac34}", "2x+4y-3=0", True),
    ("\\boxed{y = -\\frac{x}{2}+\\frac32}", "2x+4y-3=0", False),
    ("\\boxed{\\frac{x^2}{9}+y^2=1}", "x^2+9y^2=9", True),
    ("\\boxed{\\frac{x^2}{9}+y^2=1}", "x^2+9y^2=1", False),
    ("\\boxed{3x-y+2z-5=0}", "-3x+y-2z+5=0", True),
    # a gold equation that is not an assignment never equals a bare number
    ("\\boxed{1}", "3x+z=1", False),
    ("\\boxed{0}", "p^2+q=0", False),
    ("\\boxed{5a+b}", "9 = 5a+b", False),
    ("\\boxed{3x+z=1}", "3x+z=1", True),
]

# --------------------------------------------------------------------------------------
# intervals, sets, tuples, plus-minus, several boxes
COLLECTIONS = [
    ("\\boxed{[2,9)}", "[2,9)", True),
    ("\\boxed{[2,9)}", "[2,8)", False),
    ("\\boxed{(2,9)}", "[2,9)", False),
    ("\\boxed{[2,9]}", "[2,9)", False),
    ("\\boxed{(-\\infty,-1)\\cup(4,\\infty)}", "(-\\infty, -1) \\cup (4, \\infty)", True),
    ("$(-\\infty, \\tfrac{1}{2}) \\cup (3, \\infty)$", "(-\\infty,\\frac12)\\cup(3,\\infty)", True),
    ("\\boxed{(-\\infty,-1]\\cup(4,\\infty)}", "(-\\infty,-1)\\cup(4,\\infty)", False),
    ("\\boxed{(-\\infty,-1)}", "(-\\infty,-1)\\cup(4,\\infty)", False),
    ("\\boxed{x \\in [-3,8]}", "[-3,8]", True),
    ("\\boxed{[-3,8]}", "x \\in [-3,8]", True),
    ("\\boxed{x \\in [-3,8)}", "[-3,8]", False),
    ("\\boxed{-3 \\le x \\le 8}", "[-3,8]", True),
    ("\\boxed{-3 < x \\le 8}", "[-3,8]", False),
    ("\\boxed{-150 < b < 12}", "(-150, 12)", True),
    # ordered tuples, labelled or not
    ("\\boxed{(m,n)=(3,8)}", "(3,8)", True),
    ("\\boxed{(m,n)=(8,3)}", "(3,8)", False),
    ("\\boxed{(3,8)}", "(m,n)=(3,8)", True),
    ("\\boxed{(3,8,1)}", "(3,8)", False),
    # lists of tuples: the outer list is unordered, the tuples are not
    ("\\boxed{(1,2),(3,4),(5,6)}", "(5,6),(1,2),(3,4)", True),
    ("\\boxed{(1,2),(4,3)}", "(1,2),(3,4)", False),
    ("\\boxed{(1,2),(3,4,5)}", "(1,2),(3,4)", False),
    # sets
    ("\\boxed{\\{4, -1, 0\\}}", "\\{-1,0,4\\}", True),
    ("\\boxed{\\{4, -1\\}}", "\\{-1,0,4\\}", False),
    ("\\boxed{\\{4\\}}", "4", False),
    ("\\boxed{-1,0,4}", "\\{-1,0,4\\}", True),
    ("\\boxed{b = 6,-3,-9}", "-9,-3,6", True),
    ("\\boxed{-4;-3;-2}", "\\{-4,-3,-2\\}", True),
    ("\\boxed{\\{1,3\\}}", "(3,1)", False),
    # plus-minus is a pair of values
    ("\\boxed{\\{-17, 17\\}}", "\\pm 17", True),
    ("\\boxed{\\pm 17}", "-17, 17", True),
    ("\\boxed{17}", "\\pm 17", False),
    ("\\boxed{\\pm 17}", "17", False),
    ("\\boxed{2 \\pm \\sqrt{5}}", "2+\\sqrt5, 2-\\sqrt5", True),
    ("\\boxed{2 \\pm \\sqrt{5}}", "2+\\sqrt5", False),
    ("\\boxed{-2 \\pm \\sqrt{5}}", "2+\\sqrt5, 2-\\sqrt5", False),
    # several boxes joined by and/or/commas are one answer
    ("$\\boxed{(2,3)} \\text{ and } \\boxed{(7,3)}$", "(2,3),(7,3)", True),
    ("$\\boxed{(2,3)} \\text{ and } \\boxed{(7,3)}$", "(2,3)", False),
    ("$\\boxed{k=30}$ and $\\boxed{m=4}$", "k=30, m=4", True),
    ("$\\boxed{k=30}$ and $\\boxed{m=5}$", "k=30, m=4", False),
    ("$\\boxed{4}$, $\\boxed{9}$, $\\boxed{16}$", "\\{4, 9, 16\\}", True),
    ("\\boxed{4} no, no, wait \\boxed{9}", "4, 9", False),
    ("\\boxed{1 and 2 and 3}", "1,2,3", True),
    ("\\boxed{5 \\text{ and } 11}", "5, 11", True),
    ("\\boxed{5 \\text{ and } 11}", "5, 12", False),
    ("\\boxed{(7,11), (11,7)}", "(11,7) \\text{ or } (7,11)", True),
]

# --------------------------------------------------------------------------------------
# text answers, matrices, symbolic identities and near misses, labelled golds
TEXT_ANSWERS = [
    ("\\boxed{\\text{Priya}}", "Priya", True),
    ("\\boxed{\\text{Priya}}", "Petra", False),
    ("\\boxed{\\text{odd}}", "odd", True),
    ("\\boxed{\\text{odd}}", "even", False),
    ("\\boxed{\\text{Even}}", "even", True),
    ("\\boxed{\\text{D}}", "D", True),
    ("\\boxed{c}", "\\text{D}", False),
    ("\\boxed{\\text{(A)}}", "\\text{A}", True),
    ("\\boxed{10:30}", "11:30", False),
    ("\\boxed{\\text{Tuesday}}", "Tuesday", True),
    ("\\boxed{\\text{Tuesday}}", "Thursday", False),
]

MATRICES = [
    (
        "\\boxed{\\begin{pmatrix} 2 & -1 \\\\ 0 & 5 \\end{pmatrix}}",
        "\\begin{bmatrix} 2 & -1 \\\\ 0 & 5 \\end{bmatrix}",
        True,
    ),
    (
        "$\\left[\\begin{array}{cc} 2 & -1 \\\\ 0 & 5 \\end{array}\\right]$",
        "\\begin{pmatrix}2&-1\\\\0&5\\end{pmatrix}",
        True,
    ),
    (
        "\\boxed{\\begin{pmatrix} 2 & -1 \\\\ 0 & 6 \\end{pmatrix}}",
        "\\begin{pmatrix}2&-1\\\\0&5\\end{pmatrix}",
        False,
    ),
    (
        "\\boxed{\\begin{pmatrix} 2 & 0 \\\\ -1 & 5 \\end{pmatrix}}",
        "\\begin{pmatrix}2&-1\\\\0&5\\end{pmatrix}",
        False,
    ),
    ("\\boxed{\\begin{pmatrix} 4 \\\\ -3 \\\\ \\end{pmatrix}}", "\\begin{pmatrix}4\\\\-3\\end{pmatrix}", True),
    (
        "\\boxed{\\begin{pmatrix} \\frac{1}{2} & 0 \\\\ 0 & 2 \\end{pmatrix}}",
        "\\begin{pmatrix}0.5&0\\\\0&2\\end{pmatrix}",
        True,
    ),
    (
        "\\boxed{\\begin{pmatrix} 0.33 & 0 \\\\ 0 & 1 \\end{pmatrix}}",
        "\\begin{pmatrix}\\frac13&0\\\\0&1\\end{pmatrix}",
        False,
    ),
    ("\\boxed{\\begin{pmatrix} 4 \\\\ -3 \\end{pmatrix}}", "(4,-3)", False),
]

SYMBOLIC = [
    ("\\boxed{\\frac{x+5}{3}}", "\\frac{x}{3}+\\frac{5}{3}", True),
    ("\\boxed{\\frac{x+5}{3}}", "\\frac{x}{3}+5", False),
    ("\\boxed{\\tan^2 t + 1}", "\\sec^2 t", True),
    ("\\boxed{\\tan^2 t - 1}", "\\sec^2 t", False),
    ("\\boxed{1-\\frac{1}{e}}", "1+\\frac1e", False),
    ("\\boxed{1-\\frac{1}{e}}", "\\frac{e-1}{e}", True),
    ("\\boxed{6}", "6\\sqrt3", False),
    ("\\boxed{1\\sqrt{23}}", "1", False),
    ("\\boxed{\\frac{1}{(x+3)(x-1)}}", "\\frac{1}{(x-1)(x+3)}", True),
    ("\\boxed{y+3m+2}", "y+2", False),
    ("\\boxed{4x^2+1}", "4x^2+x", False),
    ("\\boxed{(a+4)(b+1)}", "(4)(b+1)", False),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt2}", True),
    ("\\boxed{\\sin 2\\theta}", "2\\sin\\theta\\cos\\theta", True),
    ("\\boxed{(x-3)^2}", "x^2-6x+9", True),
    ("\\boxed{(x+3)^2}", "x^2-6x+9", False),
    ("\\boxed{\\frac{1+\\sqrt{5}}{2}}", "2", False),
    ("\\boxed{\\left(x-5\\right)\\left(x+5\\right)}", "x^2-25", True),
    ("\\boxed{\\sum_{k=1}^{n} k^2}", "\\sum_{k=1}^{n} k^2", True),
    ("\\boxed{\\sum_{k=1}^{n} k^2}", "\\sum_{k=0}^{n} k^3", False),
]

LABELLED = [
    ("\\boxed{3}", "|PQ|=3", True),
    ("\\boxed{|PQ| = 3}", "|PQ|=3", True),
    ("\\boxed{|PQ| = 4}", "|PQ|=3", False),
    ("\\boxed{x^2-2}", "g(x)=x^2-2", True),
    ("\\boxed{g(x) = x^2-2}", "x^2-2", True),
    ("\\boxed{g(x) = x^2+2}", "g(x)=x^2-2", False),
    ("\\boxed{5}", "h(2)=5", True),
    ("\\boxed{13:27}", "A_1:A_2=13:27", True),
    ("\\boxed{27:13}", "A_1:A_2=13:27", False),
    ("\\boxed{9:40}", "9:40", True),
    ("\\boxed{9:40}", "40:9", False),
    ("\\boxed{\\frac{AM}{MB} = \\frac{2}{5}}", "\\frac{2}{5}", True),
    ("\\boxed{a=12, b=5}", "a=12, b=5", True),
    ("\\boxed{a=12, b=6}", "a=12, b=5", False),
    ("\\boxed{1011_2}", "1011_2", True),
    ("\\boxed{1101_2}", "1011_2", False),
]

# --------------------------------------------------------------------------------------
# lighteval style: choice letters in prose, several languages
LETTERS = [
    ("I believe the right choice is C", "C", True),
    ("I believe the right choice is C", "(A)", False),
    ("Let's check. It is not A. It is not D either. So I would say it's B", "B", True),
    ("Let's check. It is not A. It is not D either. So I would say it's B", "D", False),
    ("The answer is surely E, it can't be B or C", "E", True),
    ("The answer is surely E, it can't be B or C", "B", False),
    ("D. It cannot be A or B because the sum is odd.", "(D)", True),
    ("D. It cannot be A or B because the sum is odd.", "(A)", False),
    ("Answer: (C)", "\\text{(C)}", True),
    ("So the answer is **(B)**.", "(D)", False),
    ("Donc la bonne réponse est B, pas A.", "B", True),
    ("Donc la bonne réponse est B, pas A.", "A", False),
    ("答案是：B", "B", True),
    ("B不是 A", "B", True),
    ("B。 不是 A", "A", False),
    ("Also ist die richtige Antwort (D).", "D", True),
    ("Also ist die richtige Antwort (D).", "C", False),
    ("Por lo tanto, la opción correcta es A.", "A", True),
    ("Por lo tanto, la opción correcta es A.", "E", False),
    ("Следовательно, ответ C.", "C", True),
    ("Следовательно, ответ C.", "B", False),
    ("Either B or D, hard to say.", "D", False),
]

# lighteval / mgsm style: GSM-like prose in other languages, decimal commas
MULTILINGUAL_PROSE = [
    ("小明每周跑 3 × 7 = 21 千米。答案：21", "21", True),
    ("小明每周跑 3 × 7 = 21 千米。答案：21", "3", False),
    ("54000 ÷ 12 = 4500千克，所以每辆卡车运4500千克。", "4500", True),
    ("54000 ÷ 12 = 4500千克，所以每辆卡车运4500千克。", "54000", False),
    ("男生占的比例为 5/14", "\\frac{5}{14}", True),
    ("男生占的比例为 5/14", "\\frac{14}{5}", False),
    ("答案是 18。", "18", True),
    ("لدى أحمد 12 تفاحة وأعطى 5، إذن بقي 7. الإجابة: 7", "7", True),
    ("لدى أحمد 12 تفاحة وأعطى 5، إذن بقي 7. الإجابة: 7", "12", False),
    ("Elle achète 4 cahiers à 2,50 € chacun, soit 10 €. Réponse : 10", "10", True),
    ("Elle achète 4 cahiers à 2,50 € chacun, soit 10 €. Réponse : 10", "2.5", False),
    ("La réponse est (12 + 30 = 42).", "42", True),
    ("La réponse est (12 + 30 = 42).", "30", False),
    ("On applique 100 × 0,20 = 20 € de remise, donc il paie 80 €.", "80", True),
    ("Le sac pèse 12,5 kg.", "12.5", True),
    ("Le sac pèse 12,5 kg.", "125", False),
    ("La respuesta es 3,5 litros.", "3.5", True),
    ("Die Antwort lautet 64.", "64", True),
    ("Die Antwort lautet 64.", "46", False),
    ("Ответ — 27.", "27", True),
    ("答えは19です。", "19", True),
    ("राम के पास 15 आम थे, उसने 6 बेचे। इसलिए उत्तर 9 है।", "9", True),
    ("राम के पास 15 आम थे, उसने 6 बेचे। इसलिए उत्तर 9 है।", "6", False),
    ("If we compute 12/4 we get 3, so the answer is 5", "5", True),
    ("If we compute 12/4 we get 3, so the answer is 5", "3", False),
    ("How much is it in total? Just about 4$", "4", True),
    ("Ganz einfach: der Preis beträgt 2,75 €.", "2.75", True),
]

# --------------------------------------------------------------------------------------
# hendrycks MATH is_equiv: string-normalisation pairs
HENDRYCKS = [
    ("\\boxed{\\tfrac13 +\\! \\frac1{60}}", "\\dfrac{1}{3}+\\frac{1}{60}", True),
    ("\\boxed{14\\text{ units}}", "14", True),
    ("\\boxed{14\\text{ units}}", "140", False),
    ("\\boxed{\\$14}", "14", True),
    ("\\boxed{14}", "\\$14", True),
    ("\\boxed{\\left(x-3\\right)\\left(x+3\\right)}", "(x-3)(x+3)", True),
    ("\\boxed{.3}", "0.3", True),
    ("\\boxed{0.3}", ".03", False),
    ("\\boxed{\\frac56 i}", "\\frac{5}{6}i", True),
    ("\\boxed{\\frac56 i}", "\\frac{6}{5}i", False),
    ("\\boxed{5\\sqrt{2}+\\sqrt9}", "5\\sqrt2+\\sqrt{9}", True),
    ("\\boxed{\\tfrac{7}{2}}", "\\frac72", True),
    ("\\boxed{3/5}", "\\frac{3}{5}", True),
    ("\\boxed{3/5}", "\\frac{5}{3}", False),
    ("\\boxed{12, 6, -3}", "6, 12, -3", False),  # a gold list in a chosen order: ordered
    ("\\boxed{12, 6, -3}", "-3, 6, 12", True),   # an ascending gold: a set of solutions
    ("\\boxed{-3, 6, 12}", "12, 6, -3", True),   # a descending gold: a set too
    ("\\boxed{12, 6, 3}", "6, 12, -3", False),
    ("\\boxed{3x+2y-z=4}", "3x+2y+z=4", False),
    ("\\boxed{15\\%}", "15", True),
    ("\\boxed{\\frac{2}{7}}", "\\frac{2}{9}", False),
]

# --------------------------------------------------------------------------------------
# GSM8K style: "#### N" answers and worked golds ending in "#### N"
_GSM_GOLD = (
    "Tom buys 3 packs of 12 pens, so he has 3*12 = <<3*12=36>>36 pens.\n"
    "He gives away 9 pens, leaving 36-9 = <<36-9=27>>27 pens.\n#### 27"
)
_GSM_GOLD_BIG = (
    "She earns 25*50 = <<25*50=1250>>1250 dollars a week.\n"
    "In 4 weeks that is 1250*4 = <<1250*4=5000>>5000 dollars.\n#### 5,000"
)
GSM8K = [
    ("He has 36 pens and gives 9 away, so 27 remain.\n#### 27", _GSM_GOLD, True),
    ("He has 36 pens.\n#### 36", _GSM_GOLD, False),
    ("Tom ends up with 27 pens.", _GSM_GOLD, True),
    ("Tom ends up with 72 pens.", _GSM_GOLD, False),
    ("25*50 = 1250 per week, times 4 is 5000.\n#### 5000", _GSM_GOLD_BIG, True),
    ("She earns $5,000 in four weeks.", _GSM_GOLD_BIG, True),
    ("She earns $1,250 per week.\n#### 1,250", _GSM_GOLD_BIG, False),
    ("The answer is #### 42", "42", True),
    ("The answer is #### 42", "43", False),
    ("#### 42.0", "42", True),
    ("The answer is 42.", "42", True),
    ("The answer is 42.", "24", False),
    ("She has 5 + 3 = 8 apples left.", "8", True),
    ("She has 5 + 3 = 8 apples left.", "5", False),
    ("Therefore, the total cost is $18.50.", "18.5", True),
    ("Therefore, the total cost is $18.50.", "1850", False),
    ("First 4 + 4 = 8, then 8 * 2 = 16. The answer is 16.\n#### 16", "16", True),
    ("The answer is 1,350 marbles.", "1350", True),
]

# --------------------------------------------------------------------------------------
# DAPO/AIME "Answer:" lines, chat end tokens, lm-eval minerva sentence
ANSWER_LINES = [
    ("We add the cases up.\nAnswer: 42", "42", True),
    ("We add the cases up.\nAnswer: 24", "42", False),
    ("Answer: 42<|im_end|>", "42", True),
    ("Answer: 41<|im_end|>", "42", False),
    ("Answer: \\boxed{73}", "73", True),
    ("Answer: \\boxed{37}", "73", False),
    ("Summing gives 73.\nAnswer: 73<|eot_id|>", "73", True),
    ("Answer: 0.5", "\\frac12", True),
    ("Answer: 0.25", "\\frac12", False),
    ("There are 5 cases, each with 3 options.\nAnswer: 15", "15", True),
    ("There are 5 cases, each with 3 options.\nAnswer: 15", "5", False),
    ("answer: 118", "118", True),
    (
        "The roots sum to $\\frac{3}{7}$.\nFinal Answer: The final answer is $\\frac{3}{7}$. "
        "I hope it is correct.",
        "\\frac37",
        True,
    ),
    (
        "The roots sum to $\\frac{3}{7}$.\nFinal Answer: The final answer is $\\frac{3}{7}$. "
        "I hope it is correct.",
        "\\frac73",
        False,
    ),
    (
        "First I got $x = 5$, which fails.\nFinal Answer: The final answer is $34$. "
        "I hope it is correct.",
        "34",
        True,
    ),
    (
        "First I got $x = 5$, which fails.\nFinal Answer: The final answer is $34$. "
        "I hope it is correct.",
        "5",
        False,
    ),
    ("Final Answer: The final answer is $(2,-5)$", "(2,-5)", True),
    ("Final Answer: The final answer is $(2,-5)$", "(-5,2)", False),
]

# --------------------------------------------------------------------------------------
# open-r1 style: boxed response vs plain or LaTeX gold
OPEN_R1 = [
    ("\\boxed{\\frac{37}{250}}", "\\frac{37}{250}", True),
    ("\\boxed{\\frac{38}{250}}", "\\frac{37}{250}", False),
    ("\\boxed{0.148}", "\\frac{37}{250}", True),
    ("\\boxed{3}", "6", False),
    ("\\boxed{6}", "$6$", True),
    ("The result is $\\boxed{2-2p}$.", "We get $1-p$ twice, so $\\boxed{2-2p}$.", True),
    ("The result is $\\boxed{2-p}$.", "We get $1-p$ twice, so $\\boxed{2-2p}$.", False),
    ("<think>\nquick</think>\n<answer>\n\\boxed{9}\n</answer>", "9", True),
]

# extract="r1": the answer tags right after </think>
R1_TAGS = [
    ("<think>2+3=5</think> <answer>5</answer>", "5", True),
    ("<think>2+3=5</think> <answer>6</answer>", "5", False),
    ("<think>so it is 5</think> <answer>\\boxed{5}</answer>", "5", True),
    ("<think>\nsum\n</think>\n<answer>\n\\frac{1}{2}\n</answer>", "0.5", True),
    ("<think>I think it is 5</think> <answer>4</answer>", "5", False),
    ("<think>2+3=5 so the answer is 5", "5", False),  # truncated inside the thinking
    ("The answer is 5.", "5", False),  # no tags at all
    ("\\boxed{5}", "5", False),
    ("<think>2+3=5</think> <answer>5", "5", False),  # answer never closed
    ("<think>x = 3</think> <answer>x = 3</answer>", "3", True),
    ("<think>both</think> <answer>3, 5</answer>", "3", False),
]

AUTO_TABLES = {
    "number_formats": NUMBER_FORMATS,
    "precision": PRECISION,
    "percent": PERCENT,
    "delimiters": DELIMITERS,
    "worked_solutions": WORKED_SOLUTIONS,
    "relations": RELATIONS,
    "collections": COLLECTIONS,
    "text_answers": TEXT_ANSWERS,
    "matrices": MATRICES,
    "symbolic": SYMBOLIC,
    "labelled": LABELLED,
    "letters": LETTERS,
    "multilingual_prose": MULTILINGUAL_PROSE,
    "hendrycks": HENDRYCKS,
    "gsm8k": GSM8K,
    "answer_lines": ANSWER_LINES,
    "open_r1": OPEN_R1,
}


@pytest.mark.parametrize(
    "response,gold,expected,extract",
    grading_params(AUTO_TABLES) + grading_params({"r1": R1_TAGS}, extract="r1"),
)
def test_public_suite_shapes(response, gold, expected, extract):
    check_grade(response, gold, expected, extract)


def test_tables_are_broad_with_many_negatives():
    tables = {**AUTO_TABLES, "r1": R1_TAGS}
    cases = [c for t in tables.values() for c in t]
    assert len(cases) >= 240
    negatives = sum(1 for _, _, e in cases if not e)
    assert 0.3 <= negatives / len(cases) <= 0.5
    for name, table in tables.items():
        assert len({(r, g) for r, g, _ in table}) == len(table), f"duplicate case in {name}"
