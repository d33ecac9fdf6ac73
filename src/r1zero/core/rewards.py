"""Reward shaping that depends on the response, not on the verifier: DAPO's soft overlong
punishment. Pure tensor functions, like the rest of ``core``."""

from __future__ import annotations

import torch
from torch import Tensor


def overlong_penalty(lengths: Tensor, max_len: int, cache: int) -> Tensor:
    """DAPO's soft overlong punishment (Yu et al. 2025, eq. 13), ``[N]`` -> ``[N]``::

        R_len(y) = 0                                 |y| <= L_max - L_cache
                   ((L_max - L_cache) - |y|) / L_cache   L_max - L_cache < |y| <= L_max
                   -1                                L_max < |y|

    added to the verifier's reward. ``max_len`` is L_max (the generation budget),
    ``cache`` is L_cache (> 0; the paper uses 4096 of 20480). Lengths in tokens.
    """
    if cache <= 0 or cache > max_len:
        raise ValueError(f"cache must be in (0, max_len], got cache={cache}, max_len={max_len}")
    lengths = lengths.to(torch.float)
    start = max_len - cache
    ramp = (start - lengths) / cache  # [N], <= 0 past the start
    return torch.where(lengths <= start, torch.zeros_like(lengths),
                       torch.where(lengths <= max_len, ramp, torch.full_like(lengths, -1.0)))
