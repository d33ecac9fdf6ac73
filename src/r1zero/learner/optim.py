"""The optimizer of a learner and its schedule: AdamW, the learning rate of each optimizer
step (warm-up, then constant / linear / cosine decay) and the gradient clip. The policy and
PPO's critic differ only in their learning rate and warm-up (`optim_settings`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from r1zero.config import TrainConfig


@dataclass(frozen=True)
class OptimSettings:
    """AdamW and its learning-rate schedule for one learner."""

    lr: float
    weight_decay: float
    betas: tuple[float, float]
    eps: float
    max_grad_norm: float
    """Clip the global gradient norm to this (<= 0: no clipping)."""
    schedule: str
    """constant, linear or cosine (after warm-up)."""
    warmup_steps: int
    total_steps: int
    """The run's optimizer steps (the horizon of a decaying schedule)."""


def optim_settings(cfg: TrainConfig, role: str = "policy") -> OptimSettings:
    """The policy's settings, or the critic's (its own lr and warm-up, `CriticConfig`)."""
    lr, warmup = (cfg.critic.lr, cfg.critic.lr_warmup_steps) if role == "critic" else (cfg.lr, cfg.lr_warmup_steps)
    return OptimSettings(lr=lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.adam_betas), eps=cfg.adam_eps,
                         max_grad_norm=cfg.max_grad_norm, schedule=cfg.lr_schedule, warmup_steps=warmup,
                         total_steps=cfg.total_optim_steps())


def adamw(params, s: OptimSettings) -> torch.optim.AdamW:
    """AdamW with the settings' lr, weight decay, betas and eps."""
    return torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay, betas=s.betas, eps=s.eps)


def scheduled_lr(s: OptimSettings, done: int) -> float:
    """lr of optimizer step ``done`` (0-based): linear warm-up over ``warmup_steps``, then
    constant (the reference recipe), linear decay to 0, or cosine decay to 0 over
    ``total_steps``:  lr_k = lr (k+1)/W for k < W; else lr, lr (1 - f), or
    lr (1 + cos(pi f)) / 2 with f = min((k - W) / (total - W), 1)."""
    if done < s.warmup_steps:
        return s.lr * (done + 1) / s.warmup_steps
    if s.schedule == "constant":
        return s.lr
    total = max(s.total_steps - s.warmup_steps, 1)
    frac = min((done - s.warmup_steps) / total, 1.0)
    if s.schedule == "linear":
        return s.lr * (1.0 - frac)
    return s.lr * 0.5 * (1.0 + math.cos(math.pi * frac))


def clip_gradients(model: torch.nn.Module, max_norm: float) -> float:
    """Global grad-norm (before clipping); clips when max_norm > 0. With sharded (DTensor)
    gradients torch computes the norm across every rank's shard."""
    params = [p for p in model.parameters() if p.grad is not None]
    limit = max_norm if max_norm > 0 else float("inf")
    norm = torch.nn.utils.clip_grad_norm_(params, limit)
    return float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)
