"""Turn a step's rollouts into right-trimmed micro-batches for the learner.

Sequences are sorted by length and packed greedily under a token budget
(rows x longest row), so padding is small and memory is bounded. Because the loss
normaliser is computed once for the whole step (see `r1zero.core.losses`), how the step is
cut into micro-batches does not change the update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TrainSequence:
    """One response in learner form."""

    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float
    sampler_logprobs: list[float] | None = None
    """The sampler's per-token log-probs of ``response_ids`` (None if unavailable)."""


@dataclass
class MicroBatch:
    """Right-padded rows; position t predicts token t+1, so targets are ``input_ids[:, 1:]``."""

    index: list[int]
    """Positions of these rows in the step's sequence list."""
    input_ids: torch.Tensor  # [n, L] long
    attention_mask: torch.Tensor  # [n, L] long
    response_mask: torch.Tensor  # [n, L-1] float, 1 where the target token is a response token
    advantages: torch.Tensor  # [n] float
    sampler_logprobs: torch.Tensor | None  # [n, L-1] float, aligned with response_mask

    @property
    def num_tokens(self) -> int:
        return int(self.attention_mask.sum())


def plan_micro_batches(lengths: Sequence[int], token_budget: int) -> list[list[int]]:
    """Group sequence indices so that ``rows * longest_row <= token_budget`` (a single
    sequence longer than the budget gets a micro-batch of its own).

    Longest first: each micro-batch holds similar lengths, so right-trimming removes
    almost all padding.
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = lengths[current[0]] if current else lengths[i]
        if current and (len(current) + 1) * longest > token_budget:
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


def collate(seqs: Sequence[TrainSequence], index: list[int], pad_id: int) -> MicroBatch:
    """Right-pad the chosen sequences to their own longest length (no wasted columns)."""
    rows = [seqs[i] for i in index]
    length = max(len(s.prompt_ids) + len(s.response_ids) for s in rows)
    n = len(rows)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    attention = torch.zeros((n, length), dtype=torch.long)
    resp_mask = torch.zeros((n, length - 1))
    have_sampler = all(s.sampler_logprobs is not None for s in rows)
    sampler = torch.zeros((n, length - 1)) if have_sampler else None
    for r, s in enumerate(rows):
        p, o = len(s.prompt_ids), len(s.response_ids)
        input_ids[r, : p + o] = torch.tensor(s.prompt_ids + s.response_ids)
        attention[r, : p + o] = 1
        # Target position t (predicting token t+1) is a response token for t in [p-1, p+o-1).
        resp_mask[r, p - 1 : p + o - 1] = 1.0
        if sampler is not None:
            sampler[r, p - 1 : p + o - 1] = torch.tensor(s.sampler_logprobs, dtype=torch.float)
    adv = torch.tensor([s.advantage for s in rows], dtype=torch.float)
    return MicroBatch(index, input_ids, attention, resp_mask, adv, sampler)


def make_micro_batches(
    seqs: Sequence[TrainSequence], token_budget: int, pad_id: int
) -> list[MicroBatch]:
    """Plan and collate all micro-batches of a step."""
    lengths = [len(s.prompt_ids) + len(s.response_ids) for s in seqs]
    return [collate(seqs, idx, pad_id) for idx in plan_micro_batches(lengths, token_budget)]
