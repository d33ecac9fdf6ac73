"""An engine pool: several rollout engines behind the one `RolloutBackend` protocol.

A step's prompts are cut into contiguous shards, one per engine, and the completions come
back prompt-major, exactly as one engine would return them. Because every backend seeds
sample j of prompt i from ``derive_seed(prompt_seeds[i], j)`` (never from a shared RNG),
the completions do not depend on how many engines there are or which one drew a prompt.

This is the in-process form (engines are objects in this process, called one after the
other); the cluster form puts each engine in a Ray actor behind the same methods and calls
them concurrently. The training loop cannot tell them apart.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import torch

from r1zero.rollout.base import Completion, RolloutBackend, SamplingParams, check_prompt_seeds


def shard_bounds(num_prompts: int, num_engines: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` prompt ranges, one per engine, sizes differing by at most
    one (the first ``num_prompts % num_engines`` engines take one more). Empty ranges are
    dropped, so fewer prompts than engines leaves engines idle."""
    if num_engines < 1:
        raise ValueError(f"num_engines must be >= 1, got {num_engines}")
    base, extra = divmod(num_prompts, num_engines)
    bounds, start = [], 0
    for k in range(num_engines):
        end = start + base + (k < extra)
        if end > start:
            bounds.append((start, end))
        start = end
    return bounds


class EnginePool:
    """`RolloutBackend` over ``engines`` (at least one), sharding prompts across them."""

    def __init__(self, engines: Sequence[RolloutBackend]) -> None:
        if not engines:
            raise ValueError("EnginePool needs at least one engine")
        self.engines = list(engines)

    def generate(
        self, prompts: Sequence[str], params: SamplingParams, prompt_seeds: Sequence[int]
    ) -> list[Completion]:
        """Prompt-major completions of all shards, prompt indices in the caller's numbering."""
        check_prompt_seeds(prompts, prompt_seeds)
        out: list[Completion] = []
        for engine, (lo, hi) in zip(self.engines, shard_bounds(len(prompts), len(self.engines))):
            got = engine.generate(prompts[lo:hi], params, prompt_seeds[lo:hi])
            out += [dataclasses.replace(c, prompt_index=c.prompt_index + lo) for c in got]
        return out

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Send the same weights to every engine (the iterable is materialised once)."""
        tensors = list(named_tensors)
        for engine in self.engines:
            engine.update_weights(tensors)

    def sleep(self) -> None:
        for engine in self.engines:
            engine.sleep()

    def wake(self) -> None:
        for engine in self.engines:
            engine.wake()

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
