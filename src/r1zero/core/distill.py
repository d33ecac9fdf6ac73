"""On-policy distillation as token advantages (pure tensor math).

The student samples o ~ π_S; the teacher scores the student's own tokens. Each token's
reward is the negative per-token reverse-KL estimate (Agarwal et al. 2024, GKD; Thinking
Machines 2025, "On-Policy Distillation"):

    r_t = log π_T(o_t | q, o_<t) − log π_S(o_t | q, o_<t)          E_{o~π_S}[Σ_t r_t] = −KL(π_S || π_T)

It is used as the token's advantage with no discount (each token answers for itself), mixed
with the sequence advantage A_i of the verifiable reward by the weight w (--teacher.weight):

    A_t = (1 − w) A_i + w r_t            w = 1: pure distillation; w = 0: the RL advantage alone
"""

from __future__ import annotations

import torch
from torch import Tensor


def teacher_rewards(teacher_logprobs: Tensor, student_logprobs: Tensor) -> Tensor:
    """``[T]`` r_t = log π_T(o_t) − log π_S(o_t) of one response's tokens."""
    return teacher_logprobs - student_logprobs


def distill_advantages(advantage: float, teacher_logprobs: Tensor, student_logprobs: Tensor,
                       weight: float) -> Tensor:
    """``[T]`` A_t = (1 − w) A_i + w r_t for one response (A_i: its sequence advantage)."""
    return (1.0 - weight) * advantage + weight * teacher_rewards(teacher_logprobs, student_logprobs)


def as_tensor(values: list[float]) -> Tensor:
    """Log-probs of one response as a float64 vector (the differences are taken in fp64)."""
    return torch.tensor(values, dtype=torch.float64)
