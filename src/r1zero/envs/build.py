"""Which environment a run uses (`build_env`): the one-turn environment of every task, the
Python tool (``--tools python``), or a user's factory (``--env.name package.module:factory``);
and the start-up check that a sandbox can run model code (`check_sandbox`)."""

from __future__ import annotations

from r1zero.config import ConfigError, EnvConfig, SandboxConfig
from r1zero.envs.base import Environment, OneTurn
from r1zero.envs.python_tool import PythonTool
from r1zero.sandbox import SandboxUnavailable, probe
from r1zero.tasks import SANDBOXED_TASKS, Task
from r1zero.tasks.registry import import_factory


def build_env(task: Task, tools: tuple[str, ...], config: EnvConfig, sandbox: SandboxConfig) -> Environment:
    """The run's environment. A user factory is called as ``factory(task=..., config=...,
    sandbox=...)`` (the `EnvConfig` and the `SandboxConfig`) and must return an
    `Environment` (docs/envs.md)."""
    if config.name is not None:
        return _user_env(config.name, task, config, sandbox)
    if "python" in tools:
        return PythonTool(sandbox, max_turns=config.max_turns, timeout_s=config.tool_timeout_s,
                          output_chars=config.tool_output_chars)
    return OneTurn()


def _user_env(path: str, task: Task, config: EnvConfig, sandbox: SandboxConfig) -> Environment:
    """Import ``module:factory`` and build the environment; errors name what failed."""
    factory = import_factory(path, f"--env.name {path!r}")
    env = factory(task=task, config=config, sandbox=sandbox)
    if not isinstance(env, Environment):
        raise ConfigError(f"--env.name {path!r} returned {type(env).__name__}, which is not an "
                          "Environment (it needs max_turns, respond(episode) and close())")
    return env


def needs_sandbox(task_name: str, tools: tuple[str, ...]) -> bool:
    """Whether the run will execute model code (the code task's tests, the Python tool)."""
    return task_name in SANDBOXED_TASKS or "python" in tools


def check_sandbox(sandbox: SandboxConfig) -> None:
    """Refuse to start when model code has nowhere isolated to run: one short execution in a
    fresh sandbox, at start-up, before any model is loaded. ``--sandbox none`` skips the
    check (its pools print a warning when they start)."""
    if sandbox.mode == "none":
        return
    ok, why = probe(sandbox)
    if not ok:
        raise SandboxUnavailable(why)
