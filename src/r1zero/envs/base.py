"""The environment contract: what an episode is (`Episode`, its `Turn`s), what an environment
answers after a model turn (`Step`), the `Environment` protocol, and `OneTurn`, the
environment of every single-turn task.

An episode starts from a task's problem (the rendered prompt) and alternates model turns
and environment turns over one growing context. After each model turn the environment
says what comes next: text appended to the context (a tool's output, feedback), or the
end of the episode, optionally with its own verdict. Without one, the task's verifier
grades the model's own text (`Episode.model_text`). Per-turn rewards add to the episode's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from r1zero.data import Problem
from r1zero.tasks import TaskVerdict


@dataclass(frozen=True)
class Turn:
    """One turn of an episode: who wrote it, its text and its token ids (a model turn's as
    sampled, with the sampler's log-probs; an environment turn's tokenised once)."""

    source: Literal["model", "env"]
    text: str
    token_ids: list[int]
    logprobs: list[float] | None = None
    finish_reason: str = "stop"
    """A model turn: "stop" (end of message or a stop string) or "length" (budget spent)."""


@dataclass(frozen=True)
class Step:
    """An environment's answer to a model turn."""

    text: str | None = None
    """The environment's turn, appended to the context (tokenised once, attended to, never
    trained on); None = the episode ends here."""
    reward: float = 0.0
    """This turn's reward; the episode's reward is its verdict's plus the sum of these."""
    verdict: TaskVerdict | None = None
    """With ``text`` None: the episode's verdict; None = the task's verifier grades
    `Episode.model_text`."""
    stats: dict[str, float] = field(default_factory=dict)
    """Counts and seconds summed per episode and logged as ``env/<key>`` (docs/metrics.md):
    tool_calls, tool_errors, tool_timeouts, sandbox_s, or any of the environment's own."""


@dataclass
class Episode:
    """One episode so far: the problem, the prompt's token ids and the turns. Read-only for
    an environment (the driver, r1zero.envs.driver, appends the turns)."""

    problem: Problem
    prompt_ids: list[int]
    max_turns: int
    turns: list[Turn] = field(default_factory=list)

    @property
    def model_turns(self) -> int:
        return sum(t.source == "model" for t in self.turns)

    @property
    def turns_left(self) -> int:
        """Model turns still allowed after the current one (0: this is the last)."""
        return self.max_turns - self.model_turns

    @property
    def last(self) -> Turn:
        """The latest turn (after a model turn: that turn)."""
        return self.turns[-1]

    @property
    def model_text(self) -> str:
        """The model's own text, every turn joined (what a task's verifier grades: an
        environment's text never earns the model a reward)."""
        return "".join(t.text for t in self.turns if t.source == "model")

    @property
    def text(self) -> str:
        """The whole transcript after the prompt, environment turns included."""
        return "".join(t.text for t in self.turns)

    @property
    def response_ids(self) -> list[int]:
        return [i for t in self.turns for i in t.token_ids]


@runtime_checkable
class Environment(Protocol):
    """The other side of an episode. ``respond`` is called after every model turn that
    ended inside the token budget; an environment may also define ``respond_batch(episodes)
    -> list[Step]`` (used instead, so that e.g. a step's tool calls run concurrently)."""

    max_turns: int
    """Model turns an episode may take; at the last one (``turns_left == 0``) any text the
    environment returns is ignored and the episode ends."""

    def respond(self, episode: Episode) -> Step:
        """What follows the model's latest turn (``episode.last``)."""
        ...

    def close(self) -> None:
        """Release what the environment holds (sandboxes, connections)."""
        ...


def respond_all(env: Environment, episodes: Sequence[Episode]) -> list[Step]:
    """``env.respond`` of each episode, in order; through ``respond_batch`` when it has one."""
    if not episodes:
        return []
    batch = getattr(env, "respond_batch", None)
    steps = batch(list(episodes)) if batch is not None else [env.respond(e) for e in episodes]
    if len(steps) != len(episodes):
        raise RuntimeError(f"{type(env).__name__} answered {len(steps)} steps for {len(episodes)} episodes")
    return steps


class OneTurn:
    """A single-turn task as an environment: the episode ends after the model's one turn and
    the task's verifier grades it (every task without tools)."""

    max_turns = 1

    def respond(self, episode: Episode) -> Step:
        return Step()

    def close(self) -> None:
        """Nothing held."""
