"""The seam between the training loop and the update: `Learner` (and `Critic`, PPO's value
model, which a `Learner` may hold behind it). One process (`LocalLearner`), a group of
FSDP2 ranks on a cluster (`r1zero.cluster.learner_group`) and an actor-critic pair
(`WithCritic`) all look like this to the loop."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from r1zero.config import TrainConfig
from r1zero.core.algorithms import AlgorithmConfig
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.batching import TrainSequence


@runtime_checkable
class Learner(Protocol):
    """The policy update, as the training loop sees it."""

    optim_steps: int
    """Optimizer steps taken so far: the learning-rate schedule's clock (the loop copies it
    into the checkpoint's `TrainState`)."""

    def update(self, seqs: list[TrainSequence], step: int) -> dict[str, float]:
        """Consume one rollout's sequences (optimizer steps, epochs); return metrics."""
        ...

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        """Full (unsharded) weights with HF names; with LoRA the adapter's tensors alone,
        under peft's on-disk names (r1zero/adapters.py)."""
        ...

    def sync(self, engines) -> int:
        """Load the new weights into every engine of the rollout backend ``engines``; return
        the bytes sent (``perf/sync_bytes``: the model, or with LoRA only the adapter)."""
        ...

    def save(self, run_dir: Path, tokenizer, state: ckpt.TrainState, keep: int) -> Path:
        """Write a checkpoint of weights, optimizer and ``state``; return its directory."""
        ...

    def write(self, path: Path) -> None:
        """Weights and optimizer into ``path`` (a checkpoint in the making; `save` wraps it)."""
        ...

    def close(self) -> None:
        """Release processes and memory (a no-op in-process)."""
        ...


class LearnerParts(Protocol):
    """What the planning (plan.py) and the losses (objectives.py) read of a learner: the
    fields of `r1zero.learner.local.LocalLearner` they use, so that those modules need not
    import it (it imports them)."""

    cfg: TrainConfig
    algo: AlgorithmConfig
    compute: torch.nn.Module
    ref_policy: torch.nn.Module | None
    packed: bool
    pad_token_id: int
    precision: str
    objective: Any
    """`PolicyObjective` or `ValueObjective` (learner/objectives.py)."""
    rank: int
    world: int


@runtime_checkable
class Critic(Protocol):
    """PPO's value model: trained like a learner (its own loss), and asked for V(s_t)."""

    def values(self, seqs: list[TrainSequence]) -> dict[int, list[float]]:
        """V(s_t) at every response position of each sequence, by position in ``seqs``."""
        ...

    def update(self, seqs: list[TrainSequence], step: int) -> dict[str, float]:
        ...

    def write(self, path: Path) -> None:
        ...

    def close(self) -> None:
        ...
