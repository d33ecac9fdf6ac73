"""Tasks: problems + a default template + a verifier, and the registry that names them.

Built-in tasks: ``math``, ``gsm8k``, ``arithmetic``, ``countdown``, ``knights_knaves``,
``code`` (unit tests run in the sandbox).
A user task is any object with ``name``, ``default_template``, ``problems(split)`` and
``verify(response, problem, *, template)``, returned by a factory named as
``"package.module:factory"``.
"""

from r1zero.data import Problem
from r1zero.tasks.base import Task, TaskVerdict, verify_all
from r1zero.tasks.registry import SANDBOXED_TASKS, TASKS, get_task

__all__ = ["Problem", "SANDBOXED_TASKS", "Task", "TaskVerdict", "TASKS", "get_task", "verify_all"]
