"""Turn a step's rollouts into right-trimmed micro-batches for the learner.

Sequences are sorted by length and packed greedily under a token budget
(rows x longest row), so padding is small and memory is bounded. Because the loss
normaliser is computed once for the whole step (see `r1zero.core.losses`), how the step is
cut into micro-batches does not change the update.

Packed layout (the default where the model allows it, see
`r1zero.learner.segment_attention`): the G responses of a group share one prompt, and under
causal attention the prompt's hidden states do not depend on what follows it. A packed
micro-batch is one flat row with no padding: each distinct prompt once (minus its last
token), then every response preceded by its prompt's last token. Attention is restricted
per segment (a response sees its own prompt and its own earlier tokens), positions restart
per sequence, so the result is the same function of the weights as padded full rows. For
the default task (prompt ~50 tokens, response ~57, 8 samples per prompt) it cuts the
learner's tokens by about 30 % against length-sorted padded rows.

The layout is carried as two O(N) ids per flat token, its prompt group g and its branch b
(0 = the group's shared prefix, 1 + r = sequence r's suffix). A group's prefix precedes
all of its suffixes and each suffix is contiguous, so in flat indices the segment rule is

    allowed(q, k) = g[q] = g[k]  and  k <= q  and  (b[k] = 0  or  b[k] = b[q]).

FlexAttention evaluates that rule per block on the GPU (`r1zero.learner.varlen_attention`);
the dense per-segment plan (`Segments`, with its [M, Lq, Lk] mask) is built from the ids
only when a kernel asks for it (the CPU matmul and the SDPA paths).
A multi-turn episode (r1zero.envs) is one response with holes: its environment tokens are
in ``response_ids`` (every later token attends to them) with ``loss_mask`` 0, so their
positions are left out of ``response_mask``. Every consumer of the mask (log-probs, loss
weights, the step's normaliser, PPO's values) then sees only the tokens the policy sampled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch


@dataclass(frozen=True)
class TrainSequence:
    """One response in learner form."""

    prompt_ids: list[int]
    response_ids: list[int]
    advantage: float
    sampler_logprobs: list[float] | None = None
    """The sampler's per-token log-probs of ``response_ids`` (None if unavailable)."""
    pair: int = -1
    """Online DPO: index of its preference pair in the rollout (chosen: advantage > 0,
    rejected: < 0); -1 = not in a pair. A pair is never split across optimizer steps or ranks."""
    token_advantages: list[float] | None = None
    """PPO: one advantage per response token (GAE); replaces ``advantage`` in the loss."""
    returns: list[float] | None = None
    """PPO: the critic's per-token targets G_t."""
    old_values: list[float] | None = None
    """PPO: the critic's per-token values before its update (for the value clip)."""
    staleness: list[int] | None = None
    """Per response token: the rollout step minus the weight version that sampled it (0
    on-policy; the mismatch metrics are split by it); None = 0."""
    loss_mask: list[int] | None = None
    """Per response token: 1 = trained on (sampled by the policy), 0 = an environment's token
    (attended to, loss weight 0; r1zero.envs). None = every response token is trained on."""

    def __post_init__(self) -> None:
        if self.loss_mask is not None and len(self.loss_mask) != len(self.response_ids):
            raise ValueError(f"loss_mask has {len(self.loss_mask)} entries for "
                             f"{len(self.response_ids)} response tokens")

    @property
    def trained_tokens(self) -> int:
        """Response tokens in the loss (the environment's excluded)."""
        return len(self.response_ids) if self.loss_mask is None else sum(self.loss_mask)

    def mask_row(self) -> torch.Tensor:
        """``[len(response_ids)]`` float, 1 on the tokens in the loss."""
        if self.loss_mask is None:
            return torch.ones(len(self.response_ids))
        return torch.tensor(self.loss_mask, dtype=torch.float)


@dataclass
class Segments:
    """Which flat tokens attend to which, for `r1zero.learner.segment_attention`.

    A segment is a distinct prompt's prefix (causal over itself) or a sequence's suffix
    (its prefix in full, then causal over itself). Its queries are padded to ``Lq`` and its
    keys to ``Lk``; padded slots are masked and their outputs dropped.
    """

    q_index: torch.Tensor  # [M, Lq] long, flat token of each query slot
    k_index: torch.Tensor  # [M, Lk] long, flat token of each key slot
    mask: torch.Tensor  # [M, Lq, Lk] bool, True = may attend
    gather_back: torch.Tensor  # [N] long, slot (in M*Lq order) holding flat token i's output
    _bias: dict = field(default_factory=dict, init=False, repr=False)

    def to(self, device: torch.device) -> "Segments":
        return Segments(*(t.to(device) for t in (self.q_index, self.k_index, self.mask,
                                                  self.gather_back)))

    def bias(self, dtype: torch.dtype) -> torch.Tensor:
        """Additive mask ``[M, 1, 1, Lq, Lk]`` (0 or the dtype's lowest value), built once
        per dtype and reused by every layer."""
        if dtype not in self._bias:
            bias = torch.zeros(self.mask.shape, dtype=dtype, device=self.mask.device)
            self._bias[dtype] = bias.masked_fill_(~self.mask, torch.finfo(dtype).min)[:, None, None]
        return self._bias[dtype]


@dataclass
class Packed:
    """A micro-batch as one flat row (see the module docstring)."""

    input_ids: torch.Tensor  # [1, N] long
    position_ids: torch.Tensor  # [1, N] long, restarting at 0 for every sequence
    hidden_index: torch.Tensor  # [n, R] long, flat position whose hidden state predicts
    #                             response token t of sequence r (0 where t >= its length)
    targets: torch.Tensor  # [n, R] long, the response tokens (0-padded)
    group_ids: torch.Tensor  # [N] long, the prompt group of each flat token
    branch_ids: torch.Tensor  # [N] long, 0 = shared prompt prefix, 1 + r = sequence r's suffix
    _segments: Segments | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def segments(self) -> Segments:
        """The dense per-segment plan, built from the ids on first use (only the CPU matmul
        and SDPA paths need it; FlexAttention works from the ids alone)."""
        if self._segments is None:
            queries, shared = segment_lists(self.group_ids, self.branch_ids)
            self._segments = segment_plan(queries, shared, self.group_ids.numel())
        return self._segments


@dataclass
class MicroBatch:
    """Right-padded rows; position t predicts token t+1, so targets are ``input_ids[:, 1:]``.

    With ``packed`` the rows exist only for the loss: ``response_mask``,
    ``sampler_logprobs`` and the log-probs are ``[n, R]``, aligned with response tokens, and
    the model runs on ``packed`` (``input_ids``/``attention_mask`` are then None).
    """

    index: list[int]
    """Positions of these rows in the step's sequence list."""
    input_ids: torch.Tensor | None  # [n, L] long
    attention_mask: torch.Tensor | None  # [n, L] long
    response_mask: torch.Tensor  # [n, L-1] float, 1 where the target token is a trained
    #                               response token (an environment's token: 0, see loss_mask)
    advantages: torch.Tensor  # [n] float
    sampler_logprobs: torch.Tensor | None  # [n, L-1] float, aligned with response_mask
    packed: Packed | None = None
    returns: torch.Tensor | None = None  # [n, L-1] PPO value targets, aligned with response_mask
    old_values: torch.Tensor | None = None  # [n, L-1] PPO critic values before the update
    staleness: torch.Tensor | None = None  # [n, L-1] step - sampling version, aligned with response_mask

    @property
    def num_tokens(self) -> int:
        """Tokens the learner runs (padding excluded; a shared prompt counts once)."""
        if self.packed is not None:
            return self.packed.input_ids.shape[1]
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


def right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids [n, longest], mask [n, longest])`` of right-padded integer rows."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(list(r), dtype=torch.long)
        mask[i, : len(r)] = 1
    return ids, mask


def response_aligned(rows: Sequence[TrainSequence], field: str, width: int,
                     start: Sequence[int]) -> torch.Tensor | None:
    """``[n, width]`` float tensor of a per-response-token field (sampler log-probs, PPO
    advantages, returns, values) placed from column ``start[r]`` of row r; None unless every
    row has the field."""
    values = [getattr(s, field) for s in rows]
    if any(v is None for v in values):
        return None
    out = torch.zeros((len(rows), width))
    for r, (v, at) in enumerate(zip(values, start)):
        out[r, at : at + len(v)] = torch.tensor(v, dtype=torch.float)
    return out


def _with_token_fields(mb: MicroBatch, rows: Sequence[TrainSequence], width: int,
                       start: Sequence[int]) -> MicroBatch:
    """PPO's per-token advantages (replacing the per-sequence ones), returns and values;
    each token's staleness."""
    token_adv = response_aligned(rows, "token_advantages", width, start)
    if token_adv is not None:
        mb.advantages = token_adv  # [n, width]
    mb.returns = response_aligned(rows, "returns", width, start)
    mb.old_values = response_aligned(rows, "old_values", width, start)
    mb.staleness = response_aligned(rows, "staleness", width, start)
    return mb


def collate(seqs: Sequence[TrainSequence], index: list[int], pad_id: int) -> MicroBatch:
    """Right-pad the chosen sequences to their own longest length (no wasted columns)."""
    rows = [seqs[i] for i in index]
    input_ids, attention = right_pad([s.prompt_ids + s.response_ids for s in rows], pad_id)
    n, length = input_ids.shape
    resp_mask = torch.zeros((n, length - 1))
    # Target position t (predicting token t+1) is a response token for t in [p-1, p+o-1).
    start = [len(s.prompt_ids) - 1 for s in rows]
    for r, s in enumerate(rows):
        resp_mask[r, start[r] : start[r] + len(s.response_ids)] = s.mask_row()
    sampler = response_aligned(rows, "sampler_logprobs", length - 1, start)
    adv = torch.tensor([s.advantage for s in rows], dtype=torch.float)
    return _with_token_fields(MicroBatch(index, input_ids, attention, resp_mask, adv, sampler),
                              rows, length - 1, start)


def collate_packed(seqs: Sequence[TrainSequence], index: list[int]) -> MicroBatch:
    """One flat row: distinct prompt prefixes (prompt minus its last token), then each
    sequence's suffix (last prompt token + response), with each token's group and branch
    ids (see the module docstring)."""
    rows = [seqs[i] for i in index]
    flat: list[int] = []
    positions: list[int] = []
    runs: list[tuple[int, int, int]] = []  # per placed run: (group, branch, length)
    group_of: dict[tuple[int, ...], int] = {}  # prompt prefix -> its group

    def place(tokens: Sequence[int], start_position: int, group: int, branch: int) -> list[int]:
        at = list(range(len(flat), len(flat) + len(tokens)))
        flat.extend(tokens)
        positions.extend(range(start_position, start_position + len(tokens)))
        runs.append((group, branch, len(tokens)))
        return at

    for s in rows:
        key = tuple(s.prompt_ids[:-1])
        if key and key not in group_of:
            group_of[key] = len(group_of)
            place(key, 0, group_of[key], 0)
    n, longest = len(rows), max(len(s.response_ids) for s in rows)
    hidden_index = torch.zeros((n, longest), dtype=torch.long)
    targets = torch.zeros((n, longest), dtype=torch.long)
    resp_mask = torch.zeros((n, longest))
    for r, s in enumerate(rows):
        # A one-token prompt has no prefix: its sequence is a group of its own.
        group = group_of.get(tuple(s.prompt_ids[:-1]), len(group_of) + r)
        own = place([s.prompt_ids[-1], *s.response_ids], len(s.prompt_ids) - 1, group, 1 + r)
        o = len(s.response_ids)
        hidden_index[r, :o] = torch.tensor(own[:o])  # token own[t] predicts response token t
        targets[r, :o] = torch.tensor(s.response_ids)
        resp_mask[r, :o] = s.mask_row()
    sampler = response_aligned(rows, "sampler_logprobs", longest, [0] * n)
    run_group, run_branch, run_length = torch.tensor(runs).unbind(1)  # [runs] each
    packed = Packed(torch.tensor([flat]), torch.tensor([positions]), hidden_index, targets,
                    group_ids=run_group.repeat_interleave(run_length),
                    branch_ids=run_branch.repeat_interleave(run_length))
    adv = torch.tensor([s.advantage for s in rows], dtype=torch.float)
    return _with_token_fields(MicroBatch(index, None, None, resp_mask, adv, sampler, packed),
                              rows, longest, [0] * n)


def segment_lists(group_ids: torch.Tensor,
                  branch_ids: torch.Tensor) -> tuple[list[list[int]], list[list[int]]]:
    """``(queries, shared)`` per segment for `segment_plan`, from the flat ids ``[N]``.

    A segment is a run of equal (group, branch) in flat order: a prefix (branch 0, sees
    nothing before it) or a suffix (sees its group's prefix in full). Segment order is
    flat order, so the plan is the one the tokens were placed in.
    """
    n = group_ids.numel()
    change = (group_ids[1:] != group_ids[:-1]) | (branch_ids[1:] != branch_ids[:-1])  # [N-1]
    starts = [0, *(change.nonzero().flatten() + 1).tolist()]
    ends = [*starts[1:], n]
    g, b = group_ids[starts].tolist(), branch_ids[starts].tolist()
    prefix = {gi: list(range(s, e)) for s, e, gi, bi in zip(starts, ends, g, b) if bi == 0}
    queries = [list(range(s, e)) for s, e in zip(starts, ends)]
    shared = [[] if bi == 0 else prefix.get(gi, []) for gi, bi in zip(g, b)]
    return queries, shared


def segment_plan(queries: list[list[int]], shared: list[list[int]], num_tokens: int) -> Segments:
    """Index tensors and the mask for `Segments` (see there)."""
    m = len(queries)
    lq = max(len(q) for q in queries)
    lk = max(len(sh) + len(q) for q, sh in zip(queries, shared))
    q_index = torch.zeros((m, lq), dtype=torch.long)
    k_index = torch.zeros((m, lk), dtype=torch.long)
    mask = torch.zeros((m, lq, lk), dtype=torch.bool)
    gather_back = torch.empty(num_tokens, dtype=torch.long)
    for i, (q, sh) in enumerate(zip(queries, shared)):
        q_index[i, : len(q)] = torch.tensor(q)
        q_index[i, len(q):] = q[0]  # padding slots: any real token; their outputs are dropped
        k_index[i, : len(sh) + len(q)] = torch.tensor(sh + q)
        p = len(sh)
        mask[i, :, :p] = True  # the whole prefix
        mask[i, : len(q), p : p + len(q)] = torch.ones(len(q), len(q), dtype=torch.bool).tril()
        mask[i, len(q):, p] = True  # padding queries see one real key: no empty softmax row
        gather_back[torch.tensor(q)] = i * lq + torch.arange(len(q))
    return Segments(q_index, k_index, mask, gather_back)


def plan_packed(seqs: Sequence[TrainSequence], token_budget: int) -> list[list[int]]:
    """Whole groups (sequences with the same prompt) first-fit into micro-batches whose
    packed size (each prefix once + suffixes) stays within ``token_budget``; a group that
    does not fit in an empty micro-batch is split."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(seqs):
        groups.setdefault(tuple(s.prompt_ids[:-1]), []).append(i)
    plans: list[list[int]] = []
    current: list[int] = []
    size, present = 0, set()  # packed size of `current`; prefixes already in it
    for prefix, members in groups.items():
        for i in members:
            suffix = 1 + len(seqs[i].response_ids)
            extra = suffix + (0 if prefix in present else len(prefix))
            if current and size + extra > token_budget:
                plans.append(current)
                current, size, present = [], 0, set()
                extra = suffix + len(prefix)
            current.append(i)
            size += extra
            present.add(prefix)
    if current:
        plans.append(current)
    return plans


def micro_batch_plan(
    seqs: Sequence[TrainSequence], token_budget: int, packed: bool = False
) -> list[list[int]]:
    """Which sequences go into which micro-batch (indices), without collating them."""
    if packed:
        return plan_packed(seqs, token_budget)
    return plan_micro_batches([len(s.prompt_ids) + len(s.response_ids) for s in seqs], token_budget)


def make_micro_batches(
    seqs: Sequence[TrainSequence], token_budget: int, pad_id: int, packed: bool = False
) -> list[MicroBatch]:
    """Plan and collate all micro-batches of a step: packed (see the module docstring) or
    length-sorted right-padded rows."""
    plan = micro_batch_plan(seqs, token_budget, packed)
    if packed:
        return [collate_packed(seqs, idx) for idx in plan]
    return [collate(seqs, idx, pad_id) for idx in plan]
