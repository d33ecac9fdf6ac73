"""Learner precision: which module runs forward/backward, and how its gradients reach the
fp32 weights the optimizer steps.

- ``fp32``: the policy itself, in fp32.
- ``bf16-autocast``: the policy itself (fp32 weights); matmuls run in bf16 under autocast,
  which casts every weight to bf16 again on every call.
- ``bf16``: a bf16 copy of the policy runs forward/backward ("compute weights"); after each
  micro-batch its bf16 gradients are added, in fp32, to the fp32 policy's ``.grad``
  ("master weights"), the optimizer steps the fp32 policy, and the new weights are copied
  back to the bf16 copy. Standard mixed precision (Micikevicius et al. 2018, without loss
  scaling: bf16 has fp32's exponent range). The fp32 policy is what is checkpointed and
  synced to vLLM, so resume stays exact; the transformers backend samples from the bf16
  copy.

On this 2-core CPU (`bench/bench_update.py`, 64 sequences, padded rows, one run): bf16
autocast 22.8 s, bf16 weights + fp32 master 19.7 s per update (docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import copy

import torch


def compute_model(policy: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The module forward/backward runs on: a bf16 copy for ``bf16``, else the policy.

    ``deepcopy`` keeps tied parameters tied (embedding = output layer in SmolLM2), so the
    two modules' ``parameters()`` line up one to one.
    """
    if precision != "bf16":
        return policy
    model = copy.deepcopy(policy).to(torch.bfloat16)
    model.eval()
    return model


@torch.no_grad()
def frozen_to(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast the floating-point parameters that do not train (a LoRA base) to ``dtype`` in
    place; trainable ones keep theirs."""
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point():
            p.data = p.data.to(dtype)


def autocast_context(device: torch.device, precision: str):
    """bf16 autocast for ``bf16-autocast``; nothing otherwise (``bf16`` weights are already
    bf16, and fp32 is fp32)."""
    if precision == "bf16-autocast":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def fold_gradients(compute: torch.nn.Module, master: torch.nn.Module) -> None:
    """master.grad += float(compute.grad); compute.grad = None. A no-op when they are the
    same module. Called after every micro-batch, so accumulation happens in fp32."""
    if compute is master:
        return
    for c, m in zip(compute.parameters(), master.parameters(), strict=True):
        if c.grad is None:
            continue
        if m.grad is None:
            m.grad = c.grad.to(m.dtype)
        else:
            m.grad.add_(c.grad)
        c.grad = None


@torch.no_grad()
def copy_weights(master: torch.nn.Module, compute: torch.nn.Module) -> None:
    """compute ← round_bf16(master) after each optimizer step (no-op when the same)."""
    if compute is master:
        return
    for c, m in zip(compute.parameters(), master.parameters(), strict=True):
        c.copy_(m)
