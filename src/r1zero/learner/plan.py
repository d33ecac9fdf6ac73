"""How one rollout becomes optimizer steps and micro-batches on each rank: the seeded
partition into steps of ``train_batch_size`` responses, each step's loss normaliser (over
the whole step, every rank's share), the token-balanced share of each rank, and the
micro-batches with the padding collectives need. Pure planning: no forward pass here."""

from __future__ import annotations

import torch

from r1zero.core import losses
from r1zero.learner.base import LearnerParts
from r1zero.learner.batching import (
    MicroBatch,
    TrainSequence,
    make_micro_batches,
    micro_batch_plan,
)
from r1zero.utils import derive_seed


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


def step_norm(lrn: LearnerParts, mini: list[TrainSequence], step: int) -> losses.LossNormalizer:
    """The loss normaliser of one optimizer step, over every response of that step (zero
    advantages included, every rank's share): N responses, T response tokens in the loss
    (an environment's tokens are not), C = the generation budget in force at rollout step
    ``step``."""
    return losses.LossNormalizer(
        num_sequences=float(len(mini)),
        num_tokens=float(sum(s.trained_tokens for s in mini)),
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


def plan_steps(lrn: LearnerParts, seqs: list[TrainSequence], step: int):
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
            and lrn.objective.skips_zero_advantage and not algo.needs_critic)
    plan = []
    for mini in minibatches(seqs, cfg.train_batch_size, derive_seed(cfg.seed, "minibatch", step)):
        # (a teacher's token advantages, on-policy distillation, are not zero with A_i)
        active = [s for s in mini if s.advantage != 0.0 or s.token_advantages is not None] if skip else mini
        index, mbs, real = rank_micro_batches(lrn, active)
        plan.append((step_norm(lrn, mini, step), mbs, real, [active[i] for i in index]))
    return plan


def rank_micro_batches(lrn: LearnerParts, seqs: list[TrainSequence]) -> tuple[list[int], list[MicroBatch], int]:
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
