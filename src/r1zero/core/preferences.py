"""Online DPO on verifiable rewards: preference pairs from each group, and the DPO loss as
per-sequence coefficients of the policy-gradient machinery. Pure tensor functions.

From each group of G responses to one prompt the best- and the worst-reward responses form
a pair (chosen c, rejected r); a group whose rewards all agree gives no pair (Xiong et al.
2025, "A Minimalist Approach to LLM Reasoning"; Guo et al. 2024, online AI feedback). The
DPO loss of a pair (Rafailov et al. 2023, eq. 7), with s = Σ_t log π_θ(o_t) and
q = Σ_t log π_ref(o_t) the sequence log-probs:

    z = β [(s_c − q_c) − (s_r − q_r)]        L = −log σ(z) = softplus(−z)
    ∂L/∂s_c = −β σ(−z)                       ∂L/∂s_r = +β σ(−z)

The KL-free variant drops the reference (q = 0). Because L depends on a pair only through
s_c and s_r, its gradient is that of the linear surrogate Σ_i a_i s_i with a_i the
derivatives above evaluated at the current weights. The learner therefore runs DPO as the
policy-gradient loss −A_i Σ_t log π_θ(o_t) (``policy_term="logprob"``) with per-sequence
advantages computed from a no-grad pass at the start of each optimizer step
(`dpo_advantages`); under ``seq-mean-token-sum`` (weights 1/N_step, N_step = 2P responses
for P pairs) the step's gradient is exactly that of the pairs' mean DPO loss.
"""

from __future__ import annotations

import torch
from torch import Tensor


def best_worst_pairs(rewards: Tensor, group_size: int) -> list[tuple[int, int]]:
    """``(chosen, rejected)`` response indices, one pair per group whose rewards differ:
    the first response with the group's highest reward and the first with its lowest.
    ``rewards`` ``[B*G]``, prompt-major."""
    groups = rewards.view(-1, group_size)  # [B, G]
    pairs = []
    for g, r in enumerate(groups):
        hi, lo = int(torch.argmax(r)), int(torch.argmin(r))  # first occurrence of each
        if r[hi] > r[lo]:
            pairs.append((g * group_size + hi, g * group_size + lo))
    return pairs


def dpo_loss(chosen: Tensor, rejected: Tensor, ref_chosen: Tensor | None,
             ref_rejected: Tensor | None, beta: float) -> tuple[Tensor, Tensor]:
    """Per-pair DPO loss softplus(−z) and margin z, ``[P]`` each (module docstring).
    ``ref_*`` None = the KL-free variant."""
    margin = chosen - rejected  # [P]
    if ref_chosen is not None:
        margin = margin - (ref_chosen - ref_rejected)
    z = beta * margin  # [P]
    return torch.nn.functional.softplus(-z), z


def dpo_advantages(z: Tensor, beta: float) -> tuple[Tensor, Tensor]:
    """Advantages ``(A_c, A_r)`` ``[P]`` that make the loss −A_i Σ_t log π_θ under
    seq-mean-token-sum (weight 1/(2P)) have the gradient of the mean DPO loss over P pairs:

        A_c = 2 β σ(−z),   A_r = −A_c
    """
    a = 2.0 * beta * torch.sigmoid(-z)  # [P]
    return a, -a
