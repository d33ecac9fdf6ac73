"""Reward shapers of "Demystifying Long CoT" (core/rewards.py), by hand."""

from __future__ import annotations

import math

import pytest
import torch

from r1zero.core.rewards import cosine_reward, cosine_value, repetition_penalty

PAPER = dict(correct_at_zero=2.0, correct_at_max=1.0, wrong_at_zero=-10.0, wrong_at_max=0.0, exceed=-10.0)


def test_cosine_value_end_points_and_middle():
    got = cosine_value(torch.tensor([0, 50, 100, 150]), 100, at_zero=2.0, at_max=1.0)
    # t = 50: 1 + ½(2 − 1)(1 + cos(π/2)) = 1.5; past the budget reads as the budget
    torch.testing.assert_close(got, torch.tensor([2.0, 1.5, 1.0, 1.0]))


def test_cosine_reward_by_hand():
    """L = 100. Correct at 25 tokens: 1 + ½(1 + cos(π/4)) = 1.853553; wrong at 25:
    0 + ½(−10)(1 + cos(π/4)) = −8.535534; wrong at 75: −5(1 + cos(3π/4)) = −1.464466;
    truncated (any verdict): −10."""
    lengths = torch.tensor([25, 25, 75, 100])
    correct = torch.tensor([True, False, False, True])
    truncated = torch.tensor([False, False, False, True])
    got = cosine_reward(lengths, correct, truncated, 100, **PAPER)
    c = math.cos(math.pi / 4)
    torch.testing.assert_close(got, torch.tensor([1 + 0.5 * (1 + c), -5 * (1 + c), -5 * (1 - c), -10.0]))


def test_cosine_reward_orders_lengths_the_papers_way():
    lengths = torch.arange(0, 101, 10)
    no = torch.zeros_like(lengths, dtype=torch.bool)
    right = cosine_reward(lengths, ~no, no, 100, **PAPER)
    wrong = cosine_reward(lengths, no, no, 100, **PAPER)
    assert torch.all(right[1:] <= right[:-1]) and torch.all(wrong[1:] >= wrong[:-1])
    assert torch.all(right > wrong)  # a correct answer always beats a wrong one


@pytest.mark.parametrize("text, n, expected", [
    ("a b c d", 2, 0.0),  # 3 distinct bigrams of 3
    ("a b a b a b", 2, -0.05 * (1 - 2 / 5)),  # bigrams ab ba ab ba ab: 2 distinct of 5
    ("x x x x x", 1, -0.05 * (1 - 1 / 5)),
    ("A b a B", 2, -0.05 * (1 - 2 / 3)),  # lower-cased: ab ba ab
    ("too short", 40, 0.0),
    ("", 3, 0.0),
])
def test_repetition_penalty_by_hand(text, n, expected):
    assert repetition_penalty(text, n, -0.05) == pytest.approx(expected)


def test_repetition_penalty_must_not_be_a_bonus():
    with pytest.raises(ValueError, match="<= 0"):
        repetition_penalty("a a a", 1, 0.1)


def test_shaping_in_a_run_logs_each_component(tmp_path):
    """`--reward.shaping cosine repetition` on a tiny run: reward/mean is the cosine reward
    plus the repetition penalty, each logged beside the verifier's."""
    import json

    from r1zero.config import RewardConfig
    from r1zero.testing import tiny_model
    from r1zero.train.trainer import train
    from tests.test_train_loop import _cfg

    model, tok = tiny_model(seed=0)
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    run = tmp_path / "run"
    train(_cfg(str(tmp_path / "tiny"), run, steps=1, eval_every=0, save_every=0, truncation="zero",
               reward=RewardConfig(shaping=("cosine", "repetition"), repetition_ngram=1)))
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"reward/verifier", "reward/cosine", "reward/repetition"} <= set(row)
    # the random tiny model never stops within 6 tokens: every response is truncated (-10)
    assert row["reward/cosine"] == -10.0 and row["reward/verifier"] == 0.0
    assert row["reward/repetition"] <= 0.0
    assert row["reward/mean"] == pytest.approx(row["reward/cosine"] + row["reward/repetition"])


def test_unknown_shaper_is_refused():
    from r1zero.config import ConfigError, RewardConfig, TrainConfig

    with pytest.raises(ConfigError, match="unknown shaper.*cosine"):
        TrainConfig(reward=RewardConfig(shaping=("length",))).validate()


# ----------------------------------------------------------------------------- online DPO
def test_best_worst_pairs_skip_ties():
    from r1zero.core.preferences import best_worst_pairs

    rewards = torch.tensor([0.0, 1.0, 1.0, 0.0,   1.0, 1.0, 1.0, 1.0,   0.2, 0.0, 0.5, 0.5])
    assert best_worst_pairs(rewards, 4) == [(1, 0), (10, 9)]  # the all-agree group gives none


def test_dpo_surrogate_gradient_equals_the_dpo_gradient():
    """Σ_i w_i (−A_i s_i) with w = 1/(2P) and A from `dpo_advantages` has the gradient of
    mean_p softplus(−z_p) with respect to the sequence log-probs (autograd on both)."""
    from r1zero.core.preferences import dpo_advantages, dpo_loss

    g = torch.Generator().manual_seed(0)
    s = torch.randn(6, generator=g, dtype=torch.float64, requires_grad=True)  # 3 pairs
    ref = torch.randn(6, generator=g, dtype=torch.float64)
    beta = 0.3
    loss, z = dpo_loss(s[0::2], s[1::2], ref[0::2], ref[1::2], beta)
    loss.mean().backward()
    exact = s.grad.clone()
    a_c, a_r = dpo_advantages(z.detach(), beta)
    adv = torch.stack([a_c, a_r], 1).flatten()  # chosen, rejected, chosen, ...
    s.grad = None
    (-(adv * s).sum() / 6).backward()
    torch.testing.assert_close(s.grad, exact, rtol=0, atol=1e-12)
    # by hand for one pair: z = 0.3 (Δs − Δq); loss = softplus(−z)
    z0 = beta * ((s[0] - s[1]) - (ref[0] - ref[1])).detach()
    assert float(loss[0].detach()) == pytest.approx(math.log1p(math.exp(-float(z0))))


def test_dpo_kl_free_variant_ignores_the_reference():
    from r1zero.core.preferences import dpo_loss

    loss, z = dpo_loss(torch.tensor([-1.0]), torch.tensor([-3.0]), None, None, beta=0.5)
    assert float(z) == pytest.approx(1.0) and float(loss) == pytest.approx(math.log1p(math.exp(-1.0)))
