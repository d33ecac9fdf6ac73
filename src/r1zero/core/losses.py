"""Per-token policy-gradient terms and the step-normalised aggregation that turns them into a loss.

Pure tensor functions. Shapes: N sequences in a micro-batch, T padded response length;
``mask`` ``[N, T]`` is 1 on response tokens that enter the loss, 0 on padding.

The one idea that makes the update independent of micro-batch size, accumulation steps and
world size: every token gets a *weight* computed from statistics of the **whole optimizer
step** (a `LossNormalizer`), and a micro-batch's loss is ``sum(per_token_loss * weight)``.
The step loss is then a plain sum over micro-batches (and ranks), so summing their
gradients reproduces the full-batch gradient exactly.

    aggregation               weight of token t of response i    reference
    token-mean                1 / T_step                        DAPO (Yu et al. 2025, eq. 8)
    seq-mean-token-mean       1 / (N_step * |o_i|)              GRPO (Shao et al. 2024, eq. 3)
    seq-mean-token-sum        1 / N_step                        REINFORCE / RLOO on log pi(o_i)
    seq-mean-token-sum-norm   1 / (N_step * C)                  Dr. GRPO (Liu et al. 2025, eq. 3)

T_step = response tokens in the step, N_step = responses in the step, |o_i| = tokens of
response i, C = a constant (the generation budget, max_new_tokens, in the Dr. GRPO code).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import Tensor

from r1zero.core.algorithms import AlgorithmConfig
from r1zero.core.choices import (  # noqa: F401  (re-exported: the switches this module implements)
    AGGREGATIONS,
    KL_ESTIMATORS,
    OBJECTIVES,
    POLICY_TERMS,
    RATIO_LEVELS,
    SAMPLE_FILTERS,
    Aggregation,
    KLEstimator,
)
from r1zero.core.corrections import CORRECTIONS, Applied, apply_correction, mismatch_samples


# ----------------------------------------------------------------------------- normaliser
@dataclass(frozen=True)
class LossNormalizer:
    """Statistics of one whole optimizer step (all micro-batches, all ranks).

    Attributes:
        num_sequences: N_step, response rows in the step (a row with no response token still
            counts: it is a sample the policy produced, as in the GRPO / Dr. GRPO means).
        num_tokens: T_step, response tokens (mask == 1) in the step.
        constant: C for ``seq-mean-token-sum-norm`` (None when the mode does not need it).

    Across ranks: all-reduce (sum) ``torch.tensor([num_sequences, num_tokens])`` and rebuild;
    that is the only collective the loss needs, and it happens once per step, outside here.
    """

    num_sequences: float
    num_tokens: float
    constant: float | None = None


def step_normalizer(masks: Tensor | Iterable[Tensor], *, constant: float | None = None) -> LossNormalizer:
    """Build the `LossNormalizer` from the masks of every micro-batch of the step.

    Args:
        masks: one ``[N, T]`` mask or an iterable of them (one per micro-batch; T may differ).
        constant: C for ``seq-mean-token-sum-norm`` (pass ``cfg.norm_constant_for(max_new_tokens)``).
    """
    if isinstance(masks, Tensor):
        masks = [masks]
    num_sequences = 0.0
    num_tokens = 0.0
    for mask in masks:
        num_sequences += float(mask.shape[0])
        num_tokens += float(mask.sum().item())  # one host sync per micro-batch, once per step
    if constant is not None and constant <= 0:
        raise ValueError(f"constant must be > 0, got {constant}")
    return LossNormalizer(num_sequences=num_sequences, num_tokens=num_tokens, constant=constant)


def token_weights(mask: Tensor, normalizer: LossNormalizer, aggregation: Aggregation) -> Tensor:
    """Per-token loss weights of a micro-batch, ``[N, T]`` -> ``[N, T]`` (0 on padding).

    sum over the step's micro-batches of ``(x * w).sum()`` equals the chosen mean of x over
    the whole step (module table). Empty totals are clamped to 1 so an all-padding step gives
    a zero loss rather than NaN.
    """
    m = mask.to(torch.get_default_dtype()) if not mask.is_floating_point() else mask  # [N, T]
    n_step = max(normalizer.num_sequences, 1.0)
    if aggregation == "token-mean":
        return m / max(normalizer.num_tokens, 1.0)
    if aggregation == "seq-mean-token-mean":
        # |o_i| clamped to 1: an empty response contributes 0 either way, never 0/0.
        lengths = m.sum(dim=1, keepdim=True).clamp(min=1.0)  # [N, 1]
        return m / (lengths * n_step)
    if aggregation == "seq-mean-token-sum":
        return m / n_step
    if aggregation == "seq-mean-token-sum-norm":
        if normalizer.constant is None:
            raise ValueError("seq-mean-token-sum-norm needs LossNormalizer.constant (e.g. max_new_tokens)")
        return m / (n_step * normalizer.constant)
    raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def aggregate(values: Tensor, mask: Tensor, normalizer: LossNormalizer, aggregation: Aggregation) -> Tensor:
    """Scalar ``sum(values * token_weights)``: this micro-batch's share of the step mean."""
    return (values * token_weights(mask, normalizer, aggregation)).sum()


# ----------------------------------------------------------------------------- PG term
def clipped_pg_loss(
    logprobs: Tensor,
    old_logprobs: Tensor,
    advantages: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[Tensor, Tensor]:
    """Per-token PPO clipped surrogate (to minimise), with clip-higher and optional dual clip.

        rho_t = exp(logp_t - old_logp_t)
        l_t   = max(-A rho_t, -A clip(rho_t, 1 - clip_low, 1 + clip_high))   PPO eq. 7; DAPO eq. 10
        if dual_clip = c and A < 0:  l_t = min(l_t, -c A)                    Ye et al. 2020, eq. 5

    The dual clip bounds the loss of a negative-advantage token whose ratio has exploded
    (rho > c): the pessimistic max would otherwise grow without bound and its gradient is cut.

    Args:
        logprobs: ``[N, T]`` log pi_theta(o_t), with grad.
        old_logprobs: ``[N, T]`` log pi_old(o_t) (the learner's own scoring before the update).
        advantages: ``[N]`` or ``[N, T]``.
    Returns:
        (loss ``[N, T]``, ratio ``[N, T]`` detached). Padding is not masked here.
    """
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # [N, 1] | [N, T]
    ratio = torch.exp(logprobs - old_logprobs.detach())  # [N, T]
    unclipped = -adv * ratio  # [N, T]
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)  # [N, T]
    loss = torch.maximum(unclipped, clipped)  # [N, T]
    if dual_clip is not None:
        if dual_clip <= 1.0:
            raise ValueError(f"dual_clip must be > 1, got {dual_clip}")
        capped = torch.minimum(loss, -adv * dual_clip)  # [N, T]
        loss = torch.where(adv < 0, capped, loss)  # [N, T]
    return loss, ratio.detach()


def sequence_log_ratio(logprobs: Tensor, old_logprobs: Tensor, mask: Tensor) -> Tensor:
    """GSPO's sequence-level importance ratio as a per-token log-ratio, ``[N, T]``: every
    token of o_i carries the value of the sequence ratio and the gradient of its own log-prob.

        log s_i     = 1/|o_i| sum_t (log pi_theta(o_t) - log pi_old(o_t))      GSPO eq. 7
        log s_{i,t} = sg[log s_i] + log pi_theta(o_t) - sg[log pi_theta(o_t)]   GSPO-token eq. 13

    so exp(log s_{i,t}) = s_i, and under seq-mean-token-mean the clipped surrogate's gradient
    is -A_i s_i 1/|o_i| sum_t grad log pi_theta(o_t) when unclipped: GSPO's eq. 10. Padding
    (mask 0) is left out of |o_i| and the sum.
    """
    m = mask.to(logprobs.dtype)  # [N, T]
    lengths = m.sum(dim=1, keepdim=True).clamp(min=1.0)  # [N, 1]
    seq = ((logprobs - old_logprobs).detach() * m).sum(dim=1, keepdim=True) / lengths  # [N, 1]
    return seq + logprobs - logprobs.detach()  # [N, T]


def clip_masks(
    ratio: Tensor, advantages: Tensor, *, clip_low: float, clip_high: float, dual_clip: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Which tokens lost their gradient to clipping, ``[N, T]`` bool each.

    low: rho < 1 - clip_low and A < 0;  high: rho > 1 + clip_high and A > 0 (the only cases in
    which the clipped branch is the max); dual: A < 0 and rho > c (the -cA cap is active).
    """
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # [N, 1] | [N, T]
    low = (ratio < 1.0 - clip_low) & (adv < 0)  # [N, T]
    high = (ratio > 1.0 + clip_high) & (adv > 0)  # [N, T]
    dual = (ratio > dual_clip) & (adv < 0) if dual_clip is not None else torch.zeros_like(low)
    return low, high, dual


def tis_weight(old_logprobs: Tensor, sampler_logprobs: Tensor, cap: float) -> Tensor:
    """Truncated importance weight for the sampler / learner mismatch, ``[N, T]``, detached.

        w_t = min(exp(old_logp_t - sampler_logp_t), cap)

    vLLM samples with different kernels (and often precision) than the learner scores with,
    so the behaviour policy is pi_sampler, not pi_old; w corrects for it token by token and
    the cap bounds the variance (Yao et al. 2025, "Your efficient RL framework secretly brings
    you off-policy RL training"). It is a constant coefficient: no gradient flows through it.
    The ``token_tis`` row of `r1zero.core.corrections` (with padding and unscored tokens at 1).
    """
    log_w = (old_logprobs - sampler_logprobs).detach()  # [N, T]
    return torch.exp(log_w).clamp(max=cap)


# ----------------------------------------------------------------------------- KL
def kl_estimate(logprobs: Tensor, ref_logprobs: Tensor, estimator: KLEstimator = "k3") -> Tensor:
    """Per-token estimate of KL(pi_theta || pi_ref) from tokens sampled by pi_theta, ``[N, T]``.

    With log r = ref_logp - logp (Schulman 2020, "Approximating KL divergence"):
        k1 = -log r                  unbiased, can be negative, high variance
        k2 = (log r)^2 / 2           biased (E[k2] = 1/2 E[(log pi/ref)^2] ~ KL for close
                                     policies), never negative
        k3 = (r - 1) - log r         unbiased, never negative (GRPO's estimator, eq. 4)

    As a *loss* (differentiating through logp only, on-policy samples), the expected gradient
    of k2 is the true gradient of KL(pi || ref); k1's is zero; k3's is the gradient of the
    forward KL(ref || pi). This is why `AlgorithmConfig` lets you choose.
    """
    log_r = ref_logprobs.detach() - logprobs  # [N, T]
    if estimator == "k1":
        return -log_r
    if estimator == "k2":
        return 0.5 * log_r.square()
    if estimator == "k3":
        # Clamp only the exponent: a reference that puts ~0 mass on a sampled token would give
        # exp(+large) = inf and poison the whole step; 20 nats is already a useless signal.
        return torch.exp(log_r.clamp(max=20.0)) - 1.0 - log_r
    raise ValueError(f"kl_estimator must be one of {KL_ESTIMATORS}, got {estimator!r}")


# ----------------------------------------------------------------------------- full loss
def policy_term(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, mask: Tensor,
                cfg: AlgorithmConfig) -> tuple[Tensor, Tensor]:
    """The policy term pg_t ``[N, T]`` of the loss and the importance ratio rho_t ``[N, T]``
    (detached; for the statistics), by the algorithm's switches:

        ratio_level "token":     rho_t = pi_theta(o_t) / pi_old(o_t)
        ratio_level "sequence":  rho_t = exp(mean_t log(pi_theta / pi_old)), with the
                                 gradient of each token's own log pi_theta (GSPO-token, eq. 11)
        policy_term "clipped":   pg_t = `clipped_pg_loss`(rho_t, A)       (PPO / GRPO / DAPO)
        policy_term "logprob":   pg_t = -A log pi_theta(o_t)              (REINFORCE / RAFT)
    """
    ratio_logprobs = logprobs  # [N, T]: log pi_old + log of the ratio the surrogate clips
    if cfg.ratio_level == "sequence":
        ratio_logprobs = old_logprobs.detach() + sequence_log_ratio(logprobs, old_logprobs, mask)
    if cfg.policy_term == "logprob":  # no ratio in the loss, nothing clipped
        adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # [N, 1] | [N, T]
        return -adv * logprobs, torch.exp(ratio_logprobs - old_logprobs.detach()).detach()
    return clipped_pg_loss(ratio_logprobs, old_logprobs, advantages, clip_low=cfg.clip_low,
                           clip_high=cfg.clip_high, dual_clip=cfg.dual_clip)


def correct(logprobs: Tensor, old_logprobs: Tensor, advantages: Tensor, m: Tensor, cfg: AlgorithmConfig,
            sampler_logprobs: Tensor | None) -> tuple[Tensor, Applied | None]:
    """The clipped ratio's denominator ``[N, T]`` and what the off-policy correction row
    (`r1zero.core.corrections`) did; None without sampler log-probs (then the row must be
    none). The anchor is π_old, or μ for the ``coupled`` row (PPO clipped against the
    sampler itself)."""
    row = CORRECTIONS[cfg.correction]
    if sampler_logprobs is None:
        if cfg.correction != "none":
            raise ValueError(f"is_correction={cfg.correction!r} needs sampler_logprobs (the "
                             "sampler's per-token log-probs)")
        return old_logprobs, None
    applied = apply_correction(row, logprobs, old_logprobs, sampler_logprobs, advantages, m,
                               cap=cfg.tis_cap, low=cfg.is_low, high=cfg.is_high, delta=cfg.opsm_delta)
    if row.anchor == "sampler":
        return torch.where(applied.usable, sampler_logprobs, old_logprobs.detach()), applied
    return old_logprobs, applied


def regularisers(logprobs: Tensor, m: Tensor, weights: Tensor, cfg: AlgorithmConfig,
                 ref_logprobs: Tensor | None, entropy: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
    """beta * kl_t - entropy_coef * H_t ``[N, T]`` (0 when both are off) and their summable
    statistics: KL only when ``cfg.kl_beta != 0`` (no reference model otherwise), the
    entropy whenever it is given (logged), in the loss when ``cfg.entropy_coef != 0``."""
    extra = torch.zeros_like(logprobs)
    stats: dict[str, Tensor] = {}
    if cfg.kl_beta != 0.0:
        if ref_logprobs is None:
            raise ValueError(f"cfg.kl_beta={cfg.kl_beta} needs ref_logprobs (set kl_beta=0 to drop it)")
        # A -inf reference log-prob on padding must not reach exp / backward.
        ref_logprobs = torch.where(m > 0, ref_logprobs, logprobs.detach())  # [N, T]
        kl = kl_estimate(logprobs, ref_logprobs, cfg.kl_estimator)  # [N, T]
        extra = extra + cfg.kl_beta * kl
        stats["kl_sum"] = (kl.detach() * m).sum()
        stats["kl_loss"] = (cfg.kl_beta * kl.detach() * weights).sum()
    if cfg.entropy_coef != 0.0 and entropy is None:
        raise ValueError(f"cfg.entropy_coef={cfg.entropy_coef} needs the token entropy")
    if entropy is not None:
        if cfg.entropy_coef != 0.0:
            extra = extra - cfg.entropy_coef * entropy
        stats["entropy_sum"] = (entropy.detach() * m).sum()
    return extra, stats


def policy_stats(logprobs: Tensor, old_logprobs: Tensor, ratio: Tensor, advantages: Tensor, m: Tensor,
                 cfg: AlgorithmConfig) -> dict[str, Tensor]:
    """Summable statistics of the policy term (`r1zero.core.metrics.summarize_loss_stats`
    divides them once over the step): tokens, sequences, clip counts, the ratio and
    KL(pi_old || pi_theta) on the old policy's samples (k3 with the roles swapped)."""
    low, high, dual = clip_masks(
        ratio, advantages, clip_low=cfg.clip_low, clip_high=cfg.clip_high, dual_clip=cfg.dual_clip
    )  # [N, T] bool each
    if cfg.policy_term == "logprob":  # nothing is clipped without a ratio
        low = high = dual = torch.zeros_like(low)
    log_ratio = (logprobs - old_logprobs).detach()  # [N, T]
    return dict(
        num_tokens=m.sum(),
        num_sequences=torch.tensor(float(m.shape[0]), dtype=m.dtype, device=m.device),
        clip_low_count=(low.to(m.dtype) * m).sum(),
        clip_high_count=(high.to(m.dtype) * m).sum(),
        dual_clip_count=(dual.to(m.dtype) * m).sum(),
        approx_kl_sum=((torch.exp(log_ratio) - 1.0 - log_ratio) * m).sum(),
        ratio_sum=(ratio * m).sum(),
    )


def policy_loss(
    logprobs: Tensor,
    old_logprobs: Tensor | None,
    advantages: Tensor,
    mask: Tensor,
    normalizer: LossNormalizer,
    cfg: AlgorithmConfig,
    *,
    ref_logprobs: Tensor | None = None,
    sampler_logprobs: Tensor | None = None,
    entropy: Tensor | None = None,
    staleness: Tensor | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """One micro-batch's share of the step loss, and summable statistics for metrics.

        l_t = w_t * pg_t + beta * kl_t - entropy_coef * H_t
        loss = sum_{i,t} l_{i,t} * weight_{i,t}           (weights: `token_weights`)

    pg_t is `policy_term`, kl_t is `kl_estimate`, H_t the token entropy (`regularisers`).
    KL and entropy use the same aggregation as the PG term so one normaliser governs the
    whole objective. w_t is the off-policy correction's weight (``cfg.is_correction``,
    core/corrections.py; 1 when none): it weights the PG term only, since KL and entropy
    are regularisers of pi_theta, not off-policy estimates.

    Args:
        logprobs: ``[N, T]`` log pi_theta of the response tokens, with grad.
        old_logprobs: ``[N, T]``; None means on-policy (= logprobs.detach(), ratio 1).
        advantages: ``[N]`` per sequence or ``[N, T]`` per token.
        mask: ``[N, T]`` bool or float, 1 on tokens in the loss.
        normalizer: the step's `LossNormalizer` (same object for every micro-batch).
        cfg: the `AlgorithmConfig` with the switches.
        ref_logprobs: ``[N, T]`` log pi_ref, required iff ``cfg.kl_beta != 0``.
        sampler_logprobs: ``[N, T]`` the sampler's log-probs (NaN: not scored); needed by
            every correction but none; when given, the mismatch samples are returned too.
        entropy: ``[N, T]`` token entropy with grad, required iff ``cfg.entropy_coef != 0``
            (also logged when given).
        staleness: ``[N, T]`` step minus each token's sampling version (None = 0).

    Returns:
        loss: scalar. Summing it over the step's micro-batches gives the step loss.
        stats: detached tensors: scalars that are *sums* over this micro-batch and 1-D
            per-token samples (``mm_*``), which the trainer adds (concatenates) over
            micro-batches and ranks and reduces once (`r1zero.core.metrics.add_stats`,
            `summarize_loss_stats`).
    """
    m = mask.to(logprobs.dtype)  # [N, T]
    if old_logprobs is None:
        old_logprobs = logprobs.detach()
    weights = token_weights(m, normalizer, cfg.aggregation)  # [N, T]
    anchor, applied = correct(logprobs, old_logprobs, advantages, m, cfg, sampler_logprobs)
    pg, ratio = policy_term(logprobs, anchor, advantages, m, cfg)  # [N, T], [N, T]
    if applied is not None and cfg.correction != "none":
        pg = pg * applied.weight  # [N, T], a constant
    extra, stats = regularisers(logprobs, m, weights, cfg, ref_logprobs, entropy)  # [N, T]
    loss = ((pg + extra) * weights).sum()
    stats.update(loss=loss.detach(), pg_loss=(pg.detach() * weights).sum(),
                 **policy_stats(logprobs, anchor, ratio, advantages, m, cfg))
    if applied is not None:
        stats.update(correction_stats(applied, m, cfg, staleness))
    return loss, stats


def correction_stats(applied: Applied, m: Tensor, cfg: AlgorithmConfig,
                     staleness: Tensor | None) -> dict[str, Tensor]:
    """The mismatch samples (always, when the sampler's log-probs are known) and, under a
    correction, the sum of its weights and the count of truncated tokens."""
    stats = mismatch_samples(applied, staleness)
    if cfg.correction != "none":
        stats["tis_weight_sum"] = (applied.weight * m).sum()
        stats["tis_capped_count"] = (applied.truncated.to(m.dtype) * m).sum()
    return stats


# ----------------------------------------------------------------------------- value loss
def value_loss(values: Tensor, old_values: Tensor, returns: Tensor, mask: Tensor,
               normalizer: LossNormalizer, aggregation: Aggregation,
               clip: float | None) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped value loss (Schulman et al. 2017; the OpenAI baselines / OpenRLHF form),
    one micro-batch's share of the step loss and summable statistics::

        V_clip = V_old + clip(V − V_old, −ε_v, ε_v)
        l_t    = ½ max((V_t − G_t)², (V_clip,t − G_t)²)        (ε_v = None: ½ (V_t − G_t)²)

    aggregated with the same step-normalised token weights as the policy loss. ``values``
    carries the gradient; ``old_values`` (the critic before the update) and ``returns``
    (GAE targets) are data."""
    m = mask.to(values.dtype)  # [N, T]
    err = (values - returns) ** 2  # [N, T]
    clipped = torch.zeros_like(m, dtype=torch.bool)
    if clip is not None:
        v_clip = old_values + (values - old_values).clamp(-clip, clip)  # [N, T]
        err_clip = (v_clip - returns) ** 2
        clipped = err_clip > err  # the clipped branch is the max: no gradient through V
        err = torch.maximum(err, err_clip)
    per_token = 0.5 * err
    loss = (per_token * token_weights(m, normalizer, aggregation)).sum()
    return loss, {
        "value_loss": loss.detach(),
        "value_clip_count": (clipped.to(m.dtype) * m).sum(),
        "value_tokens": m.sum(),
        "value_sq_err_sum": ((values.detach() - returns) ** 2 * m).sum(),
    }
