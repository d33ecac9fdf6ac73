"""The algorithm table, override validation, and the micro-batch / accumulation invariance of one
optimizer step for every named algorithm on a tiny torch policy."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from r1zero.core.advantages import compute_advantages
from r1zero.core.algorithms import (
    ALGORITHMS,
    DR_GRPO,
    GRPO,
    AlgorithmConfig,
    get_algorithm,
)
from r1zero.core.losses import policy_loss, step_normalizer
from r1zero.core.metrics import entropy_from_logits


def test_table_reference_values():
    assert set(ALGORITHMS) == {"grpo", "dr_grpo", "dapo", "rloo", "reinforce_pp", "gspo", "raft", "raft_pp",
                               "online_dpo", "ppo", "opd"}
    opd = ALGORITHMS["opd"]  # Dr. GRPO's advantages plus the teacher's token rewards, token-mean
    assert (opd.token_reward, opd.aggregation, opd.std_scale) == ("teacher", "token-mean", "none")
    gspo = ALGORITHMS["gspo"]
    assert (gspo.ratio_level, gspo.clip_low, gspo.clip_high, gspo.aggregation) == (
        "sequence", 3e-4, 4e-4, "seq-mean-token-mean")
    assert (GRPO.std_scale, GRPO.aggregation, GRPO.clip_low, GRPO.clip_high) == (
        "group", "seq-mean-token-mean", 0.2, 0.2)
    assert GRPO.kl_beta == 0.0 and GRPO.kl_estimator == "k3"
    dapo = ALGORITHMS["dapo"]
    assert (dapo.clip_low, dapo.clip_high, dapo.aggregation, dapo.filter_zero_variance_groups) == (
        0.2, 0.28, "token-mean", True)
    assert ALGORITHMS["rloo"].baseline == "leave_one_out"
    assert (ALGORITHMS["reinforce_pp"].baseline, ALGORITHMS["reinforce_pp"].std_scale) == ("batch_mean", "batch")


def test_dr_grpo_is_grpo_with_exactly_two_changes():
    changed = {f.name for f in dataclasses.fields(AlgorithmConfig) if getattr(GRPO, f.name) != getattr(DR_GRPO, f.name)}
    assert changed == {"std_scale", "aggregation"}
    assert DR_GRPO.std_scale == "none" and DR_GRPO.aggregation == "seq-mean-token-sum-norm"
    assert DR_GRPO.kl_beta == 0.0 and DR_GRPO.norm_constant_for(max_new_tokens=3000) == 3000.0


def test_overrides_and_errors():
    assert get_algorithm("grpo", kl_beta=0.04).kl_beta == 0.04
    assert get_algorithm("dr_grpo", norm_constant=512).norm_constant_for(3000) == 512.0
    with pytest.raises(ValueError, match=r"unknown algorithm 'trpo'.*dr_grpo"):
        get_algorithm("trpo")
    with pytest.raises(ValueError, match=r"\['clip'\].*clip_low"):
        get_algorithm("grpo", clip=0.3)
    with pytest.raises(ValueError, match=r"aggregation='mean'.*token-mean"):
        get_algorithm("grpo", aggregation="mean")
    with pytest.raises(ValueError, match=r"kl_estimator='k4'.*k3"):
        get_algorithm("grpo", kl_estimator="k4")
    with pytest.raises(ValueError, match="dual_clip"):
        get_algorithm("grpo", dual_clip=1.0)
    with pytest.raises(ValueError, match="clip_low"):
        get_algorithm("grpo", clip_low="0.2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        GRPO.clip_low = 0.3  # type: ignore[misc]


# ----------------------------------------------------------------------------- invariance
VOCAB, DIM, G = 11, 6, 4
PROMPT_TOKEN = 0
# Four responses of one prompt, lengths 1, 4, 2, 3, right-padded with token 0.
RESPONSES = [[3], [5, 2, 7, 1], [9, 4], [6, 6, 8]]
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64)
MAX_NEW_TOKENS = 5


class TinyPolicy(nn.Module):
    """log pi(o_t | o_{t-1}) = log_softmax(W emb(o_{t-1})): a bigram LM, enough to have real grads."""

    def __init__(self, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.emb = nn.Parameter(torch.randn(VOCAB, DIM, generator=g, dtype=torch.float64))
        self.out = nn.Parameter(torch.randn(DIM, VOCAB, generator=g, dtype=torch.float64) * 0.5)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens ``[N, T]`` -> (per-token log-probs ``[N, T]``, entropy ``[N, T]``)."""
        prev = torch.cat([torch.full_like(tokens[:, :1], PROMPT_TOKEN), tokens[:, :-1]], dim=1)  # [N, T]
        logits = self.emb[prev] @ self.out  # [N, T, V]
        logp = torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)  # [N, T]
        return logp, entropy_from_logits(logits)


def batch(rows: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens and mask of the given responses, padded to *their own* longest length."""
    width = max(len(RESPONSES[i]) for i in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.float64)
    for r, i in enumerate(rows):
        tokens[r, : len(RESPONSES[i])] = torch.tensor(RESPONSES[i])
        mask[r, : len(RESPONSES[i])] = 1
    return tokens, mask


def frozen_logprobs(seed: int, rows: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return TinyPolicy(seed)(batch(rows)[0])[0]


def one_step(cfg: AlgorithmConfig, micro_batches: list[list[int]], optim: str) -> torch.Tensor:
    """One optimizer step over all four responses, split into the given micro-batches."""
    policy = TinyPolicy(seed=0)
    opt = (torch.optim.AdamW(policy.parameters(), lr=1e-2, weight_decay=0.01) if optim == "adamw"
           else torch.optim.SGD(policy.parameters(), lr=0.5))
    adv = compute_advantages(REWARDS, G, baseline=cfg.baseline, std_scale=cfg.std_scale,
                             std_unbiased=cfg.std_unbiased, eps=cfg.adv_eps)  # [4]
    # The normaliser sees every micro-batch of the step before any loss is computed.
    norm = step_normalizer([batch(rows)[1] for rows in micro_batches],
                           constant=cfg.norm_constant_for(MAX_NEW_TOKENS))
    opt.zero_grad()
    for rows in micro_batches:
        tokens, mask = batch(rows)
        logp, entropy = policy(tokens)
        # Old / reference / sampler policies are other random bigram models, so ratios are far
        # from 1 and clipping, dual clip and TIS truncation are all exercised.
        loss, _ = policy_loss(
            logp, frozen_logprobs(1, rows), adv[rows], mask, norm, cfg,
            ref_logprobs=frozen_logprobs(2, rows), sampler_logprobs=frozen_logprobs(3, rows),
            entropy=entropy,
        )
        loss.backward()
    opt.step()
    return torch.cat([p.detach().flatten() for p in policy.parameters()])


CASES = dict(ALGORITHMS) | {
    "grpo+kl_k3+entropy": get_algorithm("grpo", kl_beta=0.04, entropy_coef=0.01),
    "dr_grpo+kl_k1+tis": get_algorithm("dr_grpo", kl_beta=0.1, kl_estimator="k1", tis_cap=2.0),
    "dapo+dual+kl_k2": get_algorithm("dapo", dual_clip=3.0, kl_beta=0.1, kl_estimator="k2"),
}


@pytest.mark.parametrize("optim", ["adamw", "sgd"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_micro_batch_4x1_equals_1x4(name, optim):
    cfg = CASES[name]
    whole = one_step(cfg, [[0, 1, 2, 3]], optim)
    singles = one_step(cfg, [[0], [1], [2], [3]], optim)
    pairs = one_step(cfg, [[0, 3], [1, 2]], optim)
    start = torch.cat([p.detach().flatten() for p in TinyPolicy(seed=0).parameters()])
    assert (whole - start).abs().max() > 1e-4  # the step moved the parameters
    torch.testing.assert_close(singles, whole, rtol=0, atol=1e-6)
    torch.testing.assert_close(pairs, whole, rtol=0, atol=1e-6)
