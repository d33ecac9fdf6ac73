"""Math tasks graded by final-answer equivalence: ``math`` (MATH-style files), ``gsm8k``,
and the seeded ``arithmetic`` generator used by the CPU demo.

Reward follows the reference recipe: 1 if the final answer is correct, else 0, with no
format reward (a format bonus is easy to hack). Truncated responses are the trainer's
concern: it scores them 0 and keeps them in the loss.
"""

from __future__ import annotations

import operator
import random
import re
from collections.abc import Callable, Sequence

from r1zero import data as data_lib
from r1zero.config import ConfigError, JudgeConfig, TaskConfig
from r1zero.data import Problem
from r1zero.grading import grade
from r1zero.tasks.base import TaskVerdict, bad_input_verdict, check_split
from r1zero.templates import Template
from r1zero.utils import derive_seed


def grade_math(
    response: str, gold: str | list[str], template: Template, *, extract: str | None = None
) -> TaskVerdict:
    """Reward 1/0 from `r1zero.grading.grade`, reading the answer where ``template`` puts it
    (or as ``extract`` says: ``boxed``, ``r1`` or ``auto``).

    ``format_ok`` means an answer could be extracted at all (a boxed answer, or the r1
    ``<answer>`` block); it is reported for analysis and is never paid for.
    """
    bad = bad_input_verdict(response)
    if bad is not None:
        return bad
    verdict = grade(response, gold, extract=extract or template.answer_format)
    return _math_verdict(verdict.correct, verdict.reason, verdict.extracted)


def _math_verdict(correct: bool, reason: str, extracted: str | None) -> TaskVerdict:
    reward = 1.0 if correct else 0.0
    return TaskVerdict(reward=reward, correct=correct, format_ok=extracted is not None,
                       reason=reason, extracted=extracted, components={"correct": reward})


def judge_math(verifier, responses: Sequence[str], problems: Sequence[Problem],
               template: Template, *, extract: str | None = None) -> list[TaskVerdict]:
    """`grade_math` for many responses, with a `ReferenceVerifier` deciding what the rules
    cannot (`r1zero.grading.llm_verifier.needs_judge`): reward 1 when the judge calls the
    final answer equivalent to the gold (reason ``judge_equivalent``), else 0
    (``judge_not_equivalent``, ``judge_unclear``, or ``judge_error`` when the judge server
    failed). All undecided responses go to the judge in one batched call."""
    from r1zero.grading.llm_verifier import (
        JudgeItem,  # the judge's HTTP client (imports torch)
    )

    out: list[TaskVerdict | None] = [bad_input_verdict(r) for r in responses]
    todo = [i for i, v in enumerate(out) if v is None]
    items = [JudgeItem(problems[i].question, responses[i], problems[i].answer,
                       grade(responses[i], problems[i].answer, extract=extract or template.answer_format))
             for i in todo]
    for i, item, d in zip(todo, items, verifier.verify_many(items)):
        out[i] = _math_verdict(d.correct, d.reason, item.rule.extracted)
    return out


class MathTask:
    """Problems from files or hub datasets (``cfg.train_path`` / ``cfg.test_path``)."""

    default_template = "qwen_math"

    def __init__(self, cfg: TaskConfig, name: str = "math", *, judge: JudgeConfig | None = None,
                 verifier=None) -> None:
        self.name = name
        self.cfg = cfg
        self._cache: dict[str, list[Problem]] = {}
        self.judge = verifier
        """The `ReferenceVerifier` consulted on undecided answers (``--judge.*``), or None."""
        if verifier is None and judge is not None and judge.enabled:
            from r1zero.grading.llm_verifier import (
                ReferenceVerifier,  # (imports torch: judged runs only)
            )

            judge.check("--judge")
            self.judge = ReferenceVerifier(judge)

    def problems(self, split: str) -> list[Problem]:
        """Load (once) the file configured for ``split``."""
        check_split(split)
        if split not in self._cache:
            self._cache[split] = self._load(split)
        return self._cache[split]

    def _load(self, split: str) -> list[Problem]:
        source = self.cfg.train_path if split == "train" else self.cfg.test_path
        if source is None:
            raise ConfigError(
                f"task {self.name!r} needs --task.{split}-path (a problem file, a "
                "save_to_disk directory or a hub dataset name)"
            )
        # A hub dataset has named splits; a local file is already one split.
        hub_split = None if data_lib.is_local_source(source) else split
        return data_lib.load_problems(
            source,
            question_field=self.cfg.question_field,
            answer_field=self.cfg.answer_field,
            split=hub_split,
            strict=self.cfg.strict_data,
        )

    def verify(self, response: str, problem: Problem, *, template: Template) -> TaskVerdict:
        if self.judge is not None:
            return self.verify_batch([response], [problem], template=template)[0]
        return grade_math(response, problem.answer, template, extract=self.cfg.extract)

    def verify_batch(self, responses: Sequence[str], problems: Sequence[Problem], *,
                     template: Template) -> list[TaskVerdict]:
        """`verify` of each pair; with a judge, its requests go out together (concurrently)."""
        if self.judge is None:
            return [self.verify(r, p, template=template) for r, p in zip(responses, problems)]
        return judge_math(self.judge, responses, problems, template, extract=self.cfg.extract)


def make_math(cfg: TaskConfig, judge: JudgeConfig | None = None) -> MathTask:
    """Factory for ``math``: MATH-style problems, default template ``qwen_math``."""
    return MathTask(cfg, "math", judge=judge)


def make_gsm8k(cfg: TaskConfig, judge: JudgeConfig | None = None) -> MathTask:
    """Factory for ``gsm8k``: the loader turns ``... #### 1,234`` answers into ``1234``.

    No default path: pass ``--task.train-path`` / ``--task.test-path`` (a local copy of
    ``test.jsonl``, or the hub name ``openai/gsm8k`` where the network allows).
    """
    return MathTask(cfg, "gsm8k", judge=judge)


# ----------------------------------------------------------------------------- arithmetic
OPERATIONS: dict[str, Callable[[int, int], int]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
}
_INTEGER = re.compile(r"[-−]?\d+")
_ENUMERATE_BELOW = 100_000
"""Problem spaces smaller than this are enumerated and shuffled instead of sampled."""


class ArithmeticTask:
    """Seeded ``a op b`` problems with ``cfg.digits``-digit operands, graded as math.

    The instruction to box the answer is part of the question because the default
    template is the model's own ``chat`` template (the CPU demo trains an instruct model).
    Subtraction may give negative answers; the gold is the exact integer string.
    """

    name = "arithmetic"
    default_template = "chat"

    def __init__(self, cfg: TaskConfig) -> None:
        ops = tuple(cfg.operations)
        if not ops or any(op not in OPERATIONS for op in ops):
            raise ConfigError(f"arithmetic: operations must be among {list(OPERATIONS)}, got {ops}")
        if not 1 <= cfg.digits <= 18:
            raise ConfigError(f"arithmetic: digits must be in 1..18, got {cfg.digits}")
        low, high = 10 ** (cfg.digits - 1), 10**cfg.digits - 1
        space = (high - low + 1) ** 2 * len(set(ops))
        if cfg.num_train + cfg.num_test > space:
            raise ConfigError(
                f"arithmetic: {cfg.num_train} + {cfg.num_test} problems requested but only "
                f"{space} distinct {cfg.digits}-digit problems exist"
            )
        self.cfg = cfg
        self._ops = tuple(dict.fromkeys(ops))  # dedupe, keep order
        self._range = (low, high)
        self._space = space
        self._splits: dict[str, list[Problem]] = {}

    def problems(self, split: str) -> list[Problem]:
        """Deterministic given ``cfg.seed``; no (a, op, b) is in both splits."""
        check_split(split)
        if not self._splits:
            triples = self._draw(self.cfg.num_test + self.cfg.num_train)
            test, train = triples[: self.cfg.num_test], triples[self.cfg.num_test :]
            self._splits = {
                "test": [self._problem(t, "test", i) for i, t in enumerate(test)],
                "train": [self._problem(t, "train", i) for i, t in enumerate(train)],
            }
        return self._splits[split]

    def verify(self, response: str, problem: Problem, *, template: Template) -> TaskVerdict:
        v = grade_math(response, problem.answer, template, extract=self.cfg.extract)
        # The value the response ends on: "47 + 85 = 132" (a short response read whole by
        # auto extraction) ends on 132.
        final = (v.extracted or "").rsplit("=", 1)[-1].replace(" ", "")
        if v.correct and not _INTEGER.fullmatch(final):
            # An equivalent expression ("\\boxed{47 + 85}") is right as mathematics but
            # skips the computation this task is about: a reward hack, not an answer.
            return TaskVerdict(0.0, False, True, "not_a_number", v.extracted, {"correct": 0.0})
        return v

    def _draw(self, count: int) -> list[tuple[int, str, int]]:
        """``count`` distinct (a, op, b) triples in a seeded random order."""
        rng = random.Random(derive_seed("arithmetic", self.cfg.seed, self.cfg.digits, *self._ops))
        low, high = self._range
        if self._space < _ENUMERATE_BELOW:
            # Small spaces (1-2 digits) are enumerated so that even "all of them" works.
            every = [(a, op, b) for op in self._ops for a in range(low, high + 1)
                     for b in range(low, high + 1)]
            rng.shuffle(every)
            return every[:count]
        # Rejection sampling; a dict keeps first-draw order, so the test split (drawn
        # first) does not depend on num_train.
        drawn: dict[tuple[int, str, int], None] = {}
        while len(drawn) < count:
            triple = (rng.randint(low, high), rng.choice(self._ops), rng.randint(low, high))
            drawn.setdefault(triple)
        return list(drawn)

    @staticmethod
    def _problem(triple: tuple[int, str, int], split: str, index: int) -> Problem:
        a, op, b = triple
        question = f"What is {a} {op} {b}? Put your final answer within \\boxed{{}}."
        answer = str(OPERATIONS[op](a, b))
        meta = {"a": a, "op": op, "b": b}
        return Problem(f"arithmetic-{split}-{index}", question, answer, meta)
