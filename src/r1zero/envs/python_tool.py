"""Tool-integrated reasoning with a Python interpreter (``--tools python``): the model may
write a fenced ```python block; the environment runs it in the sandbox and shows what it
printed as the next turn; the final answer is graded by the task's verifier (the math
grader for ``math``), on the model's own text only.

The tool-call format (docs/envs.md; the ``qwen_math_tool`` template states it):

- a call is the last closed ```python (or ```py) block of a model turn that is not
  followed by a final answer (``\\boxed``) in that turn; a turn without one ends the episode;
- the turn ends at the model's end of message, or at "```output" after the block (the
  template's stop string: the format Qwen2.5-Math's tool-integrated reasoning uses);
- the reply is "```output", a newline, what the program printed (stdout, then the last
  lines of a traceback; a time-out or a limit says so) and a closing "```"; after an end
  of message it is a new user message of the chat template (r1zero.envs.driver);
- each block runs on its own in a fresh process (nothing carries over between blocks),
  in the sandbox (r1zero.sandbox), never in the training process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from r1zero.config import SandboxConfig
from r1zero.envs.base import Episode, Step
from r1zero.sandbox import Result, SandboxPool
from r1zero.templates import TOOL_STOP

CODE_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL)
"""A closed fenced Python block; group 1 is its code."""
TRACEBACK_LINES = 4
"""Lines of a failing program's stderr shown (the end of its traceback)."""


def tool_call(text: str) -> str | None:
    """The code a model turn asks to run: its last closed Python block, unless a final
    answer (``\\boxed``) follows it; None = no call."""
    last = None
    for last in CODE_BLOCK.finditer(text):
        pass
    if last is None or "\\boxed" in text[last.end():]:
        return None
    return last.group(1)


def head_tail(text: str, limit: int) -> str:
    """``text`` cut to about ``limit`` characters: its head and tail with a marker between."""
    if len(text) <= limit:
        return text
    keep = (limit - 20) // 2
    return f"{text[:keep]}\n...[{len(text) - 2 * keep} characters cut]...\n{text[-keep:]}"


def shown_output(result: Result, timeout_s: float) -> str:
    """What the model reads back from one execution."""
    out = result.stdout
    if result.verdict == "timeout":
        out += f"TimeoutError: the code ran longer than {timeout_s:g} s\n"
    elif result.verdict == "error":
        out += "\n".join(result.stderr.strip().splitlines()[-TRACEBACK_LINES:]) + "\n"
    elif result.verdict != "ok":
        out += f"{result.verdict}: {result.reason}\n"
    return out


def reply(turn_text: str, output: str) -> str:
    """The environment's turn: the output block, opened unless the model already wrote its
    opening (the "```output" stop string)."""
    body = output if output.endswith("\n") or not output else output + "\n"
    opening = "\n" if turn_text.endswith(TOOL_STOP) else f"\n{TOOL_STOP}\n"
    return f"{opening}{body}```\n"


class PythonTool:
    """The Python-interpreter environment. Its sandbox pool starts on first use; a step's
    tool calls run together on the pool's warm workers."""

    def __init__(self, sandbox: SandboxConfig, *, max_turns: int = 4, timeout_s: float = 5.0,
                 output_chars: int = 1000) -> None:
        self.max_turns = max_turns
        self.sandbox = sandbox
        self.timeout_s = timeout_s
        self.output_chars = output_chars
        self._pool: SandboxPool | None = None

    def runner(self) -> SandboxPool:
        if self._pool is None:
            self._pool = SandboxPool(self.sandbox)
        return self._pool

    def respond(self, episode: Episode) -> Step:
        return self.respond_batch([episode])[0]

    def respond_batch(self, episodes: Sequence[Episode]) -> list[Step]:
        """Run every episode's tool call of this turn at once; an episode with no call (or
        at its last turn) ends. Statistics: tool_calls, tool_errors (the program failed or
        hit a limit other than time), tool_timeouts, sandbox_s (execution wall seconds)."""
        steps = [Step(stats={"tool_calls": 0.0}) for _ in episodes]
        calls = [(k, code) for k, ep in enumerate(episodes)
                 if ep.turns_left > 0 and (code := tool_call(ep.last.text)) is not None]
        if not calls:
            return steps
        results = self.runner().map([code for _, code in calls], timeout_s=self.timeout_s)
        for (k, _), r in zip(calls, results):
            text = head_tail(shown_output(r, self.timeout_s), self.output_chars)
            steps[k] = Step(text=reply(episodes[k].last.text, text), stats={
                "tool_calls": 1.0, "tool_errors": float(r.verdict not in ("ok", "timeout")),
                "tool_timeouts": float(r.timed_out), "sandbox_s": r.wall_s})
        return steps

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
