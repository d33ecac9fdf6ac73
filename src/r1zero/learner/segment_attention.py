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
slower for such rows) in `SegmentAttention`, which recomputes the probabilities in
backward rather than keeping the fp32 [M, H, Lq, Lk] block (the largest single activation:
554 MiB per 2,048-token fp32 micro-batch of SmolLM2-135M); with dropout, plain autograd
(`matmul_attention`). Elsewhere it goes through `scaled_dot_product_attention` with the
boolean mask (memory-efficient kernel, no [Lq, Lk] score matrix kept, but the [M, Lq, Lk]
mask is built on the CPU and copied over). On CUDA the learner prefers FlexAttention over
the same layout without any dense mask (`r1zero.learner.varlen_attention`); this kernel is
its fallback there and the reference it is tested against. Calls without segments (e.g.
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
        if p_drop > 0:  # the dropout mask would have to be kept too: plain autograd
            out = matmul_attention(qg, k, v, seg.bias, p_drop)
        else:
            out = SegmentAttention.apply(qg, k, v, seg.bias)  # [M, Hkv, G*Lq, D]
        out = out.view(m, kv_heads, g, lq, dim).permute(0, 3, 1, 2, 4)  # [M, Lq, Hkv, G, D]
    else:
        out = sdpa_grouped(q.transpose(0, 1), k, v, seg.mask[:, None], p_drop, scale)
        out = out.transpose(1, 2)  # [M, Lq, H, D]
    out = out.reshape(m * lq, heads, dim).index_select(0, seg.gather_back)  # [N, H, D]
    return out[None], None


def _probs(qg: torch.Tensor, k: torch.Tensor, bias) -> torch.Tensor:
    """``softmax(qg kᵀ + bias)`` in fp32 -> ``[M, Hkv, G*Lq, Lk]``, for ``qg [M, Hkv, G*Lq, D]``
    (scaled), ``k [M, Hkv, Lk, D]`` and ``bias(dtype) [M, 1, 1, Lq, Lk]`` (0 or -inf-like)."""
    m, kv_heads, glq, _ = qg.shape
    scores = torch.matmul(qg, k.transpose(-1, -2))
    b = bias(scores.dtype)
    scores = scores.view(m, kv_heads, glq // b.shape[-2], *b.shape[-2:]) + b
    return torch.softmax(scores, dim=-1, dtype=torch.float32).view(m, kv_heads, glq, -1)


def matmul_attention(qg: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias,
                     dropout_p: float) -> torch.Tensor:
    """``dropout(softmax(qg kᵀ + bias)) v`` through plain autograd (shapes as `_probs`,
    ``v [M, Hkv, Lk, D]``) -> ``[M, Hkv, G*Lq, D]``. Keeps the fp32 probabilities (and
    their cast and the dropout mask) for backward; without dropout `SegmentAttention`
    computes the same without keeping them."""
    probs = _probs(qg, k, bias).to(qg.dtype)
    probs = torch.nn.functional.dropout(probs, p=dropout_p, training=dropout_p > 0)
    return torch.matmul(probs, v)


class SegmentAttention(torch.autograd.Function):
    """``O = P V`` with ``P = softmax(S)``, ``S = qg kᵀ + bias`` (`matmul_attention` without
    dropout), keeping only ``qg, k, v`` for backward (``bias`` is the segment plan's,
    shared by all layers) and recomputing ``P`` there:

        dV = Pᵀ dO,   dP = dO Vᵀ,   D = rowsum(dP ∘ P) (= rowsum(dO ∘ O)),
        dS = P ∘ (dP − D),   d(qg) = dS K,   dK = dSᵀ qg.

    Why: plain autograd keeps the fp32 ``P [M, Hkv, G*Lq, Lk]`` (and its cast under bf16):
    554 MiB of the 3.7 GiB of activations kept per 2,048-token micro-batch of SmolLM2-135M
    in fp32, the largest single item. Recomputing costs one more ``qg kᵀ`` and softmax.

    Same numerics as plain autograd, bit for bit: ``P`` is recomputed by forward's fp32
    softmax (not as ``exp(S − lse)`` from a saved log-sum-exp, which differs in the last
    bits, and on a row whose scores are all the dtype's lowest value gives 1 where softmax
    gives 1/Lk), cast to the input dtype for the matmuls as forward does, and ``dS`` comes
    from the op autograd runs for softmax (``_softmax_backward_data``: D from ``dP ∘ P``,
    so ``O`` is not kept either). Grouped-query heads are stacked along the query axis
    (``G*Lq``), so dK and dV sum over a K/V head's query heads inside the matmuls. Backward
    runs under forward's autocast state, so its matmuls take forward's dtypes.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, qg: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias) -> torch.Tensor:
        ctx.bias = bias
        ctx.save_for_backward(qg, k, v)
        return torch.matmul(_probs(qg, k, bias).to(qg.dtype), v)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_out: torch.Tensor):
        qg, k, v = ctx.saved_tensors
        p32 = _probs(qg, k, ctx.bias)
        p = p32.to(qg.dtype)
        grad_v = torch.matmul(p.transpose(-1, -2), grad_out)
        dp = torch.matmul(grad_out, v.transpose(-1, -2)).float()
        ds = torch._softmax_backward_data(dp, p32, -1, torch.float32).to(qg.dtype)
        return torch.matmul(ds, k), torch.matmul(ds.transpose(-1, -2), qg), grad_v, None


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
