"""Outcome-reward advantages for group-sampled rollouts: baselines, std scaling, broadcast.

Every function is pure: a flat reward tensor in, a tensor out. Rewards are laid out
prompt-major, ``[B*G]`` with the G samples of prompt b at ``b*G : (b+1)*G`` (the order
`RolloutBackend.generate` returns), so a group is a row of ``rewards.view(B, G)``.

Notation: R_{b,i} is the reward of sample i of prompt b; mean_b, std_b are over the group.

    group_mean     A = R - mean_b(R)                       GRPO (Shao et al. 2024, eq. 3 / §4.1.2),
                                                           Dr. GRPO (Liu et al. 2025, eq. 3)
    leave_one_out  A = R_i - 1/(G-1) * sum_{j != i} R_j    RLOO (Ahmadian et al. 2024, eq. 6)
    batch_mean     A = R - mean over the whole batch        REINFORCE++ (Hu 2025, §3.2)
    none           A = R

    std_scale = "group": divide by std_b(R) + eps     (GRPO)
                "batch": divide by std(R over batch) + eps  (REINFORCE++; LitePPO's "batch std")
                "none" : no division                  (Dr. GRPO change 1, RLOO)

Defaults (``std_unbiased=True``, ``eps=1e-6``) follow the public GRPO reference code: verl's
``compute_grpo_outcome_advantage`` divides by ``torch.std`` (Bessel-corrected, unbiased) plus
1e-6, and TRL 1.16 also uses a Bessel-corrected std (``trl.trainer.utils.nanstd``) but adds
1e-4. Neither paper states the estimator. The choice barely matters for rewards in {0, 1}
except through eps, which only decides what a zero-variance group gets: 0 / (0 + eps) = 0
either way. An all-agree group gets exactly 0 under the group baselines whatever the
reward values (``compute_advantages`` zeroes it: float means are not exact).
"""

from __future__ import annotations

import torch
from torch import Tensor

from r1zero.core.choices import BASELINES, STD_SCALES, Baseline, StdScale


def group_view(rewards: Tensor, group_size: int) -> Tensor:
    """View flat prompt-major rewards ``[B*G]`` as ``[B, G]`` (one row per prompt).

    Raises ValueError when the length is not a multiple of ``group_size``.
    """
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be 1-D [B*G], got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(
            f"len(rewards)={rewards.numel()} is not a multiple of group_size={group_size}"
        )
    return rewards.view(-1, group_size)  # [B, G]


def group_mean_baseline(rewards: Tensor, group_size: int) -> Tensor:
    """b_i = mean_{j in group(i)} R_j, broadcast back to ``[B*G]``."""
    grouped = group_view(rewards, group_size)  # [B, G]
    return grouped.mean(dim=1, keepdim=True).expand_as(grouped).reshape(-1)  # [B*G]


def leave_one_out_baseline(rewards: Tensor, group_size: int) -> Tensor:
    """RLOO baseline b_i = (sum_j R_j - R_i) / (G - 1), ``[B*G]`` -> ``[B*G]``.

    R_i - b_i = G/(G-1) * (R_i - mean): the group-mean advantage scaled up by G/(G-1), and
    unbiased because b_i does not depend on sample i (Kool et al. 2019; Ahmadian et al. 2024).
    """
    if group_size < 2:
        raise ValueError("leave_one_out baseline needs group_size >= 2")
    grouped = group_view(rewards, group_size)  # [B, G]
    totals = grouped.sum(dim=1, keepdim=True)  # [B, 1]
    return ((totals - grouped) / (group_size - 1)).reshape(-1)  # [B*G]


def reward_std(rewards: Tensor, group_size: int, scope: StdScale, *, unbiased: bool = True) -> Tensor:
    """Std of the raw rewards per group (``scope="group"``) or over the batch (``"batch"``),
    broadcast to ``[B*G]``; ``"none"`` gives ones. A group of one has std 0 (not NaN)."""
    grouped = group_view(rewards, group_size)  # [B, G]
    if scope == "none":
        return torch.ones_like(rewards)
    if scope == "group":
        # A single sample has no spread; torch.std(unbiased) would return NaN.
        std = grouped.std(dim=1, keepdim=True, correction=int(unbiased)) if group_size > 1 \
            else torch.zeros_like(grouped[:, :1])  # [B, 1]
        return std.expand_as(grouped).reshape(-1)  # [B*G]
    if scope == "batch":
        if rewards.numel() < 2:
            return torch.zeros_like(rewards)
        return rewards.std(correction=int(unbiased)).expand_as(rewards)  # [B*G]
    raise ValueError(f"std_scale must be one of {STD_SCALES}, got {scope!r}")


def compute_advantages(
    rewards: Tensor,
    group_size: int,
    *,
    baseline: Baseline = "group_mean",
    std_scale: StdScale = "group",
    std_unbiased: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """Sequence-level advantages A = (R - b) / (s + eps), ``[B*G]`` -> ``[B*G]``.

    Args:
        rewards: ``[B*G]`` prompt-major outcome rewards (float).
        group_size: G, samples per prompt.
        baseline: b, see the module table (group_mean | leave_one_out | batch_mean | none).
        std_scale: s = std of the raw rewards over the group, the batch, or 1 ("none", and
            then eps is not added either: Dr. GRPO's A = R - mean exactly).
        std_unbiased: Bessel-corrected std (the GRPO reference code's torch.std default).
        eps: added to the std so zero-variance groups get A = 0 instead of 0/0.

    Returns:
        ``[B*G]`` advantages, same dtype as ``rewards``. No gradient flows (rewards are data).
    """
    rewards = rewards.detach()
    if baseline == "group_mean":
        base = group_mean_baseline(rewards, group_size)  # [B*G]
    elif baseline == "leave_one_out":
        base = leave_one_out_baseline(rewards, group_size)  # [B*G]
    elif baseline == "batch_mean":
        group_view(rewards, group_size)  # validate the layout even though groups are unused
        base = rewards.mean().expand_as(rewards)  # [B*G]
    elif baseline in ("none", "value"):  # value: the critic's GAE makes them token-level
        base = torch.zeros_like(rewards)
    else:
        raise ValueError(f"baseline must be one of {BASELINES}, got {baseline!r}")
    centred = rewards - base  # [B*G]
    if baseline in ("group_mean", "leave_one_out"):
        # A group whose rewards all agree carries no signal: its advantage is exactly 0.
        # Float32 means are not exact (eight 0.1s average to 0.1 + 7e-9), and dividing that
        # residue by std + eps = 1e-6 once gave A = -0.0075 to countdown's format reward.
        agree = zero_variance_groups(rewards, group_size).repeat_interleave(group_size)  # [B*G]
        centred = centred.masked_fill(agree, 0.0)
    if std_scale == "none":
        return centred
    return centred / (reward_std(rewards, group_size, std_scale, unbiased=std_unbiased) + eps)


def zero_variance_groups(rewards: Tensor, group_size: int) -> Tensor:
    """``[B]`` bool: True where every reward of the group is equal.

    Under any group baseline such a group has A = 0 for all samples and contributes no policy
    gradient (only KL / entropy terms); DAPO's dynamic sampling drops and resamples them.
    Exact equality is intended: rewards are verifier outputs, not noisy floats.
    """
    grouped = group_view(rewards, group_size)  # [B, G]
    return (grouped == grouped[:, :1]).all(dim=1)  # [B]


def keep_mask_nonzero_variance(rewards: Tensor, group_size: int) -> Tensor:
    """``[B*G]`` bool: True for samples whose group has some reward spread (DAPO filter)."""
    keep = ~zero_variance_groups(rewards, group_size)  # [B]
    return keep.repeat_interleave(group_size)  # [B*G]


def broadcast_to_tokens(advantages: Tensor, mask: Tensor) -> Tensor:
    """Give every response token its sequence's advantage: ``[N]``, ``[N, T]`` -> ``[N, T]``.

    Padding positions get 0 so that a masked sum never picks up a stray advantage.
    """
    if advantages.dim() == 2:
        return advantages * mask.to(advantages.dtype)  # [N, T]
    return advantages.unsqueeze(1) * mask.to(advantages.dtype)  # [N, 1] * [N, T] -> [N, T]


# ----------------------------------------------------------------------------- PPO (critic)
def gae(values: Tensor, rewards: Tensor, mask: Tensor, *, gamma: float = 1.0,
        lam: float = 1.0) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016) for a sequence reward paid at
    the last response token, ``[N, T]`` advantages and returns from ``[N, T]`` values.

        r_t = R on the last token of o_i, else 0;  V(s_{|o_i|}) = 0 (terminal)
        δ_t = r_t + γ V(s_{t+1}) − V(s_t)
        A_t = Σ_{l >= 0} (γλ)^l δ_{t+l}          G_t = A_t + V(s_t)  (the value targets)

    With γ = λ = 1 (Open-Reasoner-Zero's setting, the default) A_t = R − V(s_t). ``mask``
    marks response tokens (1) and padding (0); responses are left-aligned. Values on
    padding are ignored; the outputs are 0 there.
    """
    m = mask.to(values.dtype)  # [N, T]
    v = values.detach() * m  # [N, T]
    lengths = m.sum(dim=1).long()  # [N]
    n, t_max = v.shape
    r = torch.zeros_like(v)  # [N, T]
    has = lengths > 0
    r[has, lengths[has] - 1] = rewards.to(v.dtype)[has]
    next_v = torch.cat([v[:, 1:], torch.zeros(n, 1, dtype=v.dtype, device=v.device)], dim=1)  # [N, T]
    delta = (r + gamma * next_v - v) * m  # [N, T]; V past the end is 0 (padding is masked)
    adv = torch.zeros_like(v)
    running = torch.zeros(n, dtype=v.dtype, device=v.device)
    for t in range(t_max - 1, -1, -1):  # one [N] vector op per position
        running = delta[:, t] + gamma * lam * running * m[:, t]
        adv[:, t] = running
    adv = adv * m
    return adv, (adv + v) * m
