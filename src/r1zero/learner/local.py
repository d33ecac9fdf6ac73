"""`LocalLearner`: the update in this process, and the same code as one rank of a group.

``update`` consumes one rollout's sequences: epochs x optimizer steps of
``train_batch_size`` responses, each a gradient accumulation over micro-batches
(learner/plan.py), with the loss of the learner's objective (learner/objectives.py: the
policy's, or PPO's critic's). Each step's loss normaliser covers the whole step, every
rank's share, so micro-batching and world size are invisible (docs/algorithms.md,
"update schedule").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from r1zero.adapters import adapter_tensors, has_adapters, tensor_bytes
from r1zero.config import TrainConfig
from r1zero.core.algorithms import AlgorithmConfig
from r1zero.core.metrics import add_stats
from r1zero.core.preferences import dpo_advantages, dpo_loss
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.batching import MicroBatch, TrainSequence
from r1zero.learner.logprobs import response_logprobs
from r1zero.learner.objectives import PolicyObjective, ValueObjective
from r1zero.learner.optim import OptimSettings, clip_gradients, scheduled_lr
from r1zero.learner.plan import plan_steps, rank_micro_batches
from r1zero.learner.precision import copy_weights, fold_gradients


@dataclass
class LocalLearner:
    """The update in this process (one device). ``rank`` / ``world`` select this rank's
    share of each optimizer step when the same code runs as one rank of a group. Built by
    `r1zero.learner.build.build_learner`."""

    cfg: TrainConfig
    algo: AlgorithmConfig
    policy: torch.nn.Module
    """The fp32 (master) weights: what the optimizer steps, checkpoints save and syncs send
    (PPO's critic: its value model)."""
    compute: torch.nn.Module
    """What forward/backward runs on: the policy itself, or its bf16 copy (precision.py)."""
    optimizer: torch.optim.Optimizer
    optim: OptimSettings
    ref_policy: torch.nn.Module | None
    packed: bool
    """Packed micro-batches (batching.py) or right-padded rows."""
    pad_token_id: int
    precision: str
    """bf16, bf16-autocast or fp32 (resolved: r1zero/machine.py)."""
    objective: PolicyObjective | ValueObjective
    optim_steps: int = 0
    """Optimizer steps taken (the learning-rate schedule's clock; resumed from the checkpoint)."""
    rank: int = 0
    world: int = 1

    def update(self, seqs: list[TrainSequence], step: int) -> dict[str, float]:
        return update_metrics(self.objective, [run_update(self, seqs, step)])

    @torch.no_grad()
    def values(self, seqs: list[TrainSequence]) -> dict[int, list[float]]:
        """Critic: V(s_t) of every response position of this rank's share of ``seqs``, by
        position in ``seqs`` (all of them in one process). Ranks run equally many forward
        passes (each is a collective under FSDP): a shorter share repeats one as padding."""
        index, mbs, real = rank_micro_batches(self, seqs)
        out: dict[int, list[float]] = {}
        self.compute.eval()
        for j, mb in enumerate(mbs):
            v = self.compute(mb, precision=self.precision).cpu()  # [n, width]
            if j < real:
                for row, i in enumerate(mb.index):
                    out[index[i]] = v[row][mb.response_mask[row].bool()].tolist()
        return out

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        """Every weight (HF names), or with LoRA the adapter alone (peft's names)."""
        if has_adapters(self.policy):
            return adapter_tensors(self.policy).items()
        return self.policy.state_dict().items()

    def sync(self, engines) -> int:
        """New weights into ``engines``; returns the bytes sent (LoRA: the adapter's)."""
        tensors = list(self.weights())
        engines.load_weights(tensors)
        return tensor_bytes(tensors)

    def save(self, run_dir: Path, tokenizer, state: ckpt.TrainState, keep: int) -> Path:
        return ckpt.save_with(run_dir, tokenizer, state, keep, self.write)

    def write(self, path: Path) -> None:
        """Weights and optimizer into ``path`` (the objective's format)."""
        self.objective.write(self.policy, self.optimizer, path)

    def close(self) -> None:
        """Nothing to release: the modules belong to this process."""


# ----------------------------------------------------------------------------- the update
def old_logprobs(lrn: LocalLearner, plan, needed: bool) -> list[list[torch.Tensor | None]]:
    """π_old log-probs of every micro-batch, computed once per rollout before the first
    optimizer step; needed whenever the rollout takes more than one optimizer step (more
    than one mini-batch or epoch). With one step the update is on-policy (ratio 1)."""
    if not needed:
        return [[None] * len(mbs) for _, mbs, _, _ in plan]
    with torch.no_grad():
        return [[response_logprobs(lrn.compute, mb, temperature=lrn.cfg.temperature,
                                   precision=lrn.precision)[0] for mb in mbs]
                for _, mbs, _, _ in plan]


@torch.no_grad()
def sequence_logprobs(model: torch.nn.Module, lrn: LocalLearner, mbs: list[MicroBatch],
                      count: int) -> torch.Tensor:
    """``[count]`` Σ_t log π(o_t) of each sequence of a share, from its micro-batches."""
    out = torch.zeros(count, dtype=torch.float64)
    for mb in mbs:
        lp, _ = response_logprobs(model, mb, temperature=lrn.cfg.temperature, precision=lrn.precision)
        out[mb.index] = (lp * mb.response_mask.to(lp.device)).sum(1).double().cpu()
    return out


def set_dpo_advantages(lrn: LocalLearner, mbs: list[MicroBatch], share: list[TrainSequence],
                       ref: torch.Tensor | None) -> dict[str, torch.Tensor]:
    """Online DPO: the advantages of this optimizer step's micro-batches from the pairs'
    margins at the current weights (core/preferences.py); returns summable statistics."""
    s = sequence_logprobs(lrn.compute, lrn, mbs, len(share))  # [n]
    c = [i for i, q in enumerate(share) if q.advantage > 0]  # chosen, in pair order
    r = [i for i, q in enumerate(share) if q.advantage < 0]
    assert [share[i].pair for i in c] == [share[i].pair for i in r], "DPO pairs were split"
    loss, z = dpo_loss(s[c], s[r], None if ref is None else ref[c], None if ref is None else ref[r],
                       lrn.algo.dpo_beta)
    a_c, a_r = dpo_advantages(z, lrn.algo.dpo_beta)
    adv = torch.zeros(len(share), dtype=torch.float64)
    adv[c], adv[r] = a_c, a_r
    for mb in mbs:
        mb.advantages = adv[mb.index].to(mb.advantages.dtype)
    return {"dpo_loss_sum": loss.sum().float(), "dpo_margin_sum": (z / lrn.algo.dpo_beta).sum().float(),
            "dpo_correct_count": (z > 0).sum().float(), "dpo_pairs": torch.tensor(float(len(c)))}


def run_update(lrn: LocalLearner, seqs: list[TrainSequence], step: int = 0) -> dict:
    """Epochs x optimizer steps of ``train_batch_size`` responses, each step a gradient
    accumulation over micro-batches. Each step's loss normaliser comes from the whole step
    (every rank's share), so micro-batching and world size are invisible
    (docs/algorithms.md, "update schedule"). Returns this rank's partial sums for
    `update_metrics`."""
    plan = plan_steps(lrn, seqs, step)
    olds = old_logprobs(lrn, plan, needed=len(plan) * lrn.cfg.epochs > 1)
    dpo = lrn.algo.objective == "dpo"
    refs = [sequence_logprobs(lrn.ref_policy, lrn, mbs[:real], len(share))
            if dpo and lrn.ref_policy is not None else None for _, mbs, real, share in plan]
    totals: dict[str, torch.Tensor] = {}
    grad_norms: list[float] = []
    lrn.compute.train()
    for _ in range(lrn.cfg.epochs):
        for (norm, mbs, real, share), old_mbs, ref in zip(plan, olds, refs):
            if dpo:  # margins at the current weights, before this step's gradient pass
                add_stats(totals, set_dpo_advantages(lrn, mbs[:real], share, ref))
            lrn.optimizer.zero_grad(set_to_none=True)
            for j, (mb, old) in enumerate(zip(mbs, old_mbs)):
                loss, stats = lrn.objective.loss(lrn, mb, norm, old)
                if j >= real:  # padding for the collectives: no gradient, no statistics
                    (loss * 0.0).backward()
                    continue
                loss.backward()
                fold_gradients(lrn.compute, lrn.policy)  # bf16 grads -> fp32 master (or no-op)
                add_stats(totals, stats)
            grad_norms.append(optimizer_step(lrn, zero_grad=not mbs))
    lrn.compute.eval()
    if lrn.cfg.cluster.colocate:  # the engines wake into the memory the update leaves
        release_cached_memory()
    return {"totals": totals, "grad_norms": grad_norms, "optim_steps": lrn.optim_steps,
            "train_tokens": sum(mb.num_tokens for _, mbs, real, _ in plan for mb in mbs[:real])
            * lrn.cfg.epochs, "lr": lrn.optimizer.param_groups[0]["lr"]}


def release_cached_memory() -> None:
    """Hand the CUDA caching allocator's free blocks back to the driver. Without it the
    update's peak (activations, logits) stays reserved by this process, and collocated
    vLLM engines waking up on the same GPU find that memory taken. (Parameters may live on
    the host under FSDP2 CPU offload, so the test is CUDA use, not their device.)"""
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def update_metrics(objective: PolicyObjective | ValueObjective, parts: list[dict]) -> dict[str, float]:
    """The update's metrics from every rank's `run_update` result: loss statistics are sums
    over ranks, then divided once; the grad-norm is global already (every rank has it)."""
    totals: dict[str, torch.Tensor] = {}
    for part in parts:  # rank order: a fixed reduction order
        add_stats(totals, part["totals"])
    return objective.metrics(totals, parts[0]["grad_norms"], parts[0]["lr"],
                             sum(p["train_tokens"] for p in parts))


def optimizer_step(lrn: LocalLearner, zero_grad: bool = False) -> float:
    """Clip, step at the scheduled learning rate, refresh the compute copy; returns the
    grad-norm. A step with nothing to forward (``zero_grad``: every response skipped for
    A = 0, or filtered out) is still taken with a zero gradient: Adam then moves the
    weights by its momentum, exactly as after a full forward/backward of zero-advantage
    responses. One rule for an all-skipped and an all-filtered step."""
    if zero_grad:
        for p in lrn.policy.parameters():
            if p.requires_grad:  # LoRA: the adapters only
                p.grad = torch.zeros_like(p)
    grad_norm = clip_gradients(lrn.policy, lrn.optim.max_grad_norm)
    for group in lrn.optimizer.param_groups:
        group["lr"] = scheduled_lr(lrn.optim, lrn.optim_steps)
    lrn.optimizer.step()
    lrn.optim_steps += 1
    lrn.optimizer.zero_grad(set_to_none=True)
    copy_weights(lrn.policy, lrn.compute)
    return grad_norm
