"""FSDP2 for the learner ranks: shard a transformers causal LM per decoder layer, reduce
gradients by SUM (never average), and run r1zero's log-prob pass under FSDP's hooks.

Why SUM: every rank's loss is already divided by the whole optimizer step's normaliser
(computed over every rank's responses), so the step's gradient is the *sum* of the ranks'
gradients; an average would divide it by the world size. On gloo, FSDP2's divide factor
alone fails (no PREMUL_SUM); with ``set_force_sum_reduction_for_comms`` it reduces with a
plain SUM (measured: notes/cluster-cpu.md). The tests compare against one process.

Why a registered method: the learner runs the decoder and then applies the output layer
to response positions only (`r1zero.learner.logprobs.response_logprobs`). Called directly,
that would bypass the root module's forward, where FSDP2 gathers the root's parameters
(embeddings, final norm, the tied output layer). `register_fsdp_forward_method` makes the
whole pass one FSDP forward.
"""

from __future__ import annotations

import shutil
import types
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint import HuggingFaceStorageWriter
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import (
    CPUOffloadPolicy,
    FSDPModule,
    MixedPrecisionPolicy,
    fully_shard,
    register_fsdp_forward_method,
)

from r1zero.learner import checkpoint as ckpt
from r1zero.learner.logprobs import FSDP_LOGPROBS_METHOD as LOGPROBS_METHOD
from r1zero.learner.logprobs import response_logprobs


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The transformer blocks of a transformers causal LM (``model.model.layers`` or the
    decoder's ``layers``)."""
    decoder = model.get_decoder()
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise ValueError(f"{type(model).__name__}: no decoder .layers to shard")
    return list(layers)


def shard(model: torch.nn.Module, world: int, device_type: str, *, bf16: bool = False,
          activation_checkpointing: bool = False, cpu_offload: bool = False) -> torch.nn.Module:
    """``fully_shard`` every decoder layer, then the root (embeddings, norm, output layer);
    SUM gradient reduction on every unit; r1zero's log-prob pass registered as an FSDP
    forward. ``bf16``: bf16 compute with fp32 master weights, gradients reduced in fp32."""
    mesh = init_device_mesh(device_type, (world,))
    kwargs = {"mesh": mesh}
    if bf16:
        # Inputs are token ids and r1zero dataclasses: nothing to cast (FSDP would try).
        kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32,
                                                   cast_forward_inputs=False)
    if cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    if activation_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    for layer in decoder_layers(model):
        fully_shard(layer, **kwargs)
    fully_shard(model, **kwargs)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            module.set_force_sum_reduction_for_comms(True)
    setattr(model, LOGPROBS_METHOD, types.MethodType(_logprobs_method, model))
    register_fsdp_forward_method(model, LOGPROBS_METHOD)
    return model


def _logprobs_method(self, mb, **kwargs):
    """The plain log-prob pass, called as an FSDP forward of the root module."""
    return response_logprobs(self, mb, fsdp_inner=True, **kwargs)


def full_state_dict(model: torch.nn.Module, keep: bool = True, only=None) -> dict[str, torch.Tensor]:
    """Every parameter and buffer as a full fp32 tensor on the host (HF names), or those
    whose name passes ``only`` (LoRA: the adapter's, so the base is never gathered). A
    collective: all ranks must call it together (one rank alone would wait forever); only
    a rank with ``keep`` (rank 0, the sender) copies the gathered tensors to host memory,
    the others drop each one as soon as the gather is done, so a sync costs one host copy
    of the model, not one per rank."""
    out = {}
    for name, tensor in model.state_dict().items():
        if only is not None and not only(name):
            continue
        full = tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor
        if keep:
            out[name] = full.detach().to("cpu", torch.float32) if full.is_floating_point() else full.cpu()
        del full
    return out


def save_sharded(model: torch.nn.Module, optimizer: torch.optim.Optimizer, path: Path, rank: int,
                 hf_config: bool) -> None:
    """Collective: every rank writes its own shards of the weights and of the optimizer
    state with torch.distributed.checkpoint. The weights go through DCP's Hugging Face
    writer, which rank 0 then consolidates into HF safetensors (+ index), readable by
    transformers and vLLM, without gathering the model into one rank's memory; the
    optimizer stays in DCP's format (``optim_dcp/``, FQN keys). ``hf_config``: rank 0 also
    writes the model's config (a policy; the critic's value model has none of its own)."""
    sd = model.state_dict()
    if getattr(model.config, "tie_word_embeddings", False):
        sd.pop("lm_head.weight", None)  # safetensors refuses shared storage; HF re-ties on load
    dcp.save(sd, storage_writer=HuggingFaceStorageWriter(path=str(path), save_distributed=True,
                                                         enable_consolidation=True))
    ckpt.save_optimizer(model, optimizer, Path(path))
    dist.barrier()  # consolidation (rank 0) has read every rank's shards
    if rank != 0:
        return
    shutil.rmtree(Path(path) / "sharded", ignore_errors=True)
    if hf_config:
        model.config.save_pretrained(path)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(path)
