"""Pure metric functions: pass@k / maj@k for evaluation, and the policy-health numbers of training
(clip fractions, zero-variance groups, approximate KL, entropy) computed so they aggregate exactly.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import torch
from torch import Tensor

from r1zero.core.advantages import zero_variance_groups
from r1zero.core.corrections import mismatch_metrics
from r1zero.core.losses import clip_masks


# ----------------------------------------------------------------------------- evaluation
def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct (Chen et al. 2021, eq. 1).

        pass@k = 1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n-c+1}^{n} (1 - k / i)

    The product form avoids the huge binomials (n = 256, k = 128 overflows a float). It is
    1 when n - c < k: every size-k subset then contains a correct sample.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def mean_pass_at_k(num_samples: Sequence[int], num_correct: Sequence[int], k: int) -> float:
    """pass@k averaged over problems (each problem may have its own n)."""
    if len(num_samples) != len(num_correct) or not num_samples:
        raise ValueError("need one (n, c) pair per problem and at least one problem")
    return sum(pass_at_k(n, c, k) for n, c in zip(num_samples, num_correct)) / len(num_samples)


def maj_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool], k: int) -> float:
    """maj@k: 1.0 if the most frequent answer among the first k samples is correct, else 0.0.

    ``answers`` are canonical extracted answers (None = nothing extracted; never votes).
    Ties go to the answer seen first, so the result is deterministic. Samples with the same
    answer must share a verdict; the verdict of the first one is used.
    """
    if len(answers) != len(correct) or not 1 <= k <= len(answers):
        raise ValueError(f"need len(answers) == len(correct) >= k >= 1, got {len(answers)}, {len(correct)}, {k}")
    votes: dict[Hashable, int] = {}
    verdict: dict[Hashable, bool] = {}
    for answer, ok in zip(answers[:k], correct[:k]):
        if answer is None:
            continue
        votes[answer] = votes.get(answer, 0) + 1  # dicts keep first-seen order for the tie break
        verdict.setdefault(answer, bool(ok))
    if not votes:
        return 0.0
    winner = max(votes, key=votes.__getitem__)  # max returns the first of equal counts
    return 1.0 if verdict[winner] else 0.0


# ----------------------------------------------------------------------------- training
def masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of ``values`` over positions where ``mask`` is 1 (0 when the mask is empty)."""
    m = mask.to(values.dtype)
    return (values * m).sum() / m.sum().clamp(min=1.0)


def clip_fraction(
    ratio: Tensor, advantages: Tensor, mask: Tensor, *, clip_low: float, clip_high: float
) -> tuple[Tensor, Tensor]:
    """Share of response tokens clipped from below (A < 0) and from above (A > 0).

    ``ratio`` ``[N, T]``, ``advantages`` ``[N]`` or ``[N, T]``, ``mask`` ``[N, T]``. A high
    ``high`` fraction says clip_high binds (DAPO's motivation for clip-higher).
    """
    low, high, _ = clip_masks(ratio, advantages, clip_low=clip_low, clip_high=clip_high)  # [N, T]
    return masked_mean(low.to(ratio.dtype), mask), masked_mean(high.to(ratio.dtype), mask)


def zero_variance_group_share(rewards: Tensor, group_size: int) -> float:
    """Share of prompts whose G rewards all agree (no gradient under a group baseline)."""
    return zero_variance_groups(rewards, group_size).float().mean().item()


def approx_kl(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor) -> Tensor:
    """Mean k3 estimate of KL(pi_old || pi_theta) on pi_old's samples (Schulman 2020).

        log r = logp - old_logp;   KL ~ mean(exp(log r) - 1 - log r)   (>= 0, unbiased)
    """
    log_r = (logprobs - old_logprobs).detach()  # [N, T]
    return masked_mean(torch.exp(log_r) - 1.0 - log_r, mask)


def entropy_from_logits(logits: Tensor, *, chunk_size: int | None = None) -> Tensor:
    """Token entropy H = logsumexp(z) - sum softmax(z) * z, ``[..., V]`` -> ``[...]``.

    With ``chunk_size`` the leading positions are processed ``chunk_size`` rows at a time, so
    the softmax of a ``[N*T, V]`` block with a 150k vocabulary is never materialised at once.
    Differentiable (pass ``logits.detach()`` for a metric only).
    """
    flat = logits.reshape(-1, logits.shape[-1])  # [N*T, V]
    step = flat.shape[0] if chunk_size is None else chunk_size
    parts = []
    for start in range(0, flat.shape[0], max(step, 1)):
        z = flat[start:start + step].float()  # [c, V]; fp32 so bf16 logits keep their precision
        probs = torch.softmax(z, dim=-1)  # [c, V]
        parts.append(torch.logsumexp(z, dim=-1) - (probs * z).sum(dim=-1))  # [c]
    out = torch.cat(parts) if parts else flat.new_zeros(0)
    return out.to(logits.dtype).reshape(logits.shape[:-1])  # [...]


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """1 − Var[G − V] / Var[G] over response tokens (``[N, T]`` each): 1 = the critic
    predicts the returns, 0 = no better than their mean, < 0 = worse than that."""
    m = mask.bool()
    g, v = returns[m].double(), values[m].double()
    var = g.var(unbiased=False)
    return float("nan") if g.numel() < 2 or var == 0 else float(1.0 - (g - v).var(unbiased=False) / var)


def summarize_value_stats(stats: Mapping[str, Tensor | float]) -> dict[str, float]:
    """`value_loss` stats summed over micro-batches and ranks -> ``critic/*`` metrics."""
    tokens = max(float(stats["value_tokens"]), 1.0)
    return {"critic/value_loss": float(stats["value_loss"]),
            "critic/value_clip_frac": float(stats["value_clip_count"]) / tokens,
            "critic/value_mse": float(stats["value_sq_err_sum"]) / tokens}


def add_stats(totals: dict[str, Tensor], stats: Mapping[str, Tensor | float]) -> dict[str, Tensor]:
    """Fold one micro-batch's (or rank's) statistics into ``totals`` in place: scalars add,
    1-D per-token samples (the ``mm_*`` mismatch samples) concatenate. In a fixed order,
    so the result does not depend on timing (bitwise reproducible)."""
    for key, value in stats.items():
        v = value.detach().cpu() if isinstance(value, Tensor) else torch.tensor(float(value))
        if key not in totals:
            totals[key] = v
        elif v.dim() == 0:
            totals[key] = totals[key] + v
        else:
            totals[key] = torch.cat([totals[key], v])
    return totals


def summarize_loss_stats(stats: Mapping[str, Tensor | float]) -> dict[str, float]:
    """Turn ``policy_loss`` stats, summed over the step's micro-batches and ranks, into metrics.

    Every key of ``stats`` is a sum, so adding dicts is exact; divide here once. Names follow
    the metric catalogue: ``loss/*`` are step totals, ``policy/*`` token means.
    """
    def get(key: str) -> float:
        value = stats[key]
        return float(value.item() if isinstance(value, Tensor) else value)

    tokens = max(get("num_tokens"), 1.0)
    out = {
        "loss/total": get("loss"),
        "loss/policy": get("pg_loss"),
        "policy/clip_frac_low": get("clip_low_count") / tokens,
        "policy/clip_frac_high": get("clip_high_count") / tokens,
        "policy/clip_frac_dual": get("dual_clip_count") / tokens,
        "policy/approx_kl": get("approx_kl_sum") / tokens,
        "policy/ratio_mean": get("ratio_sum") / tokens,
    }
    optional = {
        "kl_sum": "policy/kl_ref", "entropy_sum": "policy/entropy",
        "tis_weight_sum": "policy/tis_weight_mean", "tis_capped_count": "policy/tis_capped_frac",
    }
    for key, name in optional.items():
        if key in stats:
            out[name] = get(key) / tokens
    if "kl_loss" in stats:
        out["loss/kl"] = get("kl_loss")
    out.update(mismatch_metrics(stats))
    if "dpo_pairs" in stats:  # online DPO, per pair: the loss, β-free margin, and z > 0 share
        pairs = max(get("dpo_pairs"), 1.0)
        out.update({"loss/dpo": get("dpo_loss_sum") / pairs, "dpo/margin": get("dpo_margin_sum") / pairs,
                    "dpo/accuracy": get("dpo_correct_count") / pairs, "dpo/pairs": get("dpo_pairs")})
    return out
