"""Reward shaping that depends on the response's length or text, not only on the verifier:
DAPO's soft overlong punishment, and the cosine length-scaled reward and n-gram repetition
penalty of "Demystifying Long CoT". Pure functions, like the rest of ``core``; the trainer
composes them (`r1zero.train.trainer.shaped_rewards`, ``--reward.shaping``)."""

from __future__ import annotations

import torch
from torch import Tensor


def overlong_penalty(lengths: Tensor, max_len: int, cache: int) -> Tensor:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), ``[N]`` -> ``[N]``::

        R_len(y) = 0                                 |y| <= L_max - L_cache
                   ((L_max - L_cache) - |y|) / L_cache   L_max - L_cache < |y| <= L_max
                   -1                                L_max < |y|

    added to the verifier's reward. ``max_len`` is L_max (the generation budget),
    ``cache`` is L_cache (> 0; the paper uses 4096 of 20480). Lengths in tokens.
    """
    if cache <= 0 or cache > max_len:
        raise ValueError(f"cache must be in (0, max_len], got cache={cache}, max_len={max_len}")
    lengths = lengths.to(torch.float)
    start = max_len - cache
    ramp = (start - lengths) / cache  # [N], <= 0 past the start
    return torch.where(lengths <= start, torch.zeros_like(lengths),
                       torch.where(lengths <= max_len, ramp, torch.full_like(lengths, -1.0)))


# ----------------------------------------------------------------------------- Yeo et al. 2025
def cosine_value(length: Tensor, max_len: int, at_zero: float, at_max: float) -> Tensor:
    """The cosine schedule of "Demystifying Long CoT" (Yeo et al. 2025, eq. 1)::

        CosFn(t, T, r_0, r_T) = r_T + ½ (r_0 − r_T) (1 + cos(π t / T))

    equal to r_0 at length t = 0 and r_T at t = T (lengths past T are read as T)."""
    progress = length.to(torch.float).clamp(max=max_len) / max_len
    return at_max + 0.5 * (at_zero - at_max) * (1.0 + torch.cos(progress * torch.pi))


def cosine_reward(lengths: Tensor, correct: Tensor, truncated: Tensor, max_len: int, *,
                  correct_at_zero: float, correct_at_max: float, wrong_at_zero: float,
                  wrong_at_max: float, exceed: float) -> Tensor:
    """The cosine length-scaled reward, ``[N]`` -> ``[N]``: replaces the verifier's 0/1.

        correct:    CosFn(|y|, L, r_0^c, r_L^c)     shorter correct answers earn more (2 -> 1)
        wrong:      CosFn(|y|, L, r_0^w, r_L^w)     shorter wrong answers lose more (−10 -> 0)
        truncated:  r_e                              ran out of budget (−10)

    L = ``max_len`` (the generation budget). Defaults (in `RewardConfig`) are the paper's.
    A short wrong answer is punished hardest, so the policy prefers thinking longer when it
    is unsure, while a correct one is still paid more for being brief."""
    value = torch.where(correct, cosine_value(lengths, max_len, correct_at_zero, correct_at_max),
                        cosine_value(lengths, max_len, wrong_at_zero, wrong_at_max))
    return torch.where(truncated, torch.full_like(value, exceed), value)


def repetition_penalty(text: str, ngram_size: int, penalty: float) -> float:
    """The n-gram repetition penalty of Yeo et al. 2025 (sequence form)::

        P_rep(y) = P · (1 − |distinct n-grams of y| / |n-grams of y|)

    over lower-cased whitespace words; 0 when y has fewer than n words. ``penalty`` P <= 0
    is the value of a response that is one n-gram repeated throughout."""
    if penalty > 0:
        raise ValueError(f"the repetition penalty must be <= 0, got {penalty}")
    words = text.lower().split()
    grams = [tuple(words[i:i + ngram_size]) for i in range(len(words) - ngram_size + 1)]
    if not grams:
        return 0.0
    return penalty * (1.0 - len(set(grams)) / len(grams))
