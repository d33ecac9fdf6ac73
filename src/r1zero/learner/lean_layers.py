"""Fewer saved activations for the two commonest decoder blocks, with the same math.

Autograd keeps, for every token of a micro-batch and every layer, each tensor some later
backward needs. Two blocks of Llama/Qwen-style decoders keep tensors their backward can
rebuild from others for a few elementwise operations:

- **Gated-SiLU MLP** ``y = W_down (silu(g) ⊙ u)``, ``g = W_gate x``, ``u = W_up x``.
  Plain autograd keeps g, u, silu(g) and the product a = silu(g) ⊙ u (four ``[k, I]``
  tensors). `_SiluGateDown` keeps g and u only and rebuilds a in backward:

      a = silu(g) ⊙ u,   ∂W_down = ∂yᵀ a,   ∂a = ∂y W_down,
      ∂u = ∂a ⊙ silu(g),   ∂g = silu'(g) ⊙ (∂a ⊙ u)

  with the very kernels autograd would run (``aten.silu_backward`` for silu'), so values
  and gradients are bit-for-bit those of the plain block.
- **RMSNorm** ``y = w ⊙ (x · r)``, ``r = (mean(x²) + ε)^(-1/2)``, in fp32. Plain autograd
  keeps x and the normalised n = x · r; `_RMSNorm` keeps x and r (one number per row):

      n = x · r,   ∂w = Σ_rows ∂y ⊙ n,   ∂n = ∂y ⊙ w,   ∂x = r (∂n − n · mean(∂n ⊙ n))

  Equal to autograd's up to float rounding (a different order of the same sums), so it is
  used for fp32 inputs only; bf16 norms (which round n to bf16 before the weight) keep the
  model's own forward. torch's ``F.rms_norm`` is not fused on CPU (it saves x, r and n).

Measured (SmolLM2-135M, fp32, one 2,048-token packed micro-batch, CPU): of the 3,717 MiB
of activations kept for backward, the MLPs kept 1,411 MiB and the norms 538 MiB; these
rewrites keep 706 MiB and 269 MiB (docs/benchmarks.md, "Activation memory of the
update"). Liger-Kernel's SwiGLU does the same on GPUs (Triton); this is the
CPU-and-anywhere version for transformers' module layout.

`lean_activations(model)` switches every block that matches the layout (checked on a
sample input against the block's own forward before it is switched, so a block with a
different forward keeps its own) and returns how many it switched.
"""

from __future__ import annotations

import types

import torch
import torch.nn.functional as F

MLP_PARTS = ("gate_proj", "up_proj", "down_proj", "act_fn")
CHECK_TOL = 1e-5
"""rtol = atol of the check of a rewrite against its block's own forward (fp32 sample)."""


class _SiluGateDown(torch.autograd.Function):
    """``W_down (silu(g) ⊙ u) + b`` keeping only g and u for backward (formulas above)."""

    @staticmethod
    def forward(ctx, g, u, weight, bias):
        out = F.linear(F.silu(g) * u, weight, bias)
        ctx.save_for_backward(g, u, weight)
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx, dy):
        g, u, weight = ctx.saved_tensors
        s = F.silu(g)
        grad_w = grad_b = None
        if ctx.needs_input_grad[2]:
            a = s * u
            grad_w = dy.reshape(-1, dy.shape[-1]).t() @ a.reshape(-1, a.shape[-1])
            del a
        if ctx.has_bias and ctx.needs_input_grad[3]:
            grad_b = dy.reshape(-1, dy.shape[-1]).sum(0)
        da = dy @ weight
        grad_u = da * s if ctx.needs_input_grad[1] else None
        grad_g = torch.ops.aten.silu_backward(da * u, g) if ctx.needs_input_grad[0] else None
        return grad_g, grad_u, grad_w, grad_b


class _RMSNorm(torch.autograd.Function):
    """``w ⊙ (x · r)`` in fp32 keeping x and r for backward (formulas above)."""

    @staticmethod
    def forward(ctx, x, weight, eps):
        r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
        ctx.save_for_backward(x, r, weight)
        return weight * (x * r)

    @staticmethod
    def backward(ctx, dy):
        x, r, weight = ctx.saved_tensors
        n = x * r
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (dy * n).reshape(-1, n.shape[-1]).sum(0)
        dn = dy * weight
        grad_x = r * (dn - n * (dn * n).mean(-1, keepdim=True)) if ctx.needs_input_grad[0] else None
        return grad_x, grad_w, None


def _plain_linear(m: object) -> bool:
    return type(m) is torch.nn.Linear and not (m._forward_hooks or m._forward_pre_hooks)


def _is_silu(act: object) -> bool:
    return isinstance(act, torch.nn.SiLU) or type(act).__name__ in ("SiLUActivation", "SiLU")


def _own_forward_now(x: torch.Tensor) -> bool:
    """Run the block's own forward: nothing is kept without grad mode, and under autocast
    (``--precision bf16-autocast``) the backward would not see forward's casts."""
    return not torch.is_grad_enabled() or torch.is_autocast_enabled(x.device.type)


def _mlp_forward(self, x):
    if _own_forward_now(x) or not _plain_linear(self.down_proj):  # e.g. LoRA-wrapped later
        return type(self).forward(self, x)
    return _SiluGateDown.apply(self.gate_proj(x), self.up_proj(x), self.down_proj.weight, self.down_proj.bias)


def _norm_forward(self, x):
    if x.dtype != torch.float32 or _own_forward_now(x):
        return type(self).forward(self, x)
    return _RMSNorm.apply(x, self.weight, self.variance_epsilon)


def _mlp_candidate(m: torch.nn.Module) -> bool:
    return (all(hasattr(m, p) for p in MLP_PARTS) and _is_silu(m.act_fn)
            and all(_plain_linear(getattr(m, p)) for p in MLP_PARTS[:3]))


def _norm_candidate(m: torch.nn.Module) -> bool:
    w = getattr(m, "weight", None)
    return (type(m).__name__.endswith("RMSNorm") and isinstance(w, torch.Tensor) and w.dim() == 1
            and isinstance(getattr(m, "variance_epsilon", None), float))


@torch.no_grad()
def _same_as_own(m: torch.nn.Module, forward, width: int) -> bool:
    """The rewrite's forward equals the block's own on a fixed sample (grad mode on, so the
    rewrite runs; a private generator, so the run's random stream is untouched)."""
    p = next(m.parameters())
    x = torch.randn(3, width, generator=torch.Generator().manual_seed(0)).to(p.device)
    if forward is _mlp_forward:
        x = x.to(p.dtype)
    with torch.enable_grad():
        mine, own = forward(m, x), type(m).forward(m, x)
    return mine.shape == own.shape and torch.allclose(mine.float(), own.float(), rtol=CHECK_TOL, atol=CHECK_TOL)


def lean_activations(model: torch.nn.Module) -> int:
    """Switch every gated-SiLU MLP and every RMSNorm of ``model`` to the rewrites above
    (instance ``forward``; the class stays), after checking each against its own forward.
    Returns the number of blocks switched."""
    switched = 0
    for m in model.modules():
        if "forward" in vars(m):
            continue  # already switched, or someone else's override: leave it
        if _mlp_candidate(m):
            forward, width = _mlp_forward, m.gate_proj.in_features
        elif _norm_candidate(m):
            forward, width = _norm_forward, m.weight.shape[0]
        else:
            continue
        if _same_as_own(m, forward, width):
            m.forward = types.MethodType(forward, m)
            switched += 1
    return switched
