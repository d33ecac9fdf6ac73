"""Task registry: resolve a `TaskConfig` to a `Task`, by registered name or by a user's
``package.module:factory`` import path (the factory is called with the TaskConfig)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from r1zero.config import JUDGED_TASKS, ConfigError, JudgeConfig, SandboxConfig, TaskConfig
from r1zero.tasks.base import Task
from r1zero.tasks.code import make_code
from r1zero.tasks.countdown import CountdownTask
from r1zero.tasks.knights_knaves import KnightsKnavesTask
from r1zero.tasks.math import ArithmeticTask, make_gsm8k, make_math

TaskFactory = Callable[[TaskConfig], Task]

TASKS: dict[str, TaskFactory] = {
    "math": make_math,
    "gsm8k": make_gsm8k,
    "arithmetic": ArithmeticTask,
    "countdown": CountdownTask,
    "knights_knaves": KnightsKnavesTask,
    "code": make_code,
}
"""Built-in tasks. Adding one is a row here plus a module with a factory."""

SANDBOXED_TASKS = ("code",)
"""Built-in tasks whose verifier runs model code (in the sandbox, ``--sandbox.*``)."""


def get_task(cfg: TaskConfig, judge: JudgeConfig | None = None,
             sandbox: SandboxConfig | None = None) -> Task:
    """Build the task named by ``cfg.name`` (a key of `TASKS` or ``"pkg.module:factory"``).
    ``judge`` (``--judge.*``) reaches the judged built-in tasks and a user factory that
    takes a ``judge`` keyword; ``sandbox`` (``--sandbox.*``) the sandboxed ones and a user
    factory that takes a ``sandbox`` keyword."""
    name = cfg.name
    if name in JUDGED_TASKS:
        return TASKS[name](cfg, judge=judge)
    if name in SANDBOXED_TASKS:
        return TASKS[name](cfg, sandbox=sandbox)
    if name in TASKS:
        return TASKS[name](cfg)
    if ":" in name:
        factory = import_factory(name, f"task {name!r}")
        wants = inspect.signature(factory).parameters
        kwargs = {k: v for k, v in (("judge", judge), ("sandbox", sandbox)) if k in wants}
        return _check_task(factory(cfg, **kwargs), name)
    raise ConfigError(
        f"unknown task {name!r}: use one of {', '.join(TASKS)} or an import path "
        "'package.module:factory' to your own task factory"
    )


def import_factory(path: str, what: str) -> Callable:
    """Import ``module:attribute`` (a user's task or environment factory); ``what`` names
    it in the errors ("task 'pkg.mod:f'"), which say which part failed."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"{what} must look like 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"{what}: cannot import module {module_name!r} ({e})") from e
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"{what}: module {module_name!r} has no callable {attr!r}")
    return factory


def _check_task(task: object, path: str) -> Task:
    """Fail at startup, not mid-training, if a user factory returns the wrong thing."""
    if not isinstance(task, Task):
        missing = [a for a in ("name", "default_template", "problems", "verify")
                   if not hasattr(task, a)]
        raise ConfigError(
            f"task factory {path!r} returned {type(task).__name__}, which is not a Task "
            f"(missing: {', '.join(missing)})"
        )
    return task
