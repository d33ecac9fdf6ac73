"""Countdown (TinyZero; the "There May Not be Aha Moment" pilot study): combine the given
numbers with + - * / into an equation that hits the target, each number used once.

Rewards follow the pilot study: no ``<answer>`` tag -> 0; a tagged answer that is
malformed, uses the wrong numbers or misses the target -> 0.1 (the format reward); an
equation within 1e-5 of the target -> 1.0. Equations are parsed, never ``eval``-ed.
"""

from __future__ import annotations

import random
from collections import Counter
from fractions import Fraction

from r1zero.config import ConfigError, TaskConfig
from r1zero.data import Problem
from r1zero.tasks.base import (
    TaskVerdict,
    bad_input_verdict,
    check_split,
    last_tag_block,
)
from r1zero.tasks.expression import ExpressionError, evaluate
from r1zero.templates import Template
from r1zero.utils import derive_seed

FORMAT_REWARD = 0.1
CORRECT_REWARD = 1.0
TOLERANCE = Fraction(1, 10**5)
"""The pilot study's ``abs(value - target) < 1e-5``, kept for parity. There it absorbs
float rounding; over exact Fractions nothing is rounded, so it only admits values that
are off by less than 1e-5 (possible only with large denominators)."""
NUMBER_RANGE = (1, 99)
TARGET_RANGE = (1, 100)
"""TinyZero draws numbers and targets from about 1..100."""
MIN_NUMBERS, MAX_NUMBERS = 2, 6
_MAX_TRIES = 1000


class CountdownTask:
    """Seeded Countdown puzzles; each carries a witness equation in ``meta["solution"]``."""

    name = "countdown"
    default_template = "r1"

    def __init__(self, cfg: TaskConfig) -> None:
        sizes = tuple(cfg.num_numbers)
        if not sizes or not all(MIN_NUMBERS <= n <= MAX_NUMBERS for n in sizes):
            raise ConfigError(
                f"countdown: num_numbers must be in {MIN_NUMBERS}..{MAX_NUMBERS}, got {sizes}"
            )
        self.cfg = cfg
        self._splits: dict[str, list[Problem]] = {}

    def problems(self, split: str) -> list[Problem]:
        """Deterministic given ``cfg.seed``; no (numbers, target) puzzle is in both splits."""
        check_split(split)
        if not self._splits:
            test = _generate(self.cfg, "test", self.cfg.num_test, exclude=set())
            seen = {_key(p) for p in test}
            train = _generate(self.cfg, "train", self.cfg.num_train, exclude=seen)
            self._splits = {"train": train, "test": test}
        return self._splits[split]

    def verify(self, response: str, problem: Problem, *, template: Template) -> TaskVerdict:
        """Pilot-study rewards; the template does not matter (the prompt asks for tags)."""
        return bad_input_verdict(response) or score_equation(
            response, problem.answer["numbers"], problem.answer["target"]
        )


def score_equation(response: str, numbers: list[int], target: int) -> TaskVerdict:
    """Score the last ``<answer>`` block of ``response`` against a Countdown puzzle."""
    equation = last_tag_block(response)
    if equation is None:
        return TaskVerdict(0.0, False, False, "no_answer", None, {"format": 0.0, "correct": 0.0})
    equation = equation.strip()
    try:
        result = evaluate(equation)
    except ExpressionError:
        return _partial("format_error", equation)
    if Counter(result.numbers) != Counter(numbers):
        return _partial("wrong_numbers", equation)
    if abs(result.value - target) >= TOLERANCE:
        return _partial("wrong_value", equation)
    components = {"format": FORMAT_REWARD, "correct": CORRECT_REWARD - FORMAT_REWARD}
    return TaskVerdict(CORRECT_REWARD, True, True, "correct", equation, components)


def _partial(reason: str, equation: str) -> TaskVerdict:
    """A tagged but wrong answer: only the format reward."""
    # The extracted text is clipped: it is logged, and a megabyte of junk helps no one.
    components = {"format": FORMAT_REWARD, "correct": 0.0}
    return TaskVerdict(FORMAT_REWARD, False, True, reason, equation[:500], components)


# ----------------------------------------------------------------------------- generator
def question_text(numbers: list[int], target: int) -> str:
    """The prompt body; the template (default r1) wraps it."""
    return (
        f"Using the numbers {numbers}, create an equation that equals {target}. You can use "
        "+, -, * and / and parentheses, and each number must be used exactly once. Show "
        "your reasoning, then give only the equation inside <answer> </answer> tags, for "
        "example <answer> (1 + 2) * 3 </answer>."
    )


def _generate(cfg: TaskConfig, split: str, count: int, exclude: set) -> list[Problem]:
    """``count`` distinct solvable puzzles not in ``exclude``, from a per-split stream."""
    rng = random.Random(derive_seed("countdown", cfg.seed, split))
    problems: list[Problem] = []
    seen = set(exclude)
    for _ in range(count * _MAX_TRIES):
        if len(problems) == count:
            break
        puzzle = _random_puzzle(rng, rng.choice(cfg.num_numbers))
        if puzzle is None or _puzzle_key(*puzzle[:2]) in seen:
            continue
        numbers, target, solution = puzzle
        seen.add(_puzzle_key(numbers, target))
        answer = {"numbers": numbers, "target": target}
        meta = {"solution": solution}
        problems.append(Problem(f"countdown-{split}-{len(problems)}",
                                question_text(numbers, target), answer, meta))
    if len(problems) < count:
        raise ConfigError(f"countdown: could only generate {len(problems)} {split} puzzles")
    return problems


def _random_puzzle(rng: random.Random, size: int) -> tuple[list[int], int, str] | None:
    """Numbers plus a target built from a random equation over them, or None if the
    equation's value is not an integer in the target range.

    Building the target from an equation guarantees solvability; the equation is then
    re-checked with the verifier's own exact parser, so every puzzle provably has a
    solution that earns reward 1.
    """
    numbers = [rng.randint(*NUMBER_RANGE) for _ in range(size)]
    order = numbers[:]
    rng.shuffle(order)
    text, value = _random_equation(rng, order)
    if value.denominator != 1 or not TARGET_RANGE[0] <= value <= TARGET_RANGE[1]:
        return None
    target = int(value)
    if score_equation(f"<answer>{text}</answer>", numbers, target).reward != CORRECT_REWARD:
        return None  # unreachable by construction; kept as a guard on the generator
    return numbers, target, text


def _random_equation(rng: random.Random, numbers: list[int]) -> tuple[str, Fraction]:
    """A random binary expression tree over all ``numbers`` (each used once): its fully
    bracketed text and exact value. Division by zero is replaced by addition."""
    pool = [(str(n), Fraction(n)) for n in numbers]
    while len(pool) > 1:
        a_text, a = pool.pop(rng.randrange(len(pool)))
        b_text, b = pool.pop(rng.randrange(len(pool)))
        op = rng.choice("+-*/")
        if op == "/" and b == 0:
            op = "+"
        pool.append((f"({a_text} {op} {b_text})", _apply(op, a, b)))
    text, value = pool[0]
    # The root is always a bracketed pair (size >= 2); its outer brackets are redundant.
    return text[1:-1], value


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    return a * b if op == "*" else a / b


def _puzzle_key(numbers: list[int], target: int) -> tuple:
    return tuple(sorted(numbers)), target


def _key(problem: Problem) -> tuple:
    return _puzzle_key(problem.answer["numbers"], problem.answer["target"])
