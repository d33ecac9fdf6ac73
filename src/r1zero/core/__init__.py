"""Pure tensor math of the RL update: advantages, per-token losses and their aggregation,
named algorithm presets, and metrics. No I/O, no torch.distributed."""

from r1zero.core.advantages import broadcast_to_tokens, compute_advantages, zero_variance_groups
from r1zero.core.algorithms import ALGORITHMS, AlgorithmConfig, get_algorithm
from r1zero.core.losses import LossNormalizer, policy_loss, step_normalizer, token_weights

__all__ = [
    "ALGORITHMS",
    "AlgorithmConfig",
    "LossNormalizer",
    "broadcast_to_tokens",
    "compute_advantages",
    "get_algorithm",
    "policy_loss",
    "step_normalizer",
    "token_weights",
    "zero_variance_groups",
]
