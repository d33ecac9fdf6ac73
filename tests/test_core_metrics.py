"""pass@k against brute-force enumeration, maj@k cases, and the training metrics."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from r1zero.core.algorithms import get_algorithm
from r1zero.core.losses import policy_loss, step_normalizer
from r1zero.core.metrics import (
    approx_kl,
    clip_fraction,
    entropy_from_logits,
    maj_at_k,
    mean_pass_at_k,
    pass_at_k,
    summarize_loss_stats,
    zero_variance_group_share,
)


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of the C(n, k) size-k subsets of the samples that contain a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(samples, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_enumeration(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_known_values_and_stability():
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the accuracy c / n
    assert pass_at_k(4, 0, 4) == 0.0 and pass_at_k(4, 1, 4) == 1.0
    # 1 - C(1000, 500) / C(1024, 500): binomials far beyond float range; compare via lgamma.
    n, c, k = 1024, 24, 500
    log_ratio = (math.lgamma(n - c + 1) - math.lgamma(n - c - k + 1)) - (math.lgamma(n + 1) - math.lgamma(n - k + 1))
    assert pass_at_k(n, c, k) == pytest.approx(1 - math.exp(log_ratio), rel=1e-9)
    assert mean_pass_at_k([4, 4], [0, 4], 2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_maj_at_k():
    answers = ["3", "5", "5", None, "3", "3"]
    correct = [True, False, False, False, True, True]
    assert maj_at_k(answers, correct, 3) == 0.0  # "5" has 2 votes of 3
    assert maj_at_k(answers, correct, 6) == 1.0  # "3" has 3 votes, "5" 2, None never votes
    assert maj_at_k(answers, correct, 1) == 1.0
    assert maj_at_k(["5", "3"], [False, True], 2) == 0.0  # a tie goes to the first seen
    assert maj_at_k([None, None], [False, False], 2) == 0.0


def test_clip_fraction_and_zero_variance_share():
    ratio = torch.tensor([[1.5, 1.0, 0.7], [0.7, 1.5, 1.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    # row 0 (A > 0): 1.5 is high-clipped; row 1 (A < 0): 0.7 low-clipped. 5 real tokens.
    low, high = clip_fraction(ratio, torch.tensor([1.0, -1.0]), mask, clip_low=0.2, clip_high=0.2)
    assert (low.item(), high.item()) == (pytest.approx(0.2), pytest.approx(0.2))
    rewards = torch.tensor([1.0, 1, 1, 0, 0, 0, 1, 0, 1])
    assert zero_variance_group_share(rewards, 3) == pytest.approx(2 / 3)


def test_approx_kl_zero_on_policy_and_positive_off_policy():
    logp = torch.randn(3, 4)
    mask = torch.ones(3, 4)
    assert approx_kl(logp, logp, mask).item() == 0.0
    assert approx_kl(logp, logp + 0.3 * torch.randn(3, 4), mask).item() > 0


def test_entropy_from_logits_chunked_equals_full():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 17, generator=g)
    full = entropy_from_logits(logits)
    ref = torch.distributions.Categorical(logits=logits).entropy()
    torch.testing.assert_close(full, ref)
    torch.testing.assert_close(entropy_from_logits(logits, chunk_size=4), full)
    # Uniform over V: log V.
    assert entropy_from_logits(torch.zeros(2, 8)).tolist() == pytest.approx([math.log(8)] * 2)


def test_summarize_loss_stats_is_exact_over_micro_batches():
    g = torch.Generator().manual_seed(0)
    logp, old = torch.randn(4, 5, generator=g), torch.randn(4, 5, generator=g)
    mask = (torch.rand(4, 5, generator=g) > 0.3).float()
    adv = torch.tensor([1.0, -1.0, 0.5, -0.5])
    cfg = get_algorithm("dapo")
    norm = step_normalizer(mask)
    _, whole = policy_loss(logp, old, adv, mask, norm, cfg)
    parts = [policy_loss(logp[i:i + 1], old[i:i + 1], adv[i:i + 1], mask[i:i + 1], norm, cfg)[1] for i in range(4)]
    summed = {key: sum(p[key] for p in parts) for key in parts[0]}
    a, b = summarize_loss_stats(whole), summarize_loss_stats(summed)
    assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], abs=1e-6) for k in a)
    low, high = clip_fraction(torch.exp(logp - old), adv, mask, clip_low=0.2, clip_high=0.28)
    assert a["policy/clip_frac_low"] == pytest.approx(low.item())
    assert a["policy/clip_frac_high"] == pytest.approx(high.item())
    assert a["policy/approx_kl"] == pytest.approx(approx_kl(logp, old, mask).item(), rel=1e-5)
