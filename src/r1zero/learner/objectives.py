"""What a learner minimises, as two objects with the same three methods: the policy's loss
(the algorithm's clipped policy term, core/losses.py) and PPO's critic's value loss. The
update loop (`r1zero.learner.local.run_update`) is the same for both."""

from __future__ import annotations

from pathlib import Path

import torch

from r1zero.adapters import has_adapters, save_model_adapter
from r1zero.core import losses
from r1zero.core.metrics import summarize_loss_stats, summarize_value_stats
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.base import LearnerParts
from r1zero.learner.batching import MicroBatch
from r1zero.learner.critic import save_value_model
from r1zero.learner.logprobs import response_logprobs


class PolicyObjective:
    """The policy's loss: per-token policy term, KL and entropy terms, aggregated with the
    step's normaliser (`r1zero.core.losses.policy_loss`)."""

    name = "policy"
    skips_zero_advantage = True
    """A response with A = 0 has loss 0 and gradient 0 (without KL or entropy terms)."""

    def loss(self, lrn: LearnerParts, mb: MicroBatch, norm: losses.LossNormalizer,
             old_lp: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward one micro-batch; (loss share, summable statistics)."""
        want_entropy = "grad" if lrn.algo.entropy_coef else True
        lp, ent = response_logprobs(lrn.compute, mb, temperature=lrn.cfg.temperature,
                                    with_entropy=want_entropy, precision=lrn.precision)  # [n, L-1] each
        device, mask = lp.device, mb.response_mask.to(lp.device)  # mask [n, L-1]
        ref_lp = None
        if lrn.ref_policy is not None and lrn.algo.kl_beta != 0:  # (DPO's reference: run_update)
            with torch.no_grad():
                ref_lp, _ = response_logprobs(lrn.ref_policy, mb, temperature=lrn.cfg.temperature,
                                              precision=lrn.precision)
        sampler = None if mb.sampler_logprobs is None else mb.sampler_logprobs.to(device)
        loss, stats = losses.policy_loss(
            lp, None if old_lp is None else old_lp.to(device),  # None: on-policy, ratio 1
            mb.advantages.to(device), mask, norm, lrn.algo,
            ref_logprobs=ref_lp, sampler_logprobs=sampler, entropy=ent, staleness=mb.staleness,
        )
        if sampler is not None:
            # How far the learner's log-probs are from what the sampler reported (vLLM bf16
            # vs learner): large gaps make the on-policy assumption false (see tis_cap).
            stats["sampler_gap_sum"] = ((lp.detach() - sampler).abs() * mask).sum()
        return loss, stats

    def metrics(self, totals: dict[str, torch.Tensor], norms: list[float], lr: float,
                tokens: int) -> dict[str, float]:
        """The update's metrics (docs/metrics.md: loss/, policy/, optim/, perf/)."""
        out = summarize_loss_stats(totals) if totals else {}
        if "sampler_gap_sum" in totals:
            out["policy/sampler_logprob_gap"] = float(totals["sampler_gap_sum"] / totals["num_tokens"])
        out.update({"optim/grad_norm": sum(norms) / len(norms), "optim/steps": len(norms),
                    "optim/lr": lr, "perf/train_tokens": tokens})
        return out

    def write(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
        """HF weights and the optimizer (DCP layout: any world size loads it); with LoRA the
        adapter in peft's layout instead of the weights (`r1zero export` merges it)."""
        if has_adapters(model):
            save_model_adapter(model, path)
            ckpt.save_optimizer(model, optimizer, path)
            return
        ckpt.write_model_and_optimizer(path, model, optimizer)


class ValueObjective:
    """PPO's critic: the clipped value loss on the GAE returns (`r1zero.core.losses.value_loss`)."""

    name = "critic"
    skips_zero_advantage = False  # token advantages and returns: no zero to skip

    def loss(self, lrn: LearnerParts, mb: MicroBatch, norm: losses.LossNormalizer,
             old_lp: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        values = lrn.compute(mb, precision=lrn.precision)  # [n, width] fp32
        device = values.device
        return losses.value_loss(values, mb.old_values.to(device), mb.returns.to(device),
                                 mb.response_mask.to(device), norm, lrn.algo.aggregation,
                                 lrn.algo.value_clip)

    def metrics(self, totals: dict[str, torch.Tensor], norms: list[float], lr: float,
                tokens: int) -> dict[str, float]:
        out = summarize_value_stats(totals) if totals else {}
        out.update({"critic/grad_norm": sum(norms) / len(norms), "critic/lr": lr,
                    "perf/critic_tokens": tokens})
        return out

    def write(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path) -> None:
        """The value model as safetensors and its optimizer."""
        save_value_model(model, optimizer, path)


OBJECTIVES = {"policy": PolicyObjective(), "critic": ValueObjective()}
"""A learner's objective by its role."""
