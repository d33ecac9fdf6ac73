"""Learner-side model calls: per-token log-probs (and entropy) of response tokens.

Only response positions go through the output layer: the prompt's logits are never
needed, and the vocabulary projection is a large share of a small model's compute. Packed
micro-batches (`r1zero.learner.batching.Packed`) run as one flat row through
`r1zero.learner.segment_attention` (dense per-segment mask: matmuls on CPU, SDPA elsewhere)
or `r1zero.learner.varlen_attention` (FlexAttention block mask from per-token ids, CUDA).
"""

from __future__ import annotations

import torch

from r1zero.learner import segment_attention, varlen_attention
from r1zero.learner.batching import MicroBatch
from r1zero.learner.precision import autocast_context
from r1zero.learner.token_logprobs import token_logprobs

# Name of the FSDP forward method r1zero.cluster.fsdp.shard attaches (kept here so that the
# learner never imports the cluster code).
FSDP_LOGPROBS_METHOD = "r1zero_response_logprobs"


def response_logprobs(
    model: torch.nn.Module,
    mb: MicroBatch,
    *,
    temperature: float = 1.0,
    with_entropy: bool = False,
    precision: str = "fp32",
    fsdp_inner: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Log-probs of each response token under ``model`` at ``temperature``.

    Returns ``(logprobs, entropy | None)``, shaped like ``mb.response_mask`` (``[n, L-1]``
    for padded rows, ``[n, R]`` for packed ones) and zero outside it.
    log π(o_t | q, o_<t) = logits_t[o_t]/T − logsumexp(logits_t/T), computed by
    `r1zero.learner.token_logprobs` in fp32. The entropy comes from the same pass; it carries
    a gradient only with ``with_entropy="grad"`` (an entropy bonus).

    An FSDP2-sharded model (`r1zero.cluster.fsdp.shard`) carries this pass as a registered
    FSDP forward method, so that its root parameters are gathered around it; it is called
    through that method (``fsdp_inner`` marks the call from inside it).
    """
    if not fsdp_inner and hasattr(model, FSDP_LOGPROBS_METHOD):
        return getattr(model, FSDP_LOGPROBS_METHOD)(
            mb, temperature=temperature, with_entropy=with_entropy, precision=precision)
    device = next(model.parameters()).device
    mask = mb.response_mask.to(device).bool()
    h, targets = response_hidden(model.get_decoder(), mb, mask, device, precision)
    head = model.get_output_embeddings()
    weight, bias = head.weight, head.bias
    if precision == "bf16-autocast":  # what autocast would do to the output layer's matmul
        h, weight = h.to(torch.bfloat16), weight.to(torch.bfloat16)
        bias = None if bias is None else bias.to(torch.bfloat16)
    else:
        h = h.to(weight.dtype)
    lp, ent = token_logprobs(h, weight, targets, bias=bias, temperature=temperature,
                             with_entropy=bool(with_entropy), entropy_grad=with_entropy == "grad")
    logprobs = torch.zeros(mask.shape, device=device, dtype=lp.dtype).masked_scatter(mask, lp)
    entropy = None
    if with_entropy:
        entropy = torch.zeros(mask.shape, device=device, dtype=ent.dtype).masked_scatter(mask, ent)
    return logprobs, entropy


def response_hidden(decoder: torch.nn.Module, mb: MicroBatch, mask: torch.Tensor,
                    device: torch.device, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The decoder's hidden states ``[k, d]`` at the positions that predict the response
    tokens (the states s_t before each token o_t), and those tokens ``[k]``, row-major over
    ``mask``: padded rows or a packed micro-batch. Shared by the log-prob pass and the
    critic's value pass."""
    with autocast_context(device, precision):
        if mb.packed is None:
            input_ids = mb.input_ids.to(device)
            hidden = decoder(input_ids=input_ids, attention_mask=mb.attention_mask.to(device),
                             use_cache=False).last_hidden_state  # [n, L, d]
            return hidden[:, :-1][mask], input_ids[:, 1:][mask]  # [k, d], [k]
        return packed_hidden(decoder, mb, mask, device)


def packed_hidden(decoder: torch.nn.Module, mb: MicroBatch, mask: torch.Tensor,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states ``[k, d]`` that predict the response tokens of a packed micro-batch,
    and those tokens ``[k]`` (row-major over ``mask``)."""
    pk = mb.packed
    if decoder.config._attn_implementation == varlen_attention.NAME:
        # Only O(N) ids cross to the device; the block mask is built there. As a 4-D mask
        # it also makes transformers skip building one of its own.
        block_mask = varlen_attention.packed_block_mask(pk.group_ids.to(device),
                                                        pk.branch_ids.to(device))
        kwargs = {"attention_mask": block_mask}
    else:
        seg = pk.segments.to(device)
        # The 4-D mask makes transformers skip building its own; the segment kernel uses `seg`.
        kwargs = {"attention_mask": seg.mask[:, None], segment_attention.KWARG: seg}
    hidden = decoder(input_ids=pk.input_ids.to(device), position_ids=pk.position_ids.to(device),
                     use_cache=False, **kwargs).last_hidden_state  # [1, N, d]
    return hidden[0][pk.hidden_index.to(device)[mask]], pk.targets.to(device)[mask]
