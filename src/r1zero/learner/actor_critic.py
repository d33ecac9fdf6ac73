"""PPO behind the `Learner` seam: the policy and its critic as one learner. An update first
asks the critic for V(s_t), turns the rewards into token advantages with GAE, then trains
both on them; a checkpoint holds both (the critic under ``critic/``). The loop cannot tell
it from a policy alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch

from r1zero.learner import checkpoint as ckpt
from r1zero.learner.base import Critic, Learner
from r1zero.learner.batching import TrainSequence
from r1zero.learner.critic import CRITIC_DIR, with_gae


@dataclass
class WithCritic:
    """A policy `Learner` and PPO's `Critic`, trained on the same GAE advantages."""

    policy: Learner
    critic: Critic
    gamma: float
    lam: float

    @property
    def optim_steps(self) -> int:
        return self.policy.optim_steps

    def update(self, seqs: list[TrainSequence], step: int) -> dict[str, float]:
        """V(s_t) -> GAE advantages and returns -> the policy's and the critic's updates."""
        seqs, metrics = with_gae(seqs, self.critic.values(seqs), self.gamma, self.lam)
        metrics.update(self.policy.update(seqs, step))
        metrics.update(self.critic.update(seqs, step))
        return metrics

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        return self.policy.weights()

    def sync(self, engines) -> int:
        return self.policy.sync(engines)

    def save(self, run_dir: Path, tokenizer, state: ckpt.TrainState, keep: int) -> Path:
        return ckpt.save_with(run_dir, tokenizer, state, keep, self.write)

    def write(self, path: Path) -> None:
        """Both into one checkpoint directory (one atomic rename)."""
        self.policy.write(path)
        self.critic.write(Path(path) / CRITIC_DIR)

    def close(self) -> None:
        self.policy.close()
        self.critic.close()
