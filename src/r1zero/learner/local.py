"""The Learner seam: what the training loop asks of the policy update, and its local form.

The loop talks to the update only through a `Learner`: ``update`` (one rollout's
sequences -> optimizer steps -> metrics), ``sync_to`` (the new weights into every rollout
engine; ``weights`` gives them as full tensors), ``save``. `LocalLearner` runs it in this process; the cluster's
learner group (`r1zero.cluster`) runs the same code on N data-parallel ranks, each taking
its share of every optimizer step, with the step's normaliser computed over the whole step
so the update does not depend on the world size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import torch

from r1zero.config import TrainConfig
from r1zero.core import losses
from r1zero.core.algorithms import AlgorithmConfig
from r1zero.core.metrics import summarize_loss_stats, summarize_value_stats
from r1zero.core.preferences import dpo_advantages, dpo_loss
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.batching import (
    MicroBatch,
    TrainSequence,
    make_micro_batches,
    micro_batch_plan,
)
from r1zero.learner.logprobs import response_logprobs
from r1zero.learner.precision import copy_weights, fold_gradients
from r1zero.utils import derive_seed


@runtime_checkable
class Learner(Protocol):
    """The policy update, as the training loop sees it."""

    def update(self, seqs: list[TrainSequence], step: int) -> dict[str, float]:
        """Consume one rollout's sequences (optimizer steps, epochs); return metrics."""
        ...

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        """Full (unsharded) weights with HF names, for the rollout engines."""
        ...

    def sync_to(self, backend) -> None:
        """Send the new weights to every engine of the rollout ``backend``."""
        ...

    def save(self, run_dir: Path, tokenizer, state: ckpt.TrainState, keep: int) -> Path:
        """Write a checkpoint of weights, optimizer and ``state``; return its directory."""
        ...

    def write(self, path: Path) -> None:
        """Weights and optimizer into ``path`` (a checkpoint in the making; `save` wraps it)."""
        ...

    def close(self) -> None:
        """Release processes and memory (a no-op in-process)."""
        ...


@dataclass
class LocalLearner:
    """The update in this process (one device). ``rank`` / ``world`` select this rank's
    share of each optimizer step when the same code runs as one rank of a group."""

    cfg: TrainConfig
    algo: AlgorithmConfig
    policy: torch.nn.Module
    """The fp32 (master) weights: what the optimizer steps, checkpoints save and syncs send."""
    compute: torch.nn.Module
    """What forward/backward runs on: the policy itself, or its bf16 copy (precision.py)."""
    optimizer: torch.optim.Optimizer
    ref_policy: torch.nn.Module | None
    packed: bool
    """Packed micro-batches (batching.py) or right-padded rows."""
    pad_token_id: int
    state: ckpt.TrainState
    """Shared with the loop: ``optim_steps`` is the learning-rate schedule's clock."""
    rank: int = 0
    world: int = 1
    role: str = "policy"
    """policy, or critic (PPO's value model: `r1zero.learner.critic`; value loss instead of
    the policy loss, the same update loop)."""

    def update(self, seqs: list[TrainSequence], step: int) -> dict[str, float]:
        return update_metrics([run_update(self, seqs, step)])

    @torch.no_grad()
    def values(self, seqs: list[TrainSequence]) -> dict[int, list[float]]:
        """Critic: V(s_t) of every response position of this rank's share of ``seqs``, by
        position in ``seqs`` (all of them in one process). Ranks run equally many forward
        passes (each is a collective under FSDP): a shorter share repeats one as padding."""
        index, mbs, real = rank_micro_batches(self, seqs)
        out: dict[int, list[float]] = {}
        self.compute.eval()
        for j, mb in enumerate(mbs):
            v = self.compute(mb, precision=self.cfg.precision).cpu()  # [n, width]
            if j < real:
                for row, i in enumerate(mb.index):
                    out[index[i]] = v[row][mb.response_mask[row].bool()].tolist()
        return out

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        return self.policy.state_dict().items()

    def sync_to(self, backend) -> None:
        backend.update_weights(self.weights())

    def save(self, run_dir: Path, tokenizer, state: ckpt.TrainState, keep: int) -> Path:
        return ckpt.save_with(run_dir, tokenizer, state, keep, self.write)

    def write(self, path: Path) -> None:
        """HF weights and the optimizer (DCP layout: any world size loads it) into ``path``;
        a critic's value model as safetensors + its optimizer."""
        if self.role == "critic":
            from r1zero.learner.critic import save_value_model

            save_value_model(self.policy, self.optimizer, path)
        else:
            ckpt.write_model_and_optimizer(path, self.policy, self.optimizer)

    def close(self) -> None:
        """Nothing to release: the modules belong to this process."""


# ----------------------------------------------------------------------------- the update
def adamw(params, cfg: TrainConfig) -> torch.optim.AdamW:
    """The learner's optimizer: AdamW with ``cfg``'s lr, weight decay, betas and eps (the
    policy's, or the critic's config from `r1zero.learner.critic.critic_config`)."""
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                             betas=cfg.adam_betas, eps=cfg.adam_eps)


def micro_batch_loss(lrn: LocalLearner, mb: MicroBatch, norm: losses.LossNormalizer,
                     old_lp: torch.Tensor | None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Forward one micro-batch and return (loss share, summable stats)."""
    if lrn.role == "critic":
        values = lrn.compute(mb, precision=lrn.cfg.precision)  # [n, width] fp32
        device = values.device
        return losses.value_loss(values, mb.old_values.to(device), mb.returns.to(device),
                                 mb.response_mask.to(device), norm, lrn.algo.aggregation,
                                 lrn.algo.value_clip)
    want_entropy = "grad" if lrn.algo.entropy_coef else True
    lp, ent = response_logprobs(
        lrn.compute, mb, temperature=lrn.cfg.temperature, with_entropy=want_entropy,
        precision=lrn.cfg.precision,
    )  # [n, L-1] each
    device, mask = lp.device, mb.response_mask.to(lp.device)  # mask [n, L-1]
    ref_lp = None
    if lrn.ref_policy is not None and lrn.algo.kl_beta != 0:  # (DPO's reference: run_update)
        with torch.no_grad():
            ref_lp, _ = response_logprobs(lrn.ref_policy, mb, temperature=lrn.cfg.temperature,
                                          precision=lrn.cfg.precision)
    sampler = None if mb.sampler_logprobs is None else mb.sampler_logprobs.to(device)
    loss, stats = losses.policy_loss(
        lp, None if old_lp is None else old_lp.to(device),  # None: on-policy, ratio 1
        mb.advantages.to(device), mask, norm, lrn.algo,
        ref_logprobs=ref_lp, sampler_logprobs=sampler, entropy=ent,
    )
    if sampler is not None:
        # How far the learner's log-probs are from what the sampler reported (vLLM bf16 vs
        # learner): large gaps make the on-policy assumption false (see tis_cap).
        stats["sampler_gap_sum"] = ((lp.detach() - sampler).abs() * mask).sum()
    return loss, stats


def units(seqs: list[TrainSequence]) -> list[list[TrainSequence]]:
    """The indivisible pieces of a rollout: each response alone, except a DPO pair (the
    same ``pair`` id), which stays together."""
    out: list[list[TrainSequence]] = []
    for s in seqs:
        if s.pair >= 0 and out and out[-1][0].pair == s.pair:
            out[-1].append(s)
        else:
            out.append([s])
    return out


def minibatches(seqs: list[TrainSequence], size: int | None, seed: int) -> list[list[TrainSequence]]:
    """The rollout's responses in a seeded random order, cut into optimizer steps of
    ``size`` responses (the last may be smaller; a DPO pair is never cut, so a step may
    hold one more); None = one step over the whole rollout, in rollout order. oat shuffles
    responses the same way (numpy, per epoch); here the partition is drawn once per rollout
    and reused by every epoch, so that π_old can be computed once per micro-batch."""
    if not seqs:
        return [[]]  # nothing survived scoring/filtering: still one (zero-gradient) step
    if not size or size >= len(seqs):
        return [seqs]
    pieces = units(seqs)
    order = torch.randperm(len(pieces), generator=torch.Generator().manual_seed(seed)).tolist()
    steps: list[list[TrainSequence]] = [[]]
    for i in order:
        if len(steps[-1]) >= size:
            steps.append([])
        steps[-1] += pieces[i]
    return steps


def step_norm(lrn: LocalLearner, mini: list[TrainSequence], step: int) -> losses.LossNormalizer:
    """The loss normaliser of one optimizer step, over every response of that step (zero
    advantages included, every rank's share): N responses, T response tokens, C = the
    generation budget in force at rollout step ``step``."""
    return losses.LossNormalizer(
        num_sequences=float(len(mini)),
        num_tokens=float(sum(len(s.response_ids) for s in mini)),
        constant=lrn.algo.norm_constant_for(lrn.cfg.max_new_tokens_at(step)),
    )


def rank_share(seqs: list[TrainSequence], rank: int, world: int) -> list[TrainSequence]:
    """This rank's sequences of an optimizer step (see `rank_share_index`)."""
    return seqs if world == 1 else [seqs[i] for i in rank_share_index(seqs, rank, world)]


def rank_share_index(seqs: list[TrainSequence], rank: int, world: int) -> list[int]:
    """Positions of this rank's sequences, balanced by token count: longest unit first,
    each to the rank with the fewest tokens so far (ties to the lowest rank). Every rank
    computes the same assignment from the same list."""
    if world == 1:
        return list(range(len(seqs)))
    starts, at = [], 0
    pieces = units(seqs)  # a DPO pair goes to one rank: its loss couples the two
    for u in pieces:
        starts.append(at)
        at += len(u)
    size = [sum(len(s.prompt_ids) + len(s.response_ids) for s in u) for u in pieces]
    load = [0] * world
    mine = []
    for i in sorted(range(len(pieces)), key=lambda k: -size[k]):
        r = min(range(world), key=lambda k: (load[k], k))
        load[r] += size[i]
        if r == rank:
            mine += range(starts[i], starts[i] + len(pieces[i]))
    return mine


def plan_steps(lrn: LocalLearner, seqs: list[TrainSequence], step: int):
    """``[(normaliser, micro-batches, real, share)]``, one per optimizer step of an epoch,
    with this rank's micro-batches; the first ``real`` are this rank's ``share`` (their
    ``index`` points into it), the rest padding.

    With no KL and no entropy term a response with A = 0 has loss 0 and gradient 0 for any
    ratio, so it is left out of the forward/backward (exact; it still counts in its step's
    normaliser). Early in RL most groups agree (all wrong), which often halves the cost.

    Ranks of a group must run the same number of forward/backward passes (each is a
    collective under FSDP), so a rank with fewer micro-batches repeats one as padding whose
    loss is multiplied by 0 (no gradient, no statistics).
    """
    cfg, algo = lrn.cfg, lrn.algo
    # Per-token advantages (PPO) and the critic's value loss have no zero to skip.
    skip = (cfg.skip_zero_advantage and algo.kl_beta == 0 and algo.entropy_coef == 0
            and lrn.role == "policy" and not algo.needs_critic)
    plan = []
    for mini in minibatches(seqs, cfg.train_batch_size, derive_seed(cfg.seed, "minibatch", step)):
        active = [s for s in mini if s.advantage != 0.0] if skip else mini
        index, mbs, real = rank_micro_batches(lrn, active)
        plan.append((step_norm(lrn, mini, step), mbs, real, [active[i] for i in index]))
    return plan


def rank_micro_batches(lrn: LocalLearner, seqs: list[TrainSequence]) -> tuple[list[int], list[MicroBatch], int]:
    """This rank's share of ``seqs`` (positions in ``seqs``), its micro-batches, and how many
    of them are real. Ranks of a group must run the same number of forward passes (each
    is a collective under FSDP), so the micro-batches are padded with repeats of one up to
    the largest rank's count (the other ranks' counts are planned, never collated)."""
    cfg = lrn.cfg

    def micro(share: list[TrainSequence]) -> list[MicroBatch]:
        return make_micro_batches(share, cfg.micro_batch_tokens, lrn.pad_token_id, lrn.packed) \
            if share else []

    index = rank_share_index(seqs, lrn.rank, lrn.world)
    mbs = micro([seqs[i] for i in index])
    real = len(mbs)
    if lrn.world > 1 and seqs:
        need = max(len(micro_batch_plan(rank_share(seqs, r, lrn.world), cfg.micro_batch_tokens, lrn.packed))
                   for r in range(lrn.world))
        mbs += micro(seqs[:1]) * (need - real)
    return index, mbs, real


def old_logprobs(lrn: LocalLearner, plan, needed: bool) -> list[list[torch.Tensor | None]]:
    """π_old log-probs of every micro-batch, computed once per rollout before the first
    optimizer step; needed whenever the rollout takes more than one optimizer step (more
    than one mini-batch or epoch). With one step the update is on-policy (ratio 1)."""
    if not needed:
        return [[None] * len(mbs) for _, mbs, _, _ in plan]
    with torch.no_grad():
        return [[response_logprobs(lrn.compute, mb, temperature=lrn.cfg.temperature,
                                   precision=lrn.cfg.precision)[0] for mb in mbs]
                for _, mbs, _, _ in plan]


@torch.no_grad()
def sequence_logprobs(model: torch.nn.Module, lrn: LocalLearner, mbs: list[MicroBatch],
                      count: int) -> torch.Tensor:
    """``[count]`` Σ_t log π(o_t) of each sequence of a share, from its micro-batches."""
    out = torch.zeros(count, dtype=torch.float64)
    for mb in mbs:
        lp, _ = response_logprobs(model, mb, temperature=lrn.cfg.temperature, precision=lrn.cfg.precision)
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
                for k, v in set_dpo_advantages(lrn, mbs[:real], share, ref).items():
                    totals[k] = totals.get(k, 0.0) + v
            lrn.optimizer.zero_grad(set_to_none=True)
            for j, (mb, old) in enumerate(zip(mbs, old_mbs)):
                loss, stats = micro_batch_loss(lrn, mb, norm, old)
                if j >= real:  # padding for the collectives: no gradient, no statistics
                    (loss * 0.0).backward()
                    continue
                loss.backward()
                fold_gradients(lrn.compute, lrn.policy)  # bf16 grads -> fp32 master (or no-op)
                for k, v in stats.items():
                    totals[k] = totals.get(k, 0.0) + v.detach().cpu()
            grad_norms.append(optimizer_step(lrn, zero_grad=not mbs))
    lrn.compute.eval()
    if lrn.cfg.cluster.colocate:  # the engines wake into the memory the update leaves
        release_cached_memory()
    return {"totals": totals, "grad_norms": grad_norms, "role": lrn.role,
            "train_tokens": sum(mb.num_tokens for _, mbs, real, _ in plan for mb in mbs[:real])
            * lrn.cfg.epochs, "lr": lrn.optimizer.param_groups[0]["lr"]}


def release_cached_memory() -> None:
    """Hand the CUDA caching allocator's free blocks back to the driver. Without it the
    update's peak (activations, logits) stays reserved by this process, and collocated
    vLLM engines waking up on the same GPU find that memory taken. (Parameters may live on
    the host under FSDP2 CPU offload, so the test is CUDA use, not their device.)"""
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def update_metrics(parts: list[dict]) -> dict[str, float]:
    """The update's metrics from every rank's `run_update` result: loss statistics are sums
    over ranks, then divided once; the grad-norm is global already (every rank has it)."""
    totals: dict[str, torch.Tensor] = {}
    for part in parts:
        for k, v in part["totals"].items():
            totals[k] = totals.get(k, 0.0) + v
    norms = parts[0]["grad_norms"]
    if parts[0].get("role") == "critic":
        out = summarize_value_stats(totals) if totals else {}
        out.update({"critic/grad_norm": sum(norms) / len(norms), "critic/lr": parts[0]["lr"],
                    "perf/critic_tokens": sum(p["train_tokens"] for p in parts)})
        return out
    out = summarize_loss_stats(totals) if totals else {}
    if "sampler_gap_sum" in totals:
        out["policy/sampler_logprob_gap"] = float(totals["sampler_gap_sum"] / totals["num_tokens"])
    out["optim/grad_norm"] = sum(norms) / len(norms)
    out["optim/steps"] = len(norms)
    out["optim/lr"] = parts[0]["lr"]
    out["perf/train_tokens"] = sum(p["train_tokens"] for p in parts)
    return out


def optimizer_step(lrn: LocalLearner, zero_grad: bool = False) -> float:
    """Clip, step at the scheduled learning rate, refresh the compute copy; returns the
    grad-norm. A step with nothing to forward (``zero_grad``: every response skipped for
    A = 0, or filtered out) is still taken with a zero gradient: Adam then moves the
    weights by its momentum, exactly as after a full forward/backward of zero-advantage
    responses. One rule for an all-skipped and an all-filtered step."""
    if zero_grad:
        for p in lrn.policy.parameters():
            p.grad = torch.zeros_like(p)
    grad_norm = clip_gradients(lrn.policy, lrn.cfg.max_grad_norm)
    for group in lrn.optimizer.param_groups:
        group["lr"] = scheduled_lr(lrn.cfg, lrn.state.optim_steps)
    lrn.optimizer.step()
    lrn.state.optim_steps += 1
    lrn.optimizer.zero_grad(set_to_none=True)
    copy_weights(lrn.policy, lrn.compute)
    return grad_norm


def scheduled_lr(cfg: TrainConfig, done: int) -> float:
    """lr of optimizer step ``done`` (0-based): linear warm-up over ``lr_warmup_steps``, then
    constant (the reference recipe), linear decay to 0, or cosine decay to 0 over the run's
    ``total_optim_steps``."""
    if done < cfg.lr_warmup_steps:
        return cfg.lr * (done + 1) / cfg.lr_warmup_steps
    if cfg.lr_schedule == "constant":
        return cfg.lr
    total = max(cfg.total_optim_steps() - cfg.lr_warmup_steps, 1)
    frac = min((done - cfg.lr_warmup_steps) / total, 1.0)
    if cfg.lr_schedule == "linear":
        return cfg.lr * (1.0 - frac)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * frac))


def clip_gradients(model: torch.nn.Module, max_norm: float) -> float:
    """Global grad-norm (before clipping); clips when max_norm > 0. With sharded (DTensor)
    gradients torch computes the norm across every rank's shard."""
    params = [p for p in model.parameters() if p.grad is not None]
    limit = max_norm if max_norm > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(params, limit)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
