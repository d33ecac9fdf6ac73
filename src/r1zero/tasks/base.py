"""The task contract: the `TaskVerdict` a verifier returns, the `Task` protocol, and small
helpers that several verifiers share (a task's problems are `r1zero.data.Problem`).

A task is problems + a default template + a verifier. Verifiers read model text, so they
must never raise, never hang and never ``eval``: every path ends in a verdict with a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from r1zero.data import Problem
from r1zero.templates import Template

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")


@dataclass(frozen=True)
class TaskVerdict:
    """A verifier's judgement of one response.

    ``reward`` is what the trainer optimises; ``correct`` is what accuracy metrics count
    (they differ when a task pays a format reward). ``reason`` is a short machine-readable
    label (``correct``, ``no_answer``, ``format_error``, ``wrong_numbers``, ``wrong_value``,
    ``wrong_answer``, ...). ``components`` splits the reward into named parts for logging.
    """

    reward: float
    correct: bool
    format_ok: bool
    reason: str
    extracted: str | None = None
    components: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class Task(Protocol):
    """What the trainer and evaluator need from a task."""

    name: str
    default_template: str

    def problems(self, split: Split) -> list[Problem]:
        """The problems of ``split`` ("train" or "test"), in a deterministic order."""
        ...

    def verify(self, response: str, problem: Problem, *, template: Template) -> TaskVerdict:
        """Score one response; never raises on model text."""
        ...


def verify_all(task: Task, responses: Sequence[str], problems: Sequence[Problem], *,
               template: Template) -> list[TaskVerdict]:
    """``task.verify`` of each pair, in order; through the task's optional
    ``verify_batch(responses, problems, *, template)`` when it has one (a task that asks a
    remote judge batches its requests there)."""
    batch = getattr(task, "verify_batch", None)
    if batch is not None:
        return batch(responses, problems, template=template)
    return [task.verify(r, p, template=template) for r, p in zip(responses, problems)]


def check_split(split: str) -> str:
    """Validate a split name so a typo fails loudly instead of returning no problems."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    return split


def last_tag_block(text: str, tag: str = "answer") -> str | None:
    """Content of the last complete ``<tag>...</tag>`` block, or None.

    Uses ``rfind`` rather than a regex so megabyte responses cost one linear scan and no
    backtracking. The last block wins, as in the reference verifiers: a model that
    "changes its mind" is judged on its final answer.
    """
    close = text.rfind(f"</{tag}>")
    if close < 0:
        return None
    open_ = text.rfind(f"<{tag}>", 0, close)
    if open_ < 0:
        return None
    return text[open_ + len(tag) + 2 : close]


def bad_input_verdict(response: object) -> TaskVerdict | None:
    """A zero verdict when ``response`` is not a string (e.g. None from a failed request)."""
    if isinstance(response, str):
        return None
    return TaskVerdict(0.0, False, False, "bad_input")
