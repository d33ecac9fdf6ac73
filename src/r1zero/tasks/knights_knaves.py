"""Knights and Knaves logic puzzles (as used by Logic-RL): knights always tell the truth,
knaves always lie; from what each inhabitant says, decide who is which.

Every generated puzzle has exactly one solution, checked by enumerating all 2^n role
assignments, so the reward (1 if every role is right, else 0) cannot be earned by a
different but also-consistent answer.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

from r1zero.config import ConfigError, TaskConfig
from r1zero.data import Problem
from r1zero.tasks.base import (
    TaskVerdict,
    bad_input_verdict,
    check_split,
    last_tag_block,
)
from r1zero.templates import Template
from r1zero.utils import derive_seed

NAMES = (
    "Zoey", "Oliver", "Amelia", "Ethan", "Sofia", "Lucas", "Harper", "Mason", "Layla",
    "Henry", "Chloe", "Daniel", "Grace", "Samuel", "Aria", "Owen", "Nora", "Jacob",
    "Ruby", "Isaac", "Violet", "Caleb", "Hazel", "Wyatt", "Stella", "Felix", "Alice",
    "Victor", "Maya", "Julian",
)
"""Real first names; none is a prefix of another, so ``\\bName\\b`` matching is unambiguous."""
MIN_PEOPLE, MAX_PEOPLE = 2, 8
ROLES = ("knave", "knight")  # indexed by the boolean "is a knight"
TAIL_CHARS = 4000
"""How much of the response end is searched for roles when there is no <answer> block."""
_MAX_TRIES = 2000
_CONNECTIVES = ("and", "or", "if", "iff")


# ----------------------------------------------------------------------------- statements
@dataclass(frozen=True)
class Atom:
    """"<person> is a knight" (``knight=True``) or "... is a knave"."""

    person: int
    knight: bool

    def holds(self, roles: tuple[bool, ...]) -> bool:
        return roles[self.person] == self.knight

    def render(self, names: list[str], speaker: int) -> str:
        role = ROLES[self.knight]
        return f"I am a {role}" if self.person == speaker else f"{names[self.person]} is a {role}"


@dataclass(frozen=True)
class Compound:
    """Two atoms joined by and / or / if-then / if-and-only-if."""

    op: str
    left: Atom
    right: Atom

    def holds(self, roles: tuple[bool, ...]) -> bool:
        a, b = self.left.holds(roles), self.right.holds(roles)
        return {"and": a and b, "or": a or b, "if": (not a) or b, "iff": a == b}[self.op]

    def render(self, names: list[str], speaker: int) -> str:
        a, b = self.left.render(names, speaker), self.right.render(names, speaker)
        if self.op == "if":
            return f"if {a} then {b}"
        return f"{a} if and only if {b}" if self.op == "iff" else f"{a} {self.op} {b}"


Statement = Atom | Compound


def _random_statement(rng: random.Random, speaker: int, n: int) -> Statement:
    """A statement by ``speaker``. A lone atom is about someone else ("I am a knight" says
    nothing); a compound mentions someone else and may also mention the speaker."""
    others = [p for p in range(n) if p != speaker]
    first = Atom(rng.choice(others), rng.random() < 0.5)
    if rng.random() < 0.4:
        return first
    second_pool = [p for p in range(n) if p != first.person]
    second = Atom(rng.choice(second_pool), rng.random() < 0.5)
    left, right = (first, second) if rng.random() < 0.5 else (second, first)
    return Compound(rng.choice(_CONNECTIVES), left, right)


def solutions(statements: list[Statement]) -> list[tuple[bool, ...]]:
    """All role assignments in which every knight's statement is true and every
    knave's is false (exhaustive: 2^n <= 256 assignments)."""
    n = len(statements)
    return [
        roles
        for roles in itertools.product((True, False), repeat=n)
        if all(s.holds(roles) == roles[i] for i, s in enumerate(statements))
    ]


def _random_puzzle(rng: random.Random, n: int) -> tuple[tuple[bool, ...], list[Statement]]:
    """Hidden roles plus statements consistent with them and with no other assignment."""
    for _ in range(_MAX_TRIES):
        roles = tuple(rng.random() < 0.5 for _ in range(n))
        statements = [_consistent_statement(rng, i, roles) for i in range(n)]
        if len(solutions(statements)) == 1:
            return roles, statements
    raise RuntimeError(f"knights_knaves: no unique {n}-person puzzle in {_MAX_TRIES} tries")


def _consistent_statement(rng: random.Random, speaker: int, roles: tuple[bool, ...]) -> Statement:
    """Resample until the statement's truth matches the speaker's role (about half do)."""
    while True:
        statement = _random_statement(rng, speaker, len(roles))
        if statement.holds(roles) == roles[speaker]:
            return statement


# ----------------------------------------------------------------------------- task
def question_text(names: list[str], statements: list[Statement]) -> str:
    """The puzzle as prose, ending with the answer-format instruction."""
    said = " ".join(
        f'{names[i]} says: "{_capitalise(s.render(names, i))}."' for i, s in enumerate(statements)
    )
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    return (
        "An island is inhabited only by knights, who always tell the truth, and knaves, "
        f"who always lie. You meet {len(names)} inhabitants: {listed}. {said} "
        "Who is a knight and who is a knave? Give your final answer inside <answer> "
        '</answer> tags, stating for every inhabitant "<name> is a knight" or '
        '"<name> is a knave".'
    )


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


class KnightsKnavesTask:
    """Seeded puzzles with sizes drawn from ``cfg.num_people``.

    ``Problem.answer`` is the role list (``"knight"`` / ``"knave"``) aligned with
    ``meta["names"]``.
    """

    name = "knights_knaves"
    default_template = "r1"

    def __init__(self, cfg: TaskConfig) -> None:
        sizes = tuple(cfg.num_people)
        if not sizes or not all(MIN_PEOPLE <= n <= MAX_PEOPLE for n in sizes):
            raise ConfigError(
                f"knights_knaves: num_people must be in {MIN_PEOPLE}..{MAX_PEOPLE}, got {sizes}"
            )
        self.cfg = cfg
        self._splits: dict[str, list[Problem]] = {}

    def problems(self, split: str) -> list[Problem]:
        """Deterministic given ``cfg.seed``; no puzzle text is in both splits."""
        check_split(split)
        if not self._splits:
            test = self._generate("test", self.cfg.num_test, exclude=set())
            train = self._generate("train", self.cfg.num_train, {p.question for p in test})
            self._splits = {"train": train, "test": test}
        return self._splits[split]

    def _generate(self, split: str, count: int, exclude: set[str]) -> list[Problem]:
        rng = random.Random(derive_seed("knights_knaves", self.cfg.seed, split))
        problems: list[Problem] = []
        seen = set(exclude)
        for _ in range(count * 100):
            if len(problems) == count:
                return problems
            problem = _make_problem(rng, rng.choice(self.cfg.num_people), split, len(problems))
            if problem.question not in seen:
                seen.add(problem.question)
                problems.append(problem)
        if len(problems) < count:
            raise ConfigError(
                f"knights_knaves: could only generate {len(problems)} {split} puzzles"
            )
        return problems

    def verify(self, response: str, problem: Problem, *, template: Template) -> TaskVerdict:
        # With the r1 template the answer must be in tags, as for math; otherwise the
        # response tail is read, so the task also works with chat/no templates.
        require_tags = template.answer_format == "r1"
        return bad_input_verdict(response) or score_roles(
            response, problem.meta["names"], problem.answer, require_tags=require_tags
        )


def _make_problem(rng: random.Random, n: int, split: str, index: int) -> Problem:
    names = rng.sample(NAMES, n)
    roles, statements = _random_puzzle(rng, n)
    answer = [ROLES[r] for r in roles]
    meta = {
        "names": names,
        "statements": [s.render(names, i) for i, s in enumerate(statements)],
        "num_people": n,
    }
    question = question_text(names, statements)
    return Problem(f"knights_knaves-{split}-{index}", question, answer, meta)


# ----------------------------------------------------------------------------- verifier
def score_roles(
    response: str, names: list[str], gold: list[str], *, require_tags: bool
) -> TaskVerdict:
    """Reward 1 iff every inhabitant's stated role matches ``gold``.

    The roles are read from the last ``<answer>`` block; without tags (and when the
    template does not require them) from the last `TAIL_CHARS` of the response. The last
    claim about each person wins. Reasons: no_answer, format_error (someone missing),
    wrong_value, correct.
    """
    block = last_tag_block(response)
    if block is None and require_tags:
        return TaskVerdict(0.0, False, False, "no_answer", components={"correct": 0.0})
    text = (block if block is not None else response)[-TAIL_CHARS:]
    claimed = {name: _claimed_role(text, name) for name in names}
    found = {name: role for name, role in claimed.items() if role is not None}
    extracted = ", ".join(f"{name}: {role}" for name, role in found.items()) or None
    if not found:
        reason = "format_error" if block is not None else "no_answer"
        return TaskVerdict(0.0, False, False, reason, extracted, {"correct": 0.0})
    if len(found) < len(names):
        return TaskVerdict(0.0, False, False, "format_error", extracted, {"correct": 0.0})
    correct = all(found[name] == role for name, role in zip(names, gold))
    reward = 1.0 if correct else 0.0
    reason = "correct" if correct else "wrong_value"
    return TaskVerdict(reward, correct, True, reason, extracted, {"correct": reward})


def _claimed_role(text: str, name: str) -> str | None:
    """The role last claimed for ``name``: "Zoey is a knight", "**Zoey**: knave",
    "Zoey is not a knight" (-> knave)."""
    pattern = re.compile(
        rf"\b{re.escape(name)}\b[\s*:,\-]*(?:is\s+)?(not\s+)?(?:an?\s+)?(knight|knave)",
        re.IGNORECASE,
    )
    matches = list(pattern.finditer(text))  # text is at most TAIL_CHARS long
    if not matches:
        return None
    last = matches[-1]
    role = last.group(2).lower()
    if last.group(1):
        role = "knave" if role == "knight" else "knight"
    return role
