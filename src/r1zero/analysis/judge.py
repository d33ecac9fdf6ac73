"""LLM judge that confirms (or rejects) keyword-detected self-reflection.

Keywords over-count ("let me double-check the units" with nothing re-examined) and
under-count (reflection phrased without a keyword). As in Liu et al. (2025), a judge model
reads each response and says whether it *genuinely* re-examines its own reasoning. The judge
is any chat model behind an OpenAI-compatible endpoint; it is greedy and seeded.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from r1zero.grading.verdicts import parse_verdict
from r1zero.rollout.base import RolloutBackend, SamplingParams

MAX_RESPONSE_CHARS = 12_000
"""Longer responses are cut in the middle (start and end kept): reflection is judged on the
reasoning, and a 3000-token response fits comfortably."""

JUDGE_PROMPT = """You are auditing a model's solution to a math problem for self-reflection.

Self-reflection means the response genuinely re-examines its own earlier reasoning: it goes \
back to check a previous step or result, notices a possible mistake, or reconsiders its \
approach, and that re-examination actually happens in the text. Merely using words like \
"verify" or "double-check" without re-examining anything does NOT count; neither does a \
single straight-line solution.

Problem:
{question}

Response:
<<<
{response}
>>>

Does the response genuinely re-examine its own reasoning? Give a one-sentence reason, then \
end with exactly "Verdict: YES" or "Verdict: NO"."""



def judge_prompt(question: str, response: str) -> str:
    """The judge's user message for one (question, response) pair."""
    if len(response) > MAX_RESPONSE_CHARS:
        half = MAX_RESPONSE_CHARS // 2
        response = response[:half] + "\n[... middle omitted ...]\n" + response[-half:]
    return JUDGE_PROMPT.replace("{question}", question).replace("{response}", response)


def select_for_judging(keyword_flags: Sequence[bool], limit: int, seed: int) -> list[int]:
    """Indices of at most ``limit`` responses, half keyword hits when there are enough.

    Stratified because reflection is rare in base models: a uniform sample would hold almost
    no hits, and agreement would be measured on the easy negatives only. Deterministic in
    ``seed``. Rates over the subset are weighted back by `stratified_rate`.
    """
    hits = [i for i, f in enumerate(keyword_flags) if f]
    misses = [i for i, f in enumerate(keyword_flags) if not f]
    rng = random.Random(seed)
    rng.shuffle(hits)
    rng.shuffle(misses)
    n_hits = min(len(hits), max(limit // 2, limit - len(misses)))
    chosen = hits[:n_hits] + misses[: limit - n_hits]
    return sorted(chosen)


def stratified_rate(keyword_flags: Sequence[bool], judged: dict[int, bool]) -> float:
    """Judge-positive rate over *all* responses, estimated from the stratified subset:
    P(judge) = P(hit) P(judge | hit) + P(miss) P(judge | miss)."""
    n = len(keyword_flags)
    if not n or not judged:
        return float("nan")
    p_hit = sum(keyword_flags) / n
    rate = 0.0
    for stratum, weight in ((True, p_hit), (False, 1 - p_hit)):
        verdicts = [v for i, v in judged.items() if keyword_flags[i] == stratum]
        if weight > 0:
            if not verdicts:
                return float("nan")  # a non-empty stratum was not judged at all
            rate += weight * sum(verdicts) / len(verdicts)
    return rate


def run_judge(
    backend: RolloutBackend,
    items: Sequence[tuple[str, str]],
    *,
    max_new_tokens: int = 512,
    seed: int = 0,
) -> list[bool | None]:
    """Judge each (question, response); None where the judge's reply was unclear."""
    if not items:
        return []
    params = SamplingParams(n=1, temperature=0.0, top_p=1.0, max_new_tokens=max_new_tokens,
                            logprobs=False)
    prompts = [judge_prompt(q, r) for q, r in items]
    completions = backend.generate(prompts, params, [seed + i for i in range(len(prompts))])
    return [parse_verdict(c.text) for c in completions]
