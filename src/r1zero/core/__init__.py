"""Pure tensor math of the RL update: advantages, per-token losses and their aggregation,
named algorithm presets, and metrics. No I/O, no torch.distributed.

The tensor modules are imported on first use (PEP 562), so that `r1zero.core.algorithms`
(the switch table, read by every config) can be imported without torch."""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ALGORITHMS": "algorithms", "AlgorithmConfig": "algorithms", "get_algorithm": "algorithms",
    "broadcast_to_tokens": "advantages", "compute_advantages": "advantages",
    "zero_variance_groups": "advantages", "LossNormalizer": "losses", "policy_loss": "losses",
    "step_normalizer": "losses", "token_weights": "losses",
}

__all__ = ["ALGORITHMS", "AlgorithmConfig", "LossNormalizer", "broadcast_to_tokens", "compute_advantages",
           "get_algorithm", "policy_loss", "step_normalizer", "token_weights", "zero_variance_groups"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"r1zero.core.{_EXPORTS[name]}"), name)
    if name in ("advantages", "algorithms", "choices", "losses", "metrics", "preferences", "rewards"):
        return importlib.import_module(f"r1zero.core.{name}")
    raise AttributeError(f"module 'r1zero.core' has no attribute {name!r}")
