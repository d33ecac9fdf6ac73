"""The learner's attention kernel: whether a model's micro-batches can be packed (several
sequences in one row, exact only for plain causal attention), which kernel runs them, and
the output layers the learner can apply itself."""

from __future__ import annotations

import torch

from r1zero.config import ConfigError
from r1zero.learner import segment_attention, varlen_attention


def supports_packing(model: torch.nn.Module) -> bool:
    """Whether packed micro-batches are exact for this model: plain causal attention in
    every layer (no sliding windows or linear-attention layers, whose masks and caches
    differ), reached through transformers' attention interface."""
    cfg = model.config
    full = all(t == "full_attention" for t in (getattr(cfg, "layer_types", None) or []))
    sliding = getattr(cfg, "sliding_window", None) and getattr(cfg, "use_sliding_window", True)
    return bool(getattr(model, "_supports_attention_backend", False)) and full and not sliding


PACKED_KERNELS = (segment_attention.NAME, varlen_attention.NAME)
"""``--attn-implementation`` values that run packed micro-batches."""


def packed_rows(packed: bool, attn_implementation: str, model: torch.nn.Module) -> bool:
    """Whether the learner runs packed micro-batches: ``--packed`` with
    ``--attn-implementation`` auto or a packed kernel, on a model where packing is exact
    (`supports_packing`). Naming a packed kernel where packing is off is an error."""
    if attn_implementation in PACKED_KERNELS and not (packed and supports_packing(model)):
        why = "--no-packed was given" if not packed else (
            f"{model.config.model_type} cannot pack (sliding windows or non-standard attention)")
        raise ConfigError(f"--attn-implementation {attn_implementation} runs packed "
                          f"micro-batches, but {why}")
    return packed and attn_implementation in ("auto", *PACKED_KERNELS) and supports_packing(model)


def packed_kernel(device: torch.device) -> str:
    """The packed kernel ``auto`` picks: FlexAttention where it trains (CUDA, no dense
    mask anywhere), else the segment kernel (matmuls on CPU, where they measured fastest;
    SDPA with the dense segment mask on other devices)."""
    return varlen_attention.NAME if varlen_attention.available(device) else segment_attention.NAME


def set_attention(model: torch.nn.Module, name: str, device: torch.device, packed: bool) -> str:
    """Choose the learner's attention kernel. ``auto``: `packed_kernel` for packed
    micro-batches; otherwise eager on CPU (a profile put torch's CPU flash kernel at ~3 s
    of a 20 s update on RL's short rows, mostly in its backward) and the model's default
    elsewhere. A name in `PACKED_KERNELS` forces that packed kernel."""
    if name == "auto" and packed:
        name = packed_kernel(device)
    elif name == "auto":
        name = "eager" if device.type == "cpu" else model.config._attn_implementation
    if name == varlen_attention.NAME and not varlen_attention.available(device):
        raise ConfigError(f"--attn-implementation {name}: FlexAttention trains only on "
                          f"{', '.join(varlen_attention.DEVICES)} (it has no backward on "
                          f"{device.type}); use {segment_attention.NAME} or auto")
    if name == segment_attention.NAME:
        segment_attention.register()
    elif name == varlen_attention.NAME:
        varlen_attention.register()
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


