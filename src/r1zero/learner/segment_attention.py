"""Attention restricted to segments of one flat row: the kernel behind packed micro-batches
(`r1zero.learner.batching.Packed`).

Registered with transformers' `AttentionInterface` under `NAME`, so any model whose
attention goes through that interface (Llama, Qwen2/3, Mistral without sliding windows,
...) runs packed rows unchanged: projections, MLPs and norms see only real tokens, and
only the attention step regroups tokens per segment. For segment m with query slots
``q_index[m]`` and key slots ``k_index[m]``:

    O_m = softmax(Q_m K_mᵀ · scale + mask_m) V_m,   then every token's row is gathered back.

Short segments (RL rows of a few hundred tokens) make the regrouped attention a small
share of the work. On CPU it is computed as plain matmuls (torch's flash kernel measured
slower for such rows); elsewhere through `scaled_dot_product_attention` with the boolean
mask (memory-efficient kernel, no [Lq, Lk] score matrix kept, but the [M, Lq, Lk] mask is
built on the CPU and copied over). On CUDA the learner prefers FlexAttention over the same
layout without any dense mask (`r1zero.learner.varlen_attention`); this kernel is its
fallback there and the reference it is tested against. Calls without segments (e.g.
generation with the transformers backend on the same module) fall back to sdpa.
"""

from __future__ import annotations

import torch

NAME = "r1zero_segments"
KWARG = "r1zero_segments"
"""The keyword the learner passes to the decoder; transformers forwards it to attention."""
MATMUL_DEVICES = ("cpu",)
"""Device types that use plain matmuls; the others use scaled_dot_product_attention."""


def segment_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                      **kwargs):
    """``query [1, H, N, D]``, ``key/value [1, Hkv, N, D]`` -> ``([1, N, H, D], None)``."""
    seg = kwargs.pop(KWARG, None)
    if seg is None:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        return sdpa_attention_forward(module, query, key, value, attention_mask,
                                      scaling=scaling, dropout=dropout, **kwargs)
    heads, kv_heads, dim = query.shape[1], key.shape[1], query.shape[3]
    m, lq = seg.q_index.shape
    lk = seg.k_index.shape[1]
    scale = scaling if scaling is not None else dim ** -0.5
    p_drop = dropout if module.training else 0.0
    # index_select (backward: index_add) rather than advanced indexing (backward: a slow
    # accumulating index_put on CPU).
    q = query[0].index_select(1, seg.q_index.flatten()).view(heads, m, lq, dim)
    k = key[0].index_select(1, seg.k_index.flatten()).view(kv_heads, m, lk, dim).transpose(0, 1)
    v = value[0].index_select(1, seg.k_index.flatten()).view(kv_heads, m, lk, dim).transpose(0, 1)
    if query.device.type in MATMUL_DEVICES:
        # Grouped-query attention without repeating K/V: the G query heads of one K/V head
        # are stacked along the query axis, [M, Hkv, G*Lq, D].
        g = heads // kv_heads
        qg = (q * scale).view(kv_heads, g, m, lq, dim).permute(2, 0, 1, 3, 4).reshape(m, kv_heads, g * lq, dim)
        scores = torch.matmul(qg, k.transpose(-1, -2)).view(m, kv_heads, g, lq, lk)
        scores = scores + seg.bias(scores.dtype)  # [M, 1, 1, Lq, Lk]: 0 or -inf-like
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        probs = torch.nn.functional.dropout(probs, p=p_drop, training=module.training)
        out = torch.matmul(probs.view(m, kv_heads, g * lq, lk), v)  # [M, Hkv, G*Lq, D]
        out = out.view(m, kv_heads, g, lq, dim).permute(0, 3, 1, 2, 4)  # [M, Lq, Hkv, G, D]
    else:
        out = sdpa_grouped(q.transpose(0, 1), k, v, seg.mask[:, None], p_drop, scale)
        out = out.transpose(1, 2)  # [M, Lq, H, D]
    out = out.reshape(m * lq, heads, dim).index_select(0, seg.gather_back)  # [N, H, D]
    return out[None], None


def sdpa_grouped(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor,
                 dropout_p: float, scale: float) -> torch.Tensor:
    """``softmax(q kᵀ · scale + mask) v`` with ``q [M, H, Lq, D]``, ``k/v [M, Hkv, Lk, D]``
    (``H`` a multiple of ``Hkv``) and a boolean ``mask [M, 1, Lq, Lk]`` -> ``[M, H, Lq, D]``.

    K/V heads are shared by SDPA's ``enable_gqa`` rather than repeated, except on CUDA
    when no fused kernel takes grouped heads together with a mask: flash takes no mask,
    and the memory-efficient kernel learnt GQA only recently (pytorch#191085), so SDPA
    would fall back silently to its math kernel and keep fp32 [M, H, Lq, Lk] scores.
    Repeating K/V (Hkv -> H heads of [Lk, D]) is far cheaper than that.
    """
    gqa = q.shape[1] != k.shape[1]
    if gqa and not fused_sdpa_takes_gqa(q, k, v, mask, dropout_p):
        k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
        v = v.repeat_interleave(q.shape[1] // v.shape[1], dim=1)
        gqa = False
    return torch.nn.functional.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale, enable_gqa=gqa)


def fused_sdpa_takes_gqa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         mask: torch.Tensor | None, dropout_p: float) -> bool:
    """Whether SDPA's dispatcher would run ``enable_gqa`` with this mask in a fused CUDA
    kernel (memory-efficient or cuDNN). Off CUDA always True: this branch runs there only
    in tests (CPU uses the matmul branch), where exactness is what counts."""
    if q.device.type != "cuda":
        return True
    from torch.backends import cuda

    params = cuda.SDPAParams(q, k, v, mask, dropout_p, False, True)
    checks = [cuda.can_use_efficient_attention, getattr(cuda, "can_use_cudnn_attention", None)]
    return any(check is not None and check(params, False) for check in checks)


def register() -> None:
    """Make `NAME` a valid ``attn_implementation`` (idempotent)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, segment_attention)
    AttentionMaskInterface.register(NAME, sdpa_mask)  # masks for the sdpa fallback
