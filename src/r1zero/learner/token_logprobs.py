"""Output layer + log-softmax + target gather (+ entropy) as one autograd function.

For each response position i with hidden state h_i, target o_i and temperature T:

    z_i   = (W h_i + b) / T                                 logits  [V]
    lse_i = log Σ_v exp z_iv
    lp_i  = z_i[o_i] − lse_i                                log π(o_i | ·)
    H_i   = lse_i − Σ_v p_iv z_iv,  p_i = softmax(z_i)       entropy

    ∂lp_i/∂z_iv = 1[v = o_i] − p_iv
    ∂H_i/∂z_iv  = −p_iv (log p_iv + H_i)

Why not plain torch ops: autograd would keep fp32 copies of the ``[k, V]`` logits for
each of ``.float()``, ``/ T``, ``logsumexp`` and the entropy's softmax, and stream the whole
block through memory about ten times; with a 49k vocabulary that is ~0.7 GB per pass per
micro-batch on a CPU. Here the logits are kept once, in the matmul's dtype (bf16 under bf16
precision, so exactly what autograd would keep), everything per-vocabulary is done on row
chunks that stay in cache, in fp32, and the backward writes the logits' gradient over them.
Libraries with a fused linear + cross-entropy (Liger, Apple's cut-cross-entropy) are
Triton/GPU only and return a loss, not per-token log-probs and entropy.
"""

from __future__ import annotations

import torch

ROWS_PER_CHUNK = 64
"""Rows of the [k, V] logits handled at once: 64 x 49k fp32 = 12.6 MB, about one L3."""
OVERWRITE_LOGITS = True
"""Backward writes the logits' gradient over the saved logits (one backward per graph, as
training runs it); False keeps them, for ``retain_graph`` and gradcheck."""


class _TokenLogprobs(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, bias, targets, temperature, with_entropy, entropy_grad):
        with torch.autocast(h.device.type, enabled=False):
            logits = h @ weight.t()  # [k, V] in the inputs' dtype
            if bias is not None:
                logits += bias
        k = logits.shape[0]
        acc = torch.promote_types(logits.dtype, torch.float32)  # fp32 (fp64 stays fp64)
        lp = torch.empty(k, dtype=acc, device=h.device)
        lse = torch.empty_like(lp)
        ent = torch.zeros_like(lp)  # stays 0 when the entropy is not asked for
        inv_t = 1.0 / temperature
        for s in range(0, k, ROWS_PER_CHUNK):
            z = logits[s:s + ROWS_PER_CHUNK].to(acc, copy=True)  # [c, V], never a view
            if inv_t != 1.0:
                z.mul_(inv_t)
            c_lse = torch.logsumexp(z, dim=-1)  # [c]
            t = targets[s:s + ROWS_PER_CHUNK, None]
            lp[s:s + ROWS_PER_CHUNK] = z.gather(-1, t).squeeze(-1) - c_lse
            lse[s:s + ROWS_PER_CHUNK] = c_lse
            if with_entropy:
                p = (z - c_lse[:, None]).exp_()  # [c, V]
                ent[s:s + ROWS_PER_CHUNK] = c_lse - torch.linalg.vecdot(p, z)
        ctx.save_for_backward(h, weight, logits, targets, lse, ent)
        ctx.has_bias = bias is not None
        ctx.inv_t = inv_t
        ctx.entropy_grad = entropy_grad
        ctx.consumed = False
        if not entropy_grad:
            ctx.mark_non_differentiable(ent)
        return lp, ent

    @staticmethod
    def backward(ctx, g_lp, g_ent):
        if ctx.consumed:
            raise RuntimeError("token_logprobs: a second backward over the same graph, whose saved "
                               "logits the first overwrote; set r1zero.learner.token_logprobs."
                               "OVERWRITE_LOGITS = False for retain_graph / gradcheck")
        h, weight, logits, targets, lse, ent = ctx.saved_tensors
        inv_t = ctx.inv_t
        use_ent = ctx.entropy_grad and g_ent is not None
        # The gradient overwrites the logits chunk by chunk (each chunk is read before it is
        # written): no second [k, V] block at the backward's peak (324 MiB per 2,048-token
        # micro-batch of a 49k vocabulary in fp32).
        grad_logits = logits if OVERWRITE_LOGITS else torch.empty_like(logits)
        ctx.consumed = OVERWRITE_LOGITS
        for s in range(0, logits.shape[0], ROWS_PER_CHUNK):
            e = s + ROWS_PER_CHUNK
            z = logits[s:e].to(lse.dtype, copy=True)
            if inv_t != 1.0:
                z.mul_(inv_t)
            logp = z.sub_(lse[s:e, None])  # [c, V]  log p (z is not needed any more)
            p = logp.exp()
            gl = g_lp[s:e, None]
            gz = p * (-gl)  # ∂lp: −p ...
            gz.scatter_add_(-1, targets[s:e, None], gl)  # ... + 1[v = o]
            if use_ent:
                gz -= p * (logp + ent[s:e, None]) * g_ent[s:e, None]  # ∂H = −p (log p + H)
            if inv_t != 1.0:
                gz.mul_(inv_t)  # ∂z/∂logits = 1/T
            grad_logits[s:e] = gz
        with torch.autocast(h.device.type, enabled=False):
            grad_h = grad_logits @ weight if ctx.needs_input_grad[0] else None
            grad_w = grad_logits.t() @ h if ctx.needs_input_grad[1] else None
        grad_b = grad_logits.sum(0) if ctx.has_bias else None
        return grad_h, grad_w, grad_b, None, None, None, None


def token_logprobs(
    h: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    temperature: float = 1.0,
    with_entropy: bool = True,
    entropy_grad: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(log π(targets) [k], entropy [k] | None)`` in fp32 for hidden states ``h [k, d]``
    under the output layer ``weight [V, d]`` (+ ``bias``) at ``temperature`` (formulas above).

    ``h`` and ``weight`` must share a dtype (the caller casts under autocast). Without
    ``with_entropy`` (reference and old-policy log-probs) the entropy pass is skipped and
    None returned. The entropy carries a gradient only with ``entropy_grad`` (an entropy
    bonus); otherwise it is a metric and costs no backward work.
    """
    if h.dtype != weight.dtype:
        raise TypeError(f"hidden states ({h.dtype}) and output weights ({weight.dtype}) differ")
    with_entropy = with_entropy or entropy_grad
    lp, ent = _TokenLogprobs.apply(h, weight, bias, targets, float(temperature),
                                   bool(with_entropy), bool(entropy_grad))
    return lp, (ent if with_entropy else None)
