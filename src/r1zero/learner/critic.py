"""PPO's critic: a value model V(s_t) for every response position, and how a rollout gets
its token-level advantages from it.

The value model is a causal LM's decoder with its output layer replaced by a scalar head
(zero-initialised, so the first advantages are A_t = R exactly). It reads the same micro-
batches as the policy (padded rows or packed, `r1zero.learner.logprobs.response_hidden`), and
is trained by the same update loop (`r1zero.learner.local.run_update` with the
`ValueObjective`): step-normalised token weights, gradient accumulation, its own AdamW,
learning rate and warm-up, the clipped value loss (`r1zero.core.losses.value_loss`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from r1zero.config import ConfigError
from r1zero.core.advantages import gae
from r1zero.core.metrics import explained_variance
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.batching import MicroBatch, TrainSequence
from r1zero.learner.logprobs import response_hidden
from r1zero.models import load_model

CRITIC_DIR = "critic"
"""Where a checkpoint keeps the critic (weights + optimizer)."""


class ValueModel(torch.nn.Module):
    """V(s_t) = w · h_t + b on a causal LM's decoder states (scalar head, zero init)."""

    def __init__(self, lm: torch.nn.Module) -> None:
        super().__init__()
        self.config = lm.config
        self.backbone = lm.get_decoder()
        self.value_head = torch.nn.Linear(lm.config.hidden_size, 1, dtype=next(lm.parameters()).dtype)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def get_decoder(self) -> torch.nn.Module:
        return self.backbone

    def forward(self, mb: MicroBatch, precision: str = "fp32") -> torch.Tensor:
        """Values ``[n, width]`` (fp32) of the response positions of ``mb``, 0 elsewhere."""
        device = self.value_head.weight.device
        mask = mb.response_mask.to(device).bool()
        h, _ = response_hidden(self.backbone, mb, mask, device, precision)  # [k, d]
        v = self.value_head(h.to(self.value_head.weight.dtype)).squeeze(-1).float()  # [k]
        return torch.zeros(mask.shape, device=device, dtype=v.dtype).masked_scatter(mask, v)


def load_value_model(model_path: str, device: str, state_dir: Path | None = None) -> ValueModel:
    """The critic for ``model_path``'s architecture; with ``state_dir`` (a checkpoint's
    critic directory) its trained weights."""
    if state_dir is not None and not any(Path(state_dir).glob("*.safetensors")):
        raise ConfigError(f"--resume: {Path(state_dir).parent} has no {CRITIC_DIR}/ weights (saved "
                          "without a critic?); PPO cannot continue without its value model")
    lm, _ = load_model(model_path, device=device)
    critic = ValueModel(lm)
    del lm  # the output layer is not needed (a tied one lives on in the embeddings)
    if state_dir is not None:  # one file (one process) or DCP's consolidated shards (ranks)
        state = {}
        for f in sorted(Path(state_dir).glob("*.safetensors")):
            state.update(load_file(str(f), device=device))
        critic.load_state_dict(state)
    return critic.to(device)


def save_value_model(critic: ValueModel, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Weights (safetensors) and optimizer state of the critic under ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    # No tied tensors to drop: the value model has no output layer (`ValueModel`).
    save_file({k: v.detach().contiguous() for k, v in critic.state_dict().items()},
              str(path / "model.safetensors"))
    ckpt.save_optimizer(critic, optimizer, path)


def with_gae(seqs: list[TrainSequence], values: dict[int, list[float]], gamma: float,
             lam: float) -> tuple[list[TrainSequence], dict[str, float]]:
    """The rollout's sequences with token advantages, returns and the critic's values
    (GAE on each sequence's advantage field, which holds its reward R for PPO), and the
    critic's explained variance on this rollout (``critic/explained_variance``).

    ``values[i]`` holds V(s_t) of sequence i's trained tokens, in order. An episode's
    environment tokens (``loss_mask`` 0) are not actions: GAE runs over the policy's own
    tokens (the environment's text is part of the transition from one to the next), and
    the per-token fields hold 0 at the environment's positions."""
    if not seqs:
        return seqs, {}
    width = max(s.trained_tokens for s in seqs)
    v = torch.zeros(len(seqs), width, dtype=torch.float64)
    mask = torch.zeros(len(seqs), width)
    for i, s in enumerate(seqs):
        vals = values[i]
        v[i, : len(vals)] = torch.tensor(vals, dtype=torch.float64)
        mask[i, : s.trained_tokens] = 1.0
    rewards = torch.tensor([s.advantage for s in seqs], dtype=torch.float64)
    adv, ret = gae(v, rewards, mask, gamma=gamma, lam=lam)  # [N, T] each, over trained tokens
    out = [dataclasses.replace(s, token_advantages=spread(adv[i], s), returns=spread(ret[i], s),
                               old_values=spread(v[i], s))
           for i, s in enumerate(seqs)]
    return out, {"critic/explained_variance": explained_variance(v, ret, mask),
                 "critic/value_mean": float((v * mask).sum() / mask.sum().clamp(min=1))}


def spread(row: torch.Tensor, seq: TrainSequence) -> list[float]:
    """A row over ``seq``'s trained tokens placed at their response positions (0 at an
    environment's tokens): ``[>= trained]`` -> ``len(response_ids)`` values."""
    if seq.loss_mask is None:
        return row[: len(seq.response_ids)].tolist()
    out = torch.zeros(len(seq.response_ids), dtype=row.dtype)
    out[seq.mask_row().bool()] = row[: seq.trained_tokens]
    return out.tolist()
