"""`build_learner`: the one factory of a learner (the policy or PPO's critic), used by one
process and by every rank of a cluster's learner group alike.

The steps (torchtune's recipe style): load the model (with LoRA adapters under
``--lora.rank``), check its output layer, choose its compute copy and attention kernel,
switch its MLPs and norms to versions that keep fewer activations (same math:
lean_layers.py), add a reference model when the algorithm has a KL term, make the
optimizer over the trainable weights, restore the optimizer of a checkpoint. A rank passes
``shard`` (FSDP2, r1zero/cluster/fsdp.py), which then also takes the place of the bf16
compute copy (FSDP2's mixed precision casts per layer)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from r1zero.adapters import add_lora, load_adapter_tensors, read_adapter
from r1zero.config import TrainConfig
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.attention import check_output_layer, packed_rows, set_attention
from r1zero.learner.critic import CRITIC_DIR, load_value_model
from r1zero.learner.lean_layers import lean_activations
from r1zero.learner.local import LocalLearner
from r1zero.learner.objectives import OBJECTIVES
from r1zero.learner.optim import adamw, optim_settings
from r1zero.learner.precision import compute_model, frozen_to
from r1zero.models import load_model, load_tokenizer

Shard = Callable[[torch.nn.Module, bool], torch.nn.Module]
"""``shard(module, trainable)``: FSDP2-shard a module in place (a rank's wrapper)."""


def build_learner(cfg: TrainConfig, *, model_path: str, device: torch.device, precision: str,
                  resume_from: Path | None = None, role: str = "policy", optim_steps: int = 0,
                  rank: int = 0, world: int = 1, shard: Shard | None = None) -> LocalLearner:
    """A `LocalLearner` for ``role`` ("policy" or "critic"), on ``device``, from
    ``model_path`` or from the checkpoint ``resume_from`` (its weights, its optimizer)."""
    model, state_dir = MODELS[role](cfg, model_path, device, resume_from)
    compute = model if shard else compute_of(model, precision, adapters=role == "policy" and cfg.lora.enabled)
    packed = packed_rows(cfg.packed, cfg.attn_implementation, decoder_of(model))
    set_attention(decoder_of(compute), cfg.attn_implementation, device, packed)
    lean_activations(compute)  # before sharding: each block is checked on plain tensors
    if shard:
        shard(model, True)
    ref = reference_model(cfg, model_path, device, precision, packed, shard) if role == "policy" else None
    optim = optim_settings(cfg, role)
    optimizer = adamw([p for p in model.parameters() if p.requires_grad], optim)  # LoRA: A and B only
    if state_dir is not None:
        ckpt.load_optimizer(model, optimizer, state_dir)
    pad = load_tokenizer(str(resume_from or model_path)).pad_token_id
    return LocalLearner(cfg, cfg.algo, model, compute, optimizer, optim, ref, packed, pad, precision,
                        OBJECTIVES[role], optim_steps, rank, world)


def policy_model(cfg: TrainConfig, model_path: str, device: torch.device, resume_from: Path | None):
    """The policy (from the checkpoint on a resume) and where its optimizer state is. With
    LoRA the base always comes from ``model_path`` and the checkpoint holds the adapter."""
    adapters = cfg.lora.enabled
    model, _ = load_model(str(model_path if adapters else resume_from or model_path), device=str(device))
    model.eval()
    check_output_layer(model)
    if adapters:
        model = add_lora(model, cfg.lora, base=model_path)
        if resume_from is not None:
            load_adapter_tensors(model, read_adapter(Path(resume_from)))
    return model, None if resume_from is None else Path(resume_from)


def compute_of(model: torch.nn.Module, precision: str, adapters: bool) -> torch.nn.Module:
    """The module forward/backward runs on (precision.py). With LoRA under ``bf16`` it is the
    policy itself with its frozen base cast to bf16 once: the fp32 adapters are their own
    master weights (peft runs them in their dtype), so no second copy of the base exists."""
    if not adapters:
        return compute_model(model, precision)
    if precision == "bf16":
        frozen_to(model, torch.bfloat16)
    return model


def critic_model(cfg: TrainConfig, model_path: str, device: torch.device, resume_from: Path | None):
    """PPO's value model (`--critic.model`, else the policy's architecture) and where its
    weights and optimizer state are (a checkpoint's ``critic/``)."""
    state_dir = None if resume_from is None else Path(resume_from) / CRITIC_DIR
    return load_value_model(cfg.critic.model or model_path, str(device), state_dir), state_dir


MODELS = {"policy": policy_model, "critic": critic_model}
"""How each role's model is loaded: ``(model, where its optimizer state is)``."""


def decoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model whose attention kernel and packing are chosen: a causal LM
    itself, or a value model's backbone (learner/critic.py)."""
    return getattr(model, "backbone", model)


def reference_model(cfg: TrainConfig, model_path: str, device: torch.device, precision: str,
                    packed: bool, shard: Shard | None) -> torch.nn.Module | None:
    """The frozen initial policy for a KL term or DPO's reference; None when the algorithm
    has neither (beta = 0, the reference recipe: no reference model at all)."""
    if not cfg.algo.needs_reference:
        return None
    ref, _ = load_model(model_path, device=str(device))
    ref = ref if shard else compute_model(ref, precision)
    set_attention(ref, cfg.attn_implementation, device, packed)
    if shard:
        shard(ref, False)
    return ref.eval().requires_grad_(False)
