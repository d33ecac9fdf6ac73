"""The episode driver: model turns from a rollout backend, environment turns from an
`Environment`, over one growing context per episode, token in and token out.

Turn 0 is exactly the single-turn call (``generate(prompts, params, seeds)``: G samples
per prompt), so a one-turn environment returns the backend's completions unchanged. Each
later model turn is one ``generate`` call over every live episode, whose prompt is the
episode's context as token ids: the prompt's ids, then every token so far as sampled or
as the environment's text was tokenised when it was appended. Nothing is re-tokenised, so
the learner trains on exactly the tokens the sampler produced.

The token budget ``params.max_new_tokens`` covers everything after the prompt (model and
environment tokens), so a context never exceeds prompt + budget, as in single-turn runs;
an episode whose budget runs out ends truncated (finish_reason "length"). Turn k of
episode (prompt i, sample j) is seeded with derive_seed(derive_seed(seed_i, j), "turn", k):
independent of batching and of how prompts are sharded over engines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from r1zero.data import Problem
from r1zero.envs.base import Environment, Episode, Step, Turn, respond_all
from r1zero.rollout.base import Completion, Prompt, RolloutBackend, SamplingParams
from r1zero.tasks import TaskVerdict
from r1zero.utils import derive_seed

EPISODE_KEY = "episode"
"""Where a completion keeps its `EpisodeSummary` (``Completion.extra``)."""


@dataclass(frozen=True)
class EpisodeSummary:
    """What an episode leaves besides its tokens (``Completion.extra["episode"]``)."""

    turns: int
    """Model turns taken."""
    model_text: str
    """The model's own text (what the task's verifier grades)."""
    env_tokens: int
    stats: dict[str, float]
    """The environment's `Step.stats`, summed over the episode."""
    turn_rewards: tuple[float, ...]
    verdict: TaskVerdict | None
    """The environment's own verdict, or None (the task's verifier decides)."""
    ended: str
    """done (the environment ended it), turn_limit, or length (the token budget ran out)."""


@dataclass
class _Tally:
    """An episode's running rewards, statistics and end."""

    rewards: list[float] = field(default_factory=list)
    stats: dict[str, float] = field(default_factory=dict)
    verdict: TaskVerdict | None = None
    ended: str = ""

    def add(self, step: Step) -> None:
        self.rewards.append(step.reward)
        for k, v in step.stats.items():
            self.stats[k] = self.stats.get(k, 0.0) + float(v)


def run_episodes(backend: RolloutBackend, env: Environment, tokenizer, problems: Sequence[Problem],
                 prompts: Sequence[Prompt], params: SamplingParams,
                 seeds: Sequence[int]) -> list[Completion]:
    """``len(prompts) * params.n`` episodes, prompt-major like ``generate``; each comes back
    as one `Completion` whose ``token_ids`` hold every token after the prompt,
    ``loss_mask`` marks the environment's (0), and ``extra["episode"]`` its summary."""
    first = backend.generate(prompts, params, seeds)
    episodes = [Episode(problems[c.prompt_index], list(c.prompt_token_ids), env.max_turns) for c in first]
    own_seeds = [derive_seed(seeds[c.prompt_index], c.sample_index) for c in first]
    tallies = [_Tally() for _ in first]
    for ep, c in zip(episodes, first):
        ep.turns.append(Turn("model", c.text, list(c.token_ids), c.logprobs, c.finish_reason))
    live = environment_turns(env, tokenizer, episodes, tallies, range(len(first)), params)
    while live:
        model_turns(backend, tokenizer, [episodes[k] for k in live], params, [own_seeds[k] for k in live])
        live = environment_turns(env, tokenizer, episodes, tallies, live, params)
    return [episode_completion(c, ep, tally) for c, ep, tally in zip(first, episodes, tallies)]


def environment_turns(env: Environment, tokenizer, episodes: list[Episode], tallies: list[_Tally],
                      live: Sequence[int], params: SamplingParams) -> list[int]:
    """Ask the environment about each live episode's latest model turn and append its text
    where the episode goes on; returns the episodes that get another model turn. A turn
    that spent the budget ends its episode without asking."""
    ask = []
    for k in live:
        if episodes[k].last.finish_reason == "length":
            tallies[k].ended = "length"
        else:
            ask.append(k)
    going = []
    for k, step in zip(ask, respond_all(env, [episodes[k] for k in ask])):
        ep, tally = episodes[k], tallies[k]
        tally.add(step)
        if step.text is None:
            tally.ended, tally.verdict = "done", step.verdict
        elif ep.turns_left <= 0:
            tally.ended = "turn_limit"
        elif append_env_turn(ep, tokenizer, step.text, params):
            going.append(k)
        else:
            tally.ended = "length"
    return going


def append_env_turn(ep: Episode, tokenizer, text: str, params: SamplingParams) -> bool:
    """Tokenise the environment's ``text`` once and append it, cut to the budget left;
    True when a token is left for the model. After a model turn that ended its message
    (not at a stop string) the text becomes a new user message of the chat template; an
    empty text appends nothing (the model simply goes on)."""
    last = ep.last
    ended = last.finish_reason == "stop" and not any(s and last.text.endswith(s) for s in params.stop)
    if text and ended:
        text = after_end_of_message(tokenizer, last.token_ids[-1:], text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    room = params.max_new_tokens - len(ep.response_ids)
    kept = ids[:room]
    ep.turns.append(Turn("env", text if len(kept) == len(ids) else tokenizer.decode(kept), kept))
    return len(ids) < room


def after_end_of_message(tokenizer, end_ids: list[int], text: str) -> str:
    """``text`` (without its surrounding newlines) as a new user message of the tokenizer's
    chat template followed by the assistant's header: what comes after a model message
    closed by the token(s) ``end_ids`` (already in the context). Without a chat template,
    or where the template does not close a message with that token, ``text`` as it is."""
    if not getattr(tokenizer, "chat_template", None) or not end_ids:
        return text
    mark = "\x00r1zero-reply\x00"  # a reply nothing else in a template contains
    end = mark + tokenizer.decode(end_ids)
    convo = [{"role": "user", "content": "question"}, {"role": "assistant", "content": mark}]
    full = tokenizer.apply_chat_template([*convo, {"role": "user", "content": text.strip("\n")}],
                                         tokenize=False, add_generation_prompt=True)
    at = full.find(end)
    return full[at + len(end):] if at >= 0 else text


def model_turns(backend: RolloutBackend, tokenizer, episodes: list[Episode], params: SamplingParams,
                own_seeds: list[int]) -> None:
    """One more model turn for each episode: a ``generate`` call over their contexts (token
    ids), one sample each, with the longest budget left; a turn that runs past its own
    episode's budget is cut there (finish_reason "length"). Seeded samplers draw the same
    tokens whatever the budget, so the cut is the sample a smaller budget would give."""
    room = [params.max_new_tokens - len(ep.response_ids) for ep in episodes]
    turn = dataclasses.replace(params, n=1, max_new_tokens=max(room))
    contexts = [ep.prompt_ids + ep.response_ids for ep in episodes]
    seeds = [derive_seed(s, "turn", ep.model_turns) for s, ep in zip(own_seeds, episodes)]
    for ep, left, c in zip(episodes, room, backend.generate(contexts, turn, seeds)):
        ids, logprobs, text, finish = list(c.token_ids), c.logprobs, c.text, c.finish_reason
        if len(ids) > left:
            ids, finish = ids[:left], "length"
            logprobs = None if logprobs is None else logprobs[:left]
            text = tokenizer.decode(ids, skip_special_tokens=True)
        ep.turns.append(Turn("model", text, ids, logprobs, finish))


def episode_completion(first: Completion, ep: Episode, tally: _Tally) -> Completion:
    """The episode as one completion (its first turn's record when it has only that turn):
    every token after the prompt, the loss mask (0 on the environment's tokens) and the
    sampler's log-probs (0.0 on the environment's tokens: they are never read, the loss
    weight there is 0)."""
    summary = EpisodeSummary(
        turns=ep.model_turns, model_text=ep.model_text,
        env_tokens=sum(len(t.token_ids) for t in ep.turns if t.source == "env"),
        stats=dict(tally.stats), turn_rewards=tuple(tally.rewards), verdict=tally.verdict,
        ended=tally.ended)
    extra = {**first.extra, EPISODE_KEY: summary}
    if len(ep.turns) == 1:
        return dataclasses.replace(first, extra=extra)
    mask = [int(t.source == "model") for t in ep.turns for _ in t.token_ids]
    logprobs = None
    if all(t.logprobs is not None for t in ep.turns if t.source == "model"):
        logprobs = [lp for t in ep.turns for lp in (t.logprobs if t.source == "model" else [0.0] * len(t.token_ids))]
    return dataclasses.replace(
        first, token_ids=ep.response_ids, text=ep.text, logprobs=logprobs, extra=extra,
        finish_reason="length" if tally.ended == "length" else "stop",
        loss_mask=None if all(mask) else mask,
        token_versions=None)  # the first turn's only; the loop stamps the episode's version


# ----------------------------------------------------------------------------- verdicts
def summary_of(c: Completion) -> EpisodeSummary | None:
    """The completion's episode summary (None for a completion not made by the driver)."""
    return c.extra.get(EPISODE_KEY)


def graded_text(c: Completion) -> str:
    """What a task's verifier reads: the model's own text of the episode."""
    s = summary_of(c)
    return c.text if s is None else s.model_text


def episode_verdicts(completions: Sequence[Completion],
                     grade: Callable[[list[int]], list[TaskVerdict]]) -> list[TaskVerdict]:
    """Each episode's verdict: the environment's own where it gave one, else ``grade``'s
    (called once with the positions of those episodes: the task's verifier on their
    `graded_text`); per-turn rewards are added to the reward (component ``turns``)."""
    summaries = [summary_of(c) for c in completions]
    todo = [i for i, s in enumerate(summaries) if s is None or s.verdict is None]
    graded = dict(zip(todo, grade(todo))) if todo else {}
    out = []
    for i, s in enumerate(summaries):
        v = graded[i] if i in graded else s.verdict
        extra = sum(s.turn_rewards) if s is not None else 0.0
        if extra:
            v = dataclasses.replace(v, reward=v.reward + extra, components={**v.components, "turns": extra})
        out.append(v)
    return out
