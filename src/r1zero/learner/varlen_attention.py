"""FlexAttention over packed micro-batches: the GPU path of `r1zero.learner.batching.Packed`
without a dense mask.

A packed micro-batch carries two ids per flat token, its prompt group g and its branch b
(0 = the group's shared prompt prefix, 1 + r = sequence r's suffix). A group's prefix
precedes its suffixes in flat order and each suffix is contiguous, so query q may attend
key k iff

    allowed(q, k) = g[q] = g[k]  and  k <= q  and  (b[k] = 0  or  b[k] = b[q])

(`packed_mask_mod`): a response token sees its prompt and its own earlier tokens, never a
sibling response. FlexAttention (torch >= 2.5, compiled to a Triton kernel on CUDA) skips
the 128 x 128 tiles where nothing is allowed and evaluates the rule inside the others, so
neither the CPU nor the GPU ever holds an [N, N] (or [M, Lq, Lk]) mask: the block mask is
built on the device from the ids, a slab of query rows at a time (`packed_block_mask`).
Q/K/V keep their own head counts (``enable_gqa``), and positions and projections are
those of the flat row, as for the segment kernel (`r1zero.learner.segment_attention`).

Why not flash-attn's ``flash_attn_varlen_func``: its sequences are disjoint ranges of one
row, so a prompt shared by G responses must be duplicated. Done in K/V only (each
response's keys = its prompt's K/V gathered + its own, with flash's bottom-right causal
alignment) it would be exact too, at the price of G copies of the prompt's K/V per layer
and an optional dependency nobody here could test; FlexAttention ships with torch and
keeps the prompt once. On CPU FlexAttention has no backward (torch 2.13), so CPU keeps the
segment kernel's matmuls.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable

import torch

NAME = "r1zero_flex"
"""The ``attn_implementation`` this module registers (transformers' AttentionInterface)."""
BLOCK_SIZE = 128
"""Tile of the block mask (FlexAttention's default sparse block)."""
MAX_SLAB_ELEMENTS = 1 << 24
"""Query rows x keys of one slab of the dense rule while the block mask is built (16 M
booleans, a few tens of MB of temporaries on the device)."""
DEVICES = ("cuda",)
"""Device types where the learner uses FlexAttention (CPU and MPS lack its backward)."""


def available(device: torch.device) -> bool:
    """Whether FlexAttention can train on ``device`` (its type, and torch has the module)."""
    if device.type not in DEVICES:
        return False
    try:
        import torch.nn.attention.flex_attention  # noqa: F401
    except ImportError:
        return False
    return True


def packed_mask_mod(group_ids: torch.Tensor, branch_ids: torch.Tensor) -> Callable:
    """The segment rule (module docstring) as a FlexAttention ``mask_mod(b, h, q, k)``
    over the flat ids ``group_ids, branch_ids [N]``; ``q`` and ``k`` are index tensors of
    any broadcastable shapes (scalars inside the kernel)."""

    def mask_mod(b, h, q_idx, kv_idx):
        same_group = group_ids[q_idx] == group_ids[kv_idx]
        branch_k = branch_ids[kv_idx]
        shared_or_own = (branch_k == 0) | (branch_k == branch_ids[q_idx])
        return same_group & (kv_idx <= q_idx) & shared_or_own

    return mask_mod


def block_classes(group_ids: torch.Tensor, branch_ids: torch.Tensor,
                  block_size: int = BLOCK_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``(partial [B, B], full [B, B])`` booleans over ``B = ceil(N / block_size)`` tiles:
    a tile is full when every (q, k) in it is allowed, partial when some are. Positions
    past N (the last tile's padding) count as not allowed, as in ``create_block_mask``.

    Computed from slabs of query rows ``[R, B*block_size]`` with R chosen so one slab
    holds about ``MAX_SLAB_ELEMENTS``: O(N^2 / R) work, O(R N) memory, on the ids' device.
    """
    n, device = group_ids.numel(), group_ids.device
    blocks = -(-n // block_size)
    padded = blocks * block_size
    rule = packed_mask_mod(group_ids, branch_ids)
    keys = torch.arange(padded, device=device)
    keys_real = keys < n  # [P]
    keys = keys.clamp(max=n - 1)  # padding reads a real id; keys_real masks it out
    rows = block_size * max(1, MAX_SLAB_ELEMENTS // (padded * block_size))
    partial, full = [], []
    for start in range(0, padded, rows):
        q = torch.arange(start, min(start + rows, padded), device=device)  # [R]
        ok = rule(0, 0, q.clamp(max=n - 1)[:, None], keys[None, :])  # [R, P]
        ok &= (q < n)[:, None] & keys_real[None, :]
        tiles = ok.view(-1, block_size, blocks, block_size)  # [R/bs, bs, B, bs]
        any_ = tiles.any(dim=3).any(dim=1)  # [R/bs, B]
        all_ = tiles.all(dim=3).all(dim=1)
        partial.append(any_ & ~all_)
        full.append(all_)
    return torch.cat(partial), torch.cat(full)


def _ordered(dense: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A ``[B, B]`` tile matrix as FlexAttention's ``(count [1, 1, B], columns [1, 1, B, B])``
    int32: each row's selected columns first, ascending (what ``create_block_mask`` gives)."""
    dense = dense.to(torch.int32)
    count = dense.sum(dim=-1, dtype=torch.int32)
    columns = torch.argsort(dense, dim=-1, descending=True, stable=True).to(torch.int32)
    return count[None, None].contiguous(), columns[None, None].contiguous()


def packed_block_mask(group_ids: torch.Tensor, branch_ids: torch.Tensor,
                      block_size: int = BLOCK_SIZE):
    """FlexAttention's ``BlockMask`` (shape ``[1, 1, N, N]``) of a packed micro-batch,
    built on the ids' device without an [N, N] mask (`block_classes`); equal to
    ``create_block_mask(packed_mask_mod(...), 1, 1, N, N, BLOCK_SIZE=block_size)``."""
    from torch.nn.attention.flex_attention import BlockMask

    partial, full = block_classes(group_ids, branch_ids, block_size)
    count, columns = _ordered(partial)
    full_count, full_columns = _ordered(full)
    n = group_ids.numel()
    return BlockMask.from_kv_blocks(count, columns, full_count, full_columns,
                                    BLOCK_SIZE=block_size,
                                    mask_mod=packed_mask_mod(group_ids, branch_ids),
                                    seq_lengths=(n, n))


@functools.cache
def _compiled_flex() -> Callable:
    """FlexAttention compiled once per process. Unfused (eager) it materialises the full
    score matrix. Shapes change every micro-batch: after the first recompile dynamo marks
    them dynamic (torch.compile's default), so the kernel is not rebuilt per length."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention)


def flex(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, block_mask,
         scale: float) -> torch.Tensor:
    """``query [1, H, N, D]``, ``key/value [1, Hkv, N, D]`` -> ``[1, H, N, D]`` under
    ``block_mask``: compiled on CUDA, eager elsewhere (the CPU tests, forward only)."""
    from torch.nn.attention.flex_attention import flex_attention

    gqa = query.shape[1] != key.shape[1]
    if query.device.type in DEVICES:
        return _compiled_flex()(query, key, value, block_mask=block_mask, scale=scale,
                                enable_gqa=gqa)
    with warnings.catch_warnings():  # eager on purpose: torch's "use torch.compile" advice
        warnings.filterwarnings("ignore", message="flex_attention called without torch.compile")
        return flex_attention(query, key, value, block_mask=block_mask, scale=scale,
                              enable_gqa=gqa)


def varlen_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                     **kwargs):
    """The AttentionInterface kernel: ``query [1, H, N, D]``, ``key/value [1, Hkv, N, D]``
    -> ``([1, N, H, D], None)``. The learner passes the micro-batch's ``BlockMask`` as the
    4-D ``attention_mask`` (so transformers builds no mask of its own); any other call
    (generation, a plain forward) falls back to sdpa."""
    from torch.nn.attention.flex_attention import BlockMask

    if not isinstance(attention_mask, BlockMask):
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    if module.training and dropout > 0:
        raise ValueError(f"{NAME}: FlexAttention has no attention dropout (the model asks for "
                         f"{dropout}); use --attn-implementation r1zero_segments")
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    out = flex(query, key, value, attention_mask, scale)  # [1, H, N, D]
    return out.transpose(1, 2), None


def register() -> None:
    """Make `NAME` a valid ``attn_implementation`` (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, varlen_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # masks for the sdpa fallback
