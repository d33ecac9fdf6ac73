"""Off-policy corrections of the sampler / learner mismatch, as rows of one table, and the
mismatch metrics they are judged by.

Notation (docs/algorithms.md §11): μ = the sampler's probability of a token (the engine's
log-prob, at the weight version that sampled it), π_old = the learner's before the update,
π_θ = now. Per token r_t = π_old(o_t) / μ(o_t). Every row turns r into a weight w of the
policy term (a constant: no gradient flows through it) and may drop tokens or responses:

    row         ratio the rule looks at                 outside the rule       reference
    token_tis   r_t                                     w = min(r_t, C)        Yao et al. 2025
    seq_tis     R_i = exp(Σ_t log r_t)                  w = min(R_i, C)        Yao et al. 2025
    token_mis   r_t                                     w = r_t 1[lo ≤ r_t ≤ hi]   IcePop (Ling team 2025)
    seq_mis     R_i                                     w = R_i 1[lo ≤ R_i ≤ hi]   TRL sequence_mask
    geo_mask    G_i = exp(mean_t log r_t)               w = 1[lo ≤ G_i ≤ hi]   verl rollout_rs=geometric
    opsm        D_i = mean_t log(μ / π_θ)               w = 0 if A_i < 0 and D_i > δ   DeepSeek-V3.2
    decoupled   r_t = π_prox / μ, π_prox = π_old        w = r_t 1[r_t ≤ C]     AReaL (Fu et al. 2025)
    coupled     the clip is on π_θ / μ                  w = 1                  PPO on stale samples

``decoupled`` and ``coupled`` are the two options of the ratio: the clip against the
proximal policy (the learner before this update, what every other row clips against) with
the importance weight π_prox / μ, or the clip against the behaviour policy μ itself.
Tokens the sampler did not score (NaN) and padding get w = 1 and enter no statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from r1zero.core.choices import IS_CORRECTIONS


@dataclass(frozen=True)
class Correction:
    """One row: which ratio the rule reads, what happens outside it, the ratio's anchor."""

    level: str = "none"
    """none | token (r_t) | sequence (R_i = Π_t r_t) | geometric (G_i = R_i^(1/|o_i|))."""
    rule: str = "none"
    """truncate (min(ρ, C)) | mask (0 outside [lo, hi]) | none."""
    weighted: bool = True
    """Inside the rule, the weight is the ratio (importance sampling) or 1 (a pure mask)."""
    band: tuple[float, float] | None = None
    """The row's default [lo, hi] for ``rule="mask"`` (--algo.is-low / --algo.is-high
    override it); None = [0, C] with C = --algo.tis-cap (unbounded without one)."""
    opsm: bool = False
    """DeepSeek-V3.2's off-policy sequence masking (drop A < 0 responses with D_i > δ)."""
    anchor: str = "old"
    """The clipped ratio's denominator: old (π_old, the proximal policy) or sampler (μ)."""


CORRECTIONS: dict[str, Correction] = {
    "none": Correction(),
    "token_tis": Correction("token", "truncate"),
    "seq_tis": Correction("sequence", "truncate"),
    # IcePop's band (α, β) = (0.5, 5); for a sequence ratio, a band of a factor 2 either way.
    "token_mis": Correction("token", "mask", band=(0.5, 5.0)),
    "seq_mis": Correction("sequence", "mask", band=(0.5, 2.0)),
    # A geometric mean of per-token ratios sits close to 1: 1 % either way is a wide band.
    "geo_mask": Correction("geometric", "mask", weighted=False, band=(0.99, 1.01)),
    "opsm": Correction(opsm=True),
    "decoupled": Correction("token", "mask"),
    "coupled": Correction(anchor="sampler"),
}
assert set(CORRECTIONS) == set(IS_CORRECTIONS) - {"auto"}, "core/choices.py names every row"


@dataclass
class Applied:
    """What a row did to one micro-batch, ``[N, T]`` each (detached)."""

    weight: Tensor
    """Multiplies the policy term; 1 on padding and unscored tokens."""
    usable: Tensor
    """bool: a loss token the sampler scored (the statistics cover exactly these)."""
    log_ratio: Tensor
    """log r_t = log π_old − log μ (0 where not usable)."""
    masked: Tensor
    """bool: weight set to 0 by the rule or by opsm."""
    truncated: Tensor
    """bool: weight capped at C."""


def sampler_log_ratio(old_logprobs: Tensor, sampler_logprobs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``(log r [N, T], usable [N, T] bool)``: log π_old − log μ on loss tokens the sampler
    scored, 0 elsewhere (a NaN there would survive a 0 weight: NaN * 0 = NaN)."""
    usable = (mask > 0) & ~torch.isnan(sampler_logprobs)  # [N, T]
    log_r = torch.where(usable, old_logprobs.detach() - sampler_logprobs, torch.zeros_like(old_logprobs))
    return log_r, usable


def rule_ratio(log_r: Tensor, usable: Tensor, level: str) -> Tensor:
    """The log of the ratio a row's rule reads, broadcastable to ``[N, T]``:
    token log r_t; sequence Σ_t log r_t; geometric mean_t log r_t (over usable tokens)."""
    if level == "token":
        return log_r  # [N, T]
    total = log_r.sum(dim=1, keepdim=True)  # [N, 1]
    if level == "sequence":
        return total
    if level == "geometric":
        return total / usable.sum(dim=1, keepdim=True).clamp(min=1)  # [N, 1]
    raise ValueError(f"unknown correction level {level!r}")


def band_of(row: Correction, cap: float | None, low: float | None, high: float | None) -> tuple[float, float]:
    """[lo, hi] of a masking row: the flags, else the row's default, else [0, C]."""
    lo, hi = row.band if row.band is not None else (0.0, cap if cap is not None else float("inf"))
    return (lo if low is None else low), (hi if high is None else high)


def rule_weight(log_rho: Tensor, row: Correction, cap: float | None,
                band: tuple[float, float]) -> tuple[Tensor, Tensor, Tensor]:
    """``(w, masked, truncated)`` of a ratio ρ = exp(log_rho) under the row's rule:
    truncate: w = min(ρ, C); mask: w = ρ (or 1) inside [lo, hi], 0 outside."""
    rho = torch.exp(log_rho)  # may be inf for a long sequence: min() and where() keep it out
    none = torch.zeros_like(rho, dtype=torch.bool)
    if row.rule == "truncate":
        return rho.clamp(max=cap), none, rho > cap
    if row.rule == "mask":
        inside = (rho >= band[0]) & (rho <= band[1])
        kept = rho if row.weighted else torch.ones_like(rho)
        return torch.where(inside, kept, torch.zeros_like(rho)), ~inside, none
    return torch.ones_like(rho), none, none


def opsm_drop(logprobs: Tensor, sampler_logprobs: Tensor, usable: Tensor, advantages: Tensor,
              delta: float) -> Tensor:
    """DeepSeek-V3.2's off-policy sequence mask, ``[N, 1]`` or ``[N, T]`` bool (True = drop):
    a response with A < 0 whose mean per-token log(μ / π_θ) exceeds δ. π_θ is the current
    policy (detached): the mask is re-read at every optimizer step."""
    gap = torch.where(usable, sampler_logprobs - logprobs.detach(), torch.zeros_like(logprobs))  # [N, T]
    d = gap.sum(dim=1, keepdim=True) / usable.sum(dim=1, keepdim=True).clamp(min=1)  # [N, 1]
    adv = advantages.unsqueeze(1) if advantages.dim() == 1 else advantages  # [N, 1] | [N, T]
    return (adv < 0) & (d > delta)


def apply_correction(row: Correction, logprobs: Tensor, old_logprobs: Tensor, sampler_logprobs: Tensor,
                     advantages: Tensor, mask: Tensor, *, cap: float | None, low: float | None = None,
                     high: float | None = None, delta: float = 0.0) -> Applied:
    """The row's weight ``[N, T]`` and what it masked or truncated (module table).

    Args:
        logprobs: ``[N, T]`` log π_θ (read detached, by opsm only).
        old_logprobs: ``[N, T]`` log π_old.
        sampler_logprobs: ``[N, T]`` log μ, NaN where the sampler gave none.
        advantages: ``[N]`` or ``[N, T]``.
        mask: ``[N, T]``, 1 on loss tokens.
    """
    log_r, usable = sampler_log_ratio(old_logprobs, sampler_logprobs, mask)  # [N, T] each
    w = torch.ones_like(log_r)
    masked = torch.zeros_like(usable)
    truncated = torch.zeros_like(usable)
    if row.level != "none":
        rw, rm, rt = rule_weight(rule_ratio(log_r, usable, row.level), row, cap, band_of(row, cap, low, high))
        w, masked, truncated = w * rw, masked | rm, truncated | rt  # broadcast [N, 1] -> [N, T]
    if row.opsm:
        drop = opsm_drop(logprobs, sampler_logprobs, usable, advantages, delta)
        w, masked = torch.where(drop, torch.zeros_like(w), w), masked | drop
    keep = usable  # padding and unscored tokens: weight 1, no flags
    return Applied(torch.where(keep, w, torch.ones_like(w)).detach(), usable, log_r,
                   masked & keep, truncated & keep)


# ----------------------------------------------------------------------------- metrics
def mismatch_samples(applied: Applied, staleness: Tensor | None) -> dict[str, Tensor]:
    """Per-token samples of the mismatch (1-D, one entry per usable token; concatenated
    over micro-batches and ranks, `r1zero.core.metrics.add_stats`) and two summable counts.
    ``staleness`` ``[N, T]``: step minus the weight version that sampled each token."""
    u = applied.usable  # [N, T] bool
    stale = staleness if staleness is not None else torch.zeros_like(applied.log_ratio)
    scored = u.any(dim=1)  # [N] responses with a scored token
    dropped = scored & ~(u & ~applied.masked).any(dim=1)  # every scored token masked
    return {
        "mm_log_ratio": applied.log_ratio[u].float(),
        "mm_staleness": stale.to(applied.log_ratio.device)[u].float(),
        "mm_masked": applied.masked[u].float(),
        "mm_truncated": applied.truncated[u].float(),
        "mm_sequences": scored.sum().float(),
        "mm_sequences_dropped": dropped.sum().float(),
    }


QUANTILES = (("p1", 0.01), ("p50", 0.5), ("p99", 0.99))


def mismatch_block(log_r: Tensor, masked: Tensor, truncated: Tensor) -> dict[str, float]:
    """k1, k3, ratio quantiles and masked / truncated shares of one set of tokens:

        k1 = mean(log μ − log π_old) = mean(−log r)
        k3 = mean(r − 1 − log r)           both estimate KL(μ ‖ π_old) on μ's samples
        quantiles of r (linear interpolation, numpy's default), max r.
    """
    lr = log_r.double()
    r = torch.exp(lr.clamp(max=20.0))  # as kl_estimate: 20 nats is already a useless signal
    q = torch.quantile(r, torch.tensor([p for _, p in QUANTILES], dtype=torch.float64))
    out = {"kl_k1": float((-lr).mean()) + 0.0, "kl_k3": float((r - 1.0 - lr).mean())}  # + 0.0: no -0.0
    out.update({f"is_ratio_{name}": float(v) for (name, _), v in zip(QUANTILES, q)})
    out.update(is_ratio_max=float(r.max()), masked_frac=float(masked.double().mean()),
               truncated_frac=float(truncated.double().mean()))
    return out


def mismatch_metrics(stats: dict[str, Tensor]) -> dict[str, float]:
    """``mismatch/*`` (docs/metrics.md) from the concatenated samples: over every scored
    token, then per staleness s as ``mismatch/stale{s}/*`` (with ``token_frac``, the
    share of tokens at that staleness). Empty when no token was scored."""
    log_r = stats.get("mm_log_ratio")
    if log_r is None or log_r.numel() == 0:
        return {}
    masked, truncated, stale = stats["mm_masked"], stats["mm_truncated"], stats["mm_staleness"]
    out = {f"mismatch/{k}": v for k, v in mismatch_block(log_r, masked, truncated).items()}
    seqs = float(stats["mm_sequences"])
    out["mismatch/masked_seq_frac"] = float(stats["mm_sequences_dropped"]) / max(seqs, 1.0)
    out["mismatch/tokens"] = float(log_r.numel())
    for s in sorted({int(v) for v in stale.tolist()}):
        at = stale == s
        block = mismatch_block(log_r[at], masked[at], truncated[at])
        out.update({f"mismatch/stale{s}/{k}": v for k, v in block.items()})
        out[f"mismatch/stale{s}/token_frac"] = float(at.double().mean())
    return out
