"""Advantages against numbers derived by hand (derivations in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from r1zero.core.advantages import (
    broadcast_to_tokens,
    compute_advantages,
    keep_mask_nonzero_variance,
    leave_one_out_baseline,
    zero_variance_groups,
)

# Two prompts, G = 4, prompt-major:
#   group a: R = [1, 0, 0, 1]   mean 1/2, centred [ 1/2, -1/2, -1/2,  1/2], sum sq 1
#   group b: R = [1, 0, 0, 0]   mean 1/4, centred [ 3/4, -1/4, -1/4, -1/4], sum sq 3/4
REWARDS = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
G = 4


def close(actual: torch.Tensor, expected: list[float]) -> None:
    torch.testing.assert_close(actual, torch.tensor(expected, dtype=actual.dtype), rtol=0, atol=1e-12)


def test_group_mean_no_std_is_dr_grpo_advantage():
    # Dr. GRPO: A = R - mean, nothing else.
    adv = compute_advantages(REWARDS, G, std_scale="none")
    close(adv, [0.5, -0.5, -0.5, 0.5, 0.75, -0.25, -0.25, -0.25])


def test_group_std_unbiased():
    # Unbiased std: a: sqrt(1 / 3) = 1/sqrt3, so A = +-(1/2) * sqrt3 = +-sqrt3/2
    #               b: sqrt((3/4) / 3) = 1/2,  so A = [3/2, -1/2, -1/2, -1/2]
    adv = compute_advantages(REWARDS, G, std_scale="group", std_unbiased=True, eps=0.0)
    h = math.sqrt(3) / 2
    close(adv, [h, -h, -h, h, 1.5, -0.5, -0.5, -0.5])


def test_group_std_biased():
    # Biased std: a: sqrt(1 / 4) = 1/2, so A = +-1
    #             b: sqrt((3/4) / 4) = sqrt3/4, so A = (3/4)/(sqrt3/4) = sqrt3, -(1/4)/(sqrt3/4) = -1/sqrt3
    adv = compute_advantages(REWARDS, G, std_scale="group", std_unbiased=False, eps=0.0)
    s3 = math.sqrt(3)
    close(adv, [1, -1, -1, 1, s3, -1 / s3, -1 / s3, -1 / s3])


def test_eps_is_added_to_std():
    # group b with eps = 0.5: (3/4) / (1/2 + 1/2) = 3/4
    adv = compute_advantages(REWARDS, G, std_scale="group", eps=0.5)
    assert adv[4].item() == pytest.approx(0.75, abs=1e-12)


def test_zero_variance_group_gets_zero_advantage_not_nan():
    rewards = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0])
    adv = compute_advantages(rewards, G)  # default eps 1e-6: 0 / (0 + 1e-6) = 0
    assert torch.isfinite(adv).all()
    assert adv[:4].abs().max().item() == 0.0
    assert zero_variance_groups(rewards, G).tolist() == [True, False]
    assert keep_mask_nonzero_variance(rewards, G).tolist() == [False] * 4 + [True] * 4


def test_leave_one_out():
    # group a: b_i = (2 - R_i) / 3 = [1/3, 2/3, 2/3, 1/3] -> A = [2/3, -2/3, -2/3, 2/3]
    # group b: b_i = (1 - R_i) / 3 = [0, 1/3, 1/3, 1/3]   -> A = [1, -1/3, -1/3, -1/3]
    # both equal G/(G-1) = 4/3 times the group-mean advantage.
    base = leave_one_out_baseline(REWARDS, G)
    close(base, [1 / 3, 2 / 3, 2 / 3, 1 / 3, 0, 1 / 3, 1 / 3, 1 / 3])
    adv = compute_advantages(REWARDS, G, baseline="leave_one_out", std_scale="none")
    close(adv, [2 / 3, -2 / 3, -2 / 3, 2 / 3, 1, -1 / 3, -1 / 3, -1 / 3])
    torch.testing.assert_close(adv, compute_advantages(REWARDS, G, std_scale="none") * 4 / 3)


def test_batch_mean_batch_std_is_reinforce_pp():
    # Batch mean 3/8; centred 5/8 (rewarded) and -3/8 (not).
    # Sum sq = 3 * 25/64 + 5 * 9/64 = 120/64; biased var 15/64 -> std sqrt15/8.
    # A = (5/8)/(sqrt15/8) = 5/sqrt15, -(3/8)/(sqrt15/8) = -3/sqrt15.
    adv = compute_advantages(REWARDS, G, baseline="batch_mean", std_scale="batch", std_unbiased=False, eps=0.0)
    p, n = 5 / math.sqrt(15), -3 / math.sqrt(15)
    close(adv, [p, n, n, p, p, n, n, n])
    assert adv.mean().item() == pytest.approx(0.0, abs=1e-12)
    # Unbiased: var = (120/64) / 7 -> std = sqrt(120/448)
    adv_u = compute_advantages(REWARDS, G, baseline="batch_mean", std_scale="batch", eps=0.0)
    assert adv_u[0].item() == pytest.approx(0.625 / math.sqrt(120 / 448), abs=1e-12)


def test_group_mean_batch_std():
    # Group baseline, std of all rewards (biased sqrt15/8): group a -> +-(1/2) * 8/sqrt15 = +-4/sqrt15
    adv = compute_advantages(REWARDS, G, std_scale="batch", std_unbiased=False, eps=0.0)
    assert adv[0].item() == pytest.approx(4 / math.sqrt(15), abs=1e-12)
    assert adv[4].item() == pytest.approx(0.75 * 8 / math.sqrt(15), abs=1e-12)


def test_bad_layout_and_options_raise():
    with pytest.raises(ValueError, match="multiple of group_size"):
        compute_advantages(torch.zeros(6), 4)
    with pytest.raises(ValueError, match="baseline"):
        compute_advantages(REWARDS, G, baseline="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std_scale"):
        compute_advantages(REWARDS, G, std_scale="global")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group_size >= 2"):
        leave_one_out_baseline(REWARDS, 1)


def test_broadcast_to_tokens_zeroes_padding():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    out = broadcast_to_tokens(torch.tensor([2.0, -1.0]), mask)
    assert out.tolist() == [[2.0, 2.0, 0.0], [-1.0, 0.0, 0.0]]
    per_token = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert broadcast_to_tokens(per_token, mask).tolist() == [[1.0, 2.0, 0.0], [4.0, 0.0, 0.0]]
