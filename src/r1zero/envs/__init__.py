"""Environments: episodes that alternate model turns and environment turns over one growing
context, token in and token out (docs/envs.md).

base.py: `Episode`, `Turn`, `Step`, the `Environment` protocol and `OneTurn` (every
single-turn task); driver.py: `run_episodes` (the rollout of every task) and the episodes'
verdicts; python_tool.py: `PythonTool` (``--tools python``); metrics.py: ``env/*``;
build.py: `build_env` and the sandbox check.
"""

from r1zero.envs.base import Environment, Episode, OneTurn, Step, Turn, respond_all
from r1zero.envs.build import build_env, check_sandbox, needs_sandbox
from r1zero.envs.driver import (
    EPISODE_KEY,
    EpisodeSummary,
    episode_verdicts,
    graded_text,
    run_episodes,
    summary_of,
)
from r1zero.envs.metrics import env_metrics
from r1zero.envs.python_tool import PythonTool, tool_call

__all__ = ["EPISODE_KEY", "Environment", "Episode", "EpisodeSummary", "OneTurn",
           "PythonTool", "Step", "Turn", "build_env", "check_sandbox", "env_metrics", "episode_verdicts",
           "graded_text", "needs_sandbox", "respond_all", "run_episodes", "summary_of", "tool_call"]
