"""An engine pool: several rollout engines behind the one `RolloutBackend` protocol.

A step's prompts are cut into contiguous shards, one per engine, and the completions come
back prompt-major, exactly as one engine would return them. Because every backend seeds
sample j of prompt i from ``derive_seed(prompt_seeds[i], j)`` (never from a shared RNG),
the completions do not depend on how many engines there are or which one drew a prompt.

How the pool reaches its engines is a small strategy (`Calls`): `InProcess` calls engine
objects one after the other (tests, and the reference the cluster is checked against);
the cluster's `r1zero.cluster.engine_pool.ViaRay` calls Ray actors concurrently and waits
for all. The sharding is written once, here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import torch

from r1zero.rollout.base import Completion, Prompt, SamplingParams, check_prompt_seeds


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


class Calls(Protocol):
    """How a pool calls its engines: start a call, wait for a list of them, and share one
    payload (new weights) with every engine."""

    def call(self, engine: Any, method: str, *args: Any) -> Any: ...

    def wait(self, handles: list[Any]) -> list[Any]: ...

    def share(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> Any: ...


class InProcess:
    """Engines are objects in this process: a call runs at once (one engine after another)."""

    def call(self, engine: Any, method: str, *args: Any) -> Any:
        return getattr(engine, method)(*args)

    def wait(self, handles: list[Any]) -> list[Any]:
        return list(handles)

    def share(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> Any:
        return list(named_tensors)  # materialised once, read by every engine


class EnginePool:
    """`RolloutBackend` over ``engines`` (at least one), sharding prompts across them."""

    def __init__(self, engines: Sequence[Any], calls: Calls | None = None) -> None:
        if not engines:
            raise ValueError("EnginePool needs at least one engine")
        self.engines = list(engines)
        self.calls = calls or InProcess()

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams, prompt_seeds: Sequence[int]
    ) -> list[Completion]:
        """Prompt-major completions of all shards, prompt indices in the caller's numbering
        (text or token-id prompts alike)."""
        check_prompt_seeds(prompts, prompt_seeds)
        bounds = shard_bounds(len(prompts), len(self.engines))
        handles = [self.calls.call(engine, "generate", list(prompts[lo:hi]), params, list(prompt_seeds[lo:hi]))
                   for engine, (lo, hi) in zip(self.engines, bounds)]
        out: list[Completion] = []
        for (lo, _), got in zip(bounds, self.calls.wait(handles)):
            out += [dataclasses.replace(c, prompt_index=c.prompt_index + lo) for c in got]
        return out

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """The same weights into every engine (shared once: see `Calls.share`)."""
        payload = self.calls.share(named_tensors)
        self.calls.wait([self.calls.call(e, "load_weights", payload) for e in self.engines])

    def sleep(self) -> None:
        self.calls.wait([self.calls.call(e, "sleep") for e in self.engines])

    def wake(self) -> None:
        self.calls.wait([self.calls.call(e, "wake") for e in self.engines])

    def close(self) -> None:
        self.calls.wait([self.calls.call(e, "close") for e in self.engines])
