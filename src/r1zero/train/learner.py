"""Learner-side model calls: per-token log-probs (and entropy) of response tokens.

Only response positions go through the output layer: the prompt's logits are never
needed, and the vocabulary projection is a large share of a small model's compute. Packed
micro-batches (`r1zero.train.batching.Packed`) run as one flat row through
`r1zero.train.segment_attention`.
"""

from __future__ import annotations

import torch

from r1zero.config import ConfigError
from r1zero.train import segment_attention
from r1zero.train.batching import MicroBatch
from r1zero.train.precision import autocast_context
from r1zero.train.token_logprobs import token_logprobs

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
    `r1zero.train.token_logprobs` in fp32. The entropy comes from the same pass; it carries
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
    with autocast_context(device, precision):
        decoder = model.get_decoder()
        if mb.packed is None:
            input_ids = mb.input_ids.to(device)
            hidden = decoder(input_ids=input_ids, attention_mask=mb.attention_mask.to(device),
                             use_cache=False).last_hidden_state  # [n, L, d]
            h = hidden[:, :-1][mask]  # [k, d]  response positions only
            targets = input_ids[:, 1:][mask]  # [k]
        else:
            h, targets = packed_hidden(decoder, mb, mask, device)
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


def packed_hidden(decoder: torch.nn.Module, mb: MicroBatch, mask: torch.Tensor,
                  device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Hidden states ``[k, d]`` that predict the response tokens of a packed micro-batch,
    and those tokens ``[k]`` (row-major over ``mask``)."""
    pk = mb.packed
    seg = pk.segments.to(device)
    # The 4-D mask makes transformers skip building its own; the segment kernel uses `seg`.
    hidden = decoder(input_ids=pk.input_ids.to(device), position_ids=pk.position_ids.to(device),
                     attention_mask=seg.mask[:, None], use_cache=False,
                     **{segment_attention.KWARG: seg}).last_hidden_state  # [1, N, d]
    return hidden[0][pk.hidden_index.to(device)[mask]], pk.targets.to(device)[mask]


def supports_packing(model: torch.nn.Module) -> bool:
    """Whether packed micro-batches are exact for this model: plain causal attention in
    every layer (no sliding windows or linear-attention layers, whose masks and caches
    differ), reached through transformers' attention interface."""
    cfg = model.config
    full = all(t == "full_attention" for t in (getattr(cfg, "layer_types", None) or []))
    sliding = getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True)
    return bool(getattr(model, "_supports_attention_backend", False)) and full and not sliding


def set_attention(model: torch.nn.Module, name: str, device: torch.device, packed: bool) -> str:
    """Choose the learner's attention kernel. ``auto``: the segment kernel for packed
    micro-batches; otherwise eager on CPU (a profile put torch's CPU flash kernel at ~3 s
    of a 20 s update on RL's short rows, mostly in its backward) and the model's default
    elsewhere."""
    if name == "auto" and packed:
        segment_attention.register()
        name = segment_attention.NAME
    elif name == "auto":
        name = "eager" if device.type == "cpu" else model.config._attn_implementation
    if name != model.config._attn_implementation:
        try:
            model.set_attn_implementation(name)
        except (ValueError, ImportError) as e:
            raise ConfigError(f"--attn-implementation {name}: {e}") from None
    return name


def check_output_layer(model: torch.nn.Module) -> None:
    """The learner applies the output layer itself (to response positions only), so models
    whose logits are more than ``W h + b`` are refused instead of trained on wrong log-probs."""
    cfg = model.config
    extras = [name for name in ("final_logit_softcapping", "logit_scale", "logits_scaling")
              if getattr(cfg, name, None) not in (None, 0, 1, 1.0)]
    head = model.get_output_embeddings()
    if extras or not isinstance(head, torch.nn.Linear):
        what = ", ".join(extras) or f"output layer {type(head).__name__}"
        raise ConfigError(f"{cfg.model_type}: logits are post-processed ({what}); the r1zero "
                         "learner supports models whose logits are a plain linear layer")


