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
slower for such rows) in `SegmentAttention`, which recomputes the regrouping and the
probabilities in backward rather than keeping the fp32 [M, H, Lq, Lk] block (the largest
single activation: 554 MiB per 2,048-token fp32 micro-batch of SmolLM2-135M) and the padded
per-segment copies of Q, K and V (about twice the compact tensors it keeps instead); with
dropout, plain autograd (`matmul_attention`). Elsewhere it goes through
`scaled_dot_product_attention` with the boolean mask (memory-efficient kernel, no [Lq, Lk]
score matrix kept, but the [M, Lq, Lk] mask is built on the CPU and copied over). On CUDA
the learner prefers FlexAttention over the same layout without any dense mask
(`r1zero.learner.varlen_attention`); this kernel is its fallback there and the reference it
is tested against. Calls without segments (e.g. generation with the transformers backend on
the same module) fall back to sdpa.
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
    scale = scaling if scaling is not None else dim ** -0.5
    p_drop = dropout if module.training else 0.0
    if query.device.type in MATMUL_DEVICES:
        if p_drop > 0:  # the dropout mask would have to be kept too: plain autograd
            out = matmul_attention(*regroup(query, key, value, seg, scale), seg.bias, p_drop)
        else:
            out = SegmentAttention.apply(query, key, value, seg, scale)  # [M, Hkv, G*Lq, D]
        g = heads // kv_heads
        out = out.view(m, kv_heads, g, lq, dim).permute(0, 3, 1, 2, 4)  # [M, Lq, Hkv, G, D]
    else:
        q, k, v = _gather(query, key, value, seg)
        out = sdpa_grouped(q.transpose(0, 1), k, v, seg.mask[:, None], p_drop, scale)
        out = out.transpose(1, 2)  # [M, Lq, H, D]
    out = out.reshape(m * lq, heads, dim).index_select(0, seg.gather_back)  # [N, H, D]
    return out[None], None


def _gather(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, seg):
    """Tokens regrouped per segment: ``query [1, H, N, D]`` -> ``q [H, M, Lq, D]``,
    ``key/value [1, Hkv, N, D]`` -> ``k/v [M, Hkv, Lk, D]`` (views of copies)."""
    heads, kv_heads, dim = query.shape[1], key.shape[1], query.shape[3]
    m, lq = seg.q_index.shape
    lk = seg.k_index.shape[1]
    # index_select (backward: index_add) rather than advanced indexing (backward: a slow
    # accumulating index_put on CPU).
    q = query[0].index_select(1, seg.q_index.flatten()).view(heads, m, lq, dim)
    k = key[0].index_select(1, seg.k_index.flatten()).view(kv_heads, m, lk, dim).transpose(0, 1)
    v = value[0].index_select(1, seg.k_index.flatten()).view(kv_heads, m, lk, dim).transpose(0, 1)
    return q, k, v


def regroup(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, seg, scale: float):
    """`_gather`, with grouped-query attention without repeating K/V: the G query heads of
    one K/V head are stacked along the query axis, scaled -> ``qg [M, Hkv, G*Lq, D]``,
    ``k/v [M, Hkv, Lk, D]``."""
    heads, kv_heads, dim = query.shape[1], key.shape[1], query.shape[3]
    m, lq = seg.q_index.shape
    g = heads // kv_heads
    q, k, v = _gather(query, key, value, seg)
    qg = (q * scale).view(kv_heads, g, m, lq, dim).permute(2, 0, 1, 3, 4).reshape(m, kv_heads, g * lq, dim)
    return qg, k, v


def _regroup_backward(grads, inputs, seg, scale: float) -> list:
    """The gradients of `regroup`'s inputs from those of its outputs, by the ops autograd
    runs for it (reshape/permute inverted, the same scale product, ``index_select``'s
    backward ``zeros.index_add_``); ``None`` where a gradient is ``None``."""
    grad_qg, grad_k, grad_v = grads
    query = inputs[0]
    heads, kv_heads, dim = query.shape[1], inputs[1].shape[1], query.shape[3]
    m, lq = seg.q_index.shape
    g = heads // kv_heads
    out = [None, None, None]
    if grad_qg is not None:  # [M, Hkv, G*Lq, D] -> [H, M*Lq, D]
        grad_qg = grad_qg.reshape(m, kv_heads, g, lq, dim).permute(1, 2, 0, 3, 4).reshape(heads, m, lq, dim)
        grad_qg = (grad_qg * scale).reshape(heads, m * lq, dim)
    for i, (grad, index) in enumerate(zip((grad_qg, grad_k, grad_v),
                                          (seg.q_index, seg.k_index, seg.k_index))):
        if grad is None:
            continue
        if i:  # [M, Hkv, Lk, D] -> [Hkv, M*Lk, D]
            grad = grad.transpose(0, 1).reshape(kv_heads, -1, dim)
        x = inputs[i]
        out[i] = x.new_zeros(x.shape[1:]).index_add_(1, index.flatten(), grad)[None]
    return out


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
    dropout) for ``qg, k, v = regroup(query, key, value, seg, scale)``: takes the compact
    post-RoPE ``query [1, H, N, D]``, ``key/value [1, Hkv, N, D]`` and the segment plan,
    returns ``O [M, Hkv, G*Lq, D]``. Keeps only ``query, key, value`` for backward (and
    references to the plan, shared by all layers), recomputing the regrouping and ``P``
    there:

        dV = Pᵀ dO,   dP = dO Vᵀ,   D = rowsum(dP ∘ P) (= rowsum(dO ∘ O)),
        dS = P ∘ (dP − D),   d(qg) = dS K,   dK = dSᵀ qg,

    then d(qg), dK, dV back through the regrouping (`_regroup_backward`: inverse
    permute/reshape, the scale, ``index_add_`` for ``index_select``).

    Why: plain autograd keeps the fp32 ``P [M, Hkv, G*Lq, Lk]`` (and its cast under bf16):
    554 MiB of the 3.7 GiB of activations kept per 2,048-token micro-batch of SmolLM2-135M
    in fp32, the largest single item. And the regrouped tensors are larger than the compact
    ones, since segments are padded (``Lq``, ``Lk`` are maxima) and a prompt's keys are
    copied into every segment of its group: keeping them took 243 MiB (``qg``) + 244 MiB
    (``k``, ``v``) there, against ~231 MiB for the compact ``query, key, value`` together.
    Recomputing costs one more regrouping, ``qg kᵀ`` and softmax.

    Same numerics as plain autograd: outputs and dV bit for bit, d(query) and dK up to the
    summation order of their matmuls (autograd's matmul backward hands BLAS other layouts:
    last-bit differences in fp32 and fp64). The regrouping and its backward are the ops
    autograd runs; ``P`` is recomputed by forward's fp32 softmax (not as
    ``exp(S − lse)`` from a saved log-sum-exp, which differs in the last bits, and on a
    row whose scores are all the dtype's lowest value gives 1 where softmax gives 1/Lk),
    cast to the input dtype for the matmuls as forward does, and ``dS`` comes from the op
    autograd runs for softmax (``_softmax_backward_data``: D from ``dP ∘ P``, so ``O`` is
    not kept either). Grouped-query heads are stacked along the query axis (``G*Lq``), so
    dK and dV sum over a K/V head's query heads inside the matmuls. Backward runs under
    forward's autocast state, so its matmuls take forward's dtypes; their results are cast
    to the inputs' dtypes before the regrouping's backward, as autograd's engine does.
    """

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu")
    def forward(ctx, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, seg,
                scale: float) -> torch.Tensor:
        ctx.seg, ctx.scale = seg, scale
        ctx.save_for_backward(query, key, value)
        qg, k, v = regroup(query, key, value, seg, scale)
        return torch.matmul(_probs(qg, k, seg.bias).to(qg.dtype), v)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad_out: torch.Tensor):
        inputs = ctx.saved_tensors
        seg = ctx.seg
        need_q, need_k, need_v = ctx.needs_input_grad[:3]
        qg, k, v = regroup(*inputs, seg, ctx.scale)
        p32 = _probs(qg, k, seg.bias)
        p = p32.to(qg.dtype)
        grad_v = torch.matmul(p.transpose(-1, -2), grad_out).to(v.dtype) if need_v else None
        del p
        grad_qg = grad_k = None
        if need_q or need_k:
            dp = torch.matmul(grad_out, v.transpose(-1, -2)).float()
            ds = torch._softmax_backward_data(dp, p32, -1, torch.float32).to(qg.dtype)
            del dp, p32
            grad_qg = torch.matmul(ds, k).to(qg.dtype) if need_q else None
            grad_k = torch.matmul(ds.transpose(-1, -2), qg).to(k.dtype) if need_k else None
        return (*_regroup_backward((grad_qg, grad_k, grad_v), inputs, seg, ctx.scale), None, None)


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
