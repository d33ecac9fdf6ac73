"""Typed configuration: every dataclass field is a CLI flag and its docstring is the help.

Parsed once by `r1zero.cli` (tyro); derived values are computed in one `derive()` step;
validation is pure (no hardware or file checks while parsing).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ConfigError(ValueError):
    """A configuration problem, reported before any model is loaded."""


# ----------------------------------------------------------------------------- tasks
@dataclass
class TaskConfig:
    """Which task to train / evaluate on: a problem source + template + verifier."""

    name: str = "arithmetic"
    """Registered task name (math, gsm8k, countdown, arithmetic, knights_knaves) or a dotted
    import path ``package.module:factory`` to a user's own task factory."""
    train_path: str | None = None
    """Problem file or hub name for training problems (math, gsm8k)."""
    test_path: str | None = None
    """Problem file or hub name for held-out problems (math, gsm8k)."""
    question_field: str | None = None
    """Field holding the question (auto-detected when None: problem, question, ...)."""
    answer_field: str | None = None
    """Field holding the gold answer (auto-detected when None: answer, final_answer, ...)."""
    num_train: int = 2000
    """Generated tasks: number of training problems."""
    num_test: int = 100
    """Generated tasks: number of held-out problems (disjoint from training)."""
    seed: int = 0
    """Generated tasks: generator seed."""
    digits: int = 2
    """arithmetic: operand digits."""
    operations: tuple[str, ...] = ("+",)
    """arithmetic: operations to draw from (+, -, *)."""
    num_people: tuple[int, ...] = (2, 3)
    """knights_knaves: puzzle sizes to draw from (2..8)."""
    num_numbers: tuple[int, ...] = (3, 4)
    """countdown: how many numbers per puzzle."""
