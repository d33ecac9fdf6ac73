"""Per-token losses and aggregation against hand-derived numbers; the length-bias gradient check;
KL estimators against exact KLs of small categorical distributions."""

from __future__ import annotations

import math

import pytest
import torch

from r1zero.core.algorithms import get_algorithm
from r1zero.core.losses import (
    AGGREGATIONS,
    aggregate,
    clip_masks,
    clipped_pg_loss,
    kl_estimate,
    policy_loss,
    step_normalizer,
    tis_weight,
    token_weights,
)

# Three responses of lengths 1, 2, 4 (T = 4); padding holds 100 so any leak is obvious.
#   row 0: [2]            sum 2, mean 2
#   row 1: [1, 3]         sum 4, mean 2
#   row 2: [1, 1, 1, 1]   sum 4, mean 1
# T_step = 7 tokens, N_step = 3 responses, C = 4:
#   token-mean              = (2 + 4 + 4) / 7           = 10/7
#   seq-mean-token-mean     = (2 + 2 + 1) / 3           = 5/3
#   seq-mean-token-sum      = (2 + 4 + 4) / 3           = 10/3
#   seq-mean-token-sum-norm = (2 + 4 + 4) / (3 * 4)     = 5/6
VALUES = torch.tensor(
    [[2.0, 100, 100, 100], [1, 3, 100, 100], [1, 1, 1, 1]], dtype=torch.float64
)
MASK = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.float64)
EXPECTED = {
    "token-mean": 10 / 7,
    "seq-mean-token-mean": 5 / 3,
    "seq-mean-token-sum": 10 / 3,
    "seq-mean-token-sum-norm": 5 / 6,
}


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_aggregation_hand_numbers(mode):
    norm = step_normalizer(MASK, constant=4.0)
    assert (norm.num_sequences, norm.num_tokens) == (3.0, 7.0)
    assert aggregate(VALUES, MASK, norm, mode).item() == pytest.approx(EXPECTED[mode], abs=1e-12)


@pytest.mark.parametrize("mode", AGGREGATIONS)
def test_aggregation_split_into_micro_batches_sums_to_step_value(mode):
    # Micro-batches [row 0] and [rows 1, 2], each trimmed to its own padded length.
    norm = step_normalizer([MASK[:1, :1], MASK[1:]], constant=4.0)
    total = aggregate(VALUES[:1, :1], MASK[:1, :1], norm, mode) + aggregate(VALUES[1:], MASK[1:], norm, mode)
    assert total.item() == pytest.approx(EXPECTED[mode], abs=1e-12)


def test_token_weights_are_zero_on_padding_and_need_a_constant():
    norm = step_normalizer(MASK, constant=None)
    for mode in ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum"):
        assert (token_weights(MASK, norm, mode)[MASK == 0] == 0).all()
    with pytest.raises(ValueError, match="constant"):
        token_weights(MASK, norm, "seq-mean-token-sum-norm")
    with pytest.raises(ValueError, match="aggregation"):
        token_weights(MASK, norm, "sum")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- clipping
def _pg(ratio: float, adv: float, **kw):
    logp = torch.tensor([[math.log(ratio)]], dtype=torch.float64, requires_grad=True)
    old = torch.zeros(1, 1, dtype=torch.float64)
    loss, r = clipped_pg_loss(logp, old, torch.tensor([adv], dtype=torch.float64), **kw)
    loss.sum().backward()
    low, high, dual = clip_masks(r, torch.tensor([adv]), clip_low=kw["clip_low"], clip_high=kw["clip_high"],
                                 dual_clip=kw.get("dual_clip"))
    return loss.item(), logp.grad.item(), low.item(), high.item(), dual.item()


@pytest.mark.parametrize(
    "ratio, adv, loss, grad, low, high",
    [
        # A > 0, rho = 1.5 > 1 + 0.28: clipped branch -1.28 wins, no gradient, high-clipped.
        (1.5, 1.0, -1.28, 0.0, False, True),
        # A > 0, rho = 0.5: max(-0.5, -0.8) = -0.5 unclipped; d(-A rho)/dlogp = -rho = -0.5.
        (0.5, 1.0, -0.5, -0.5, False, False),
        # A < 0, rho = 0.5 < 1 - 0.2: max(0.5, 0.8) = 0.8 clipped, no gradient, low-clipped.
        (0.5, -1.0, 0.8, 0.0, True, False),
        # A < 0, rho = 1.5: max(1.5, 1.28) = 1.5 unclipped; gradient -A rho = 1.5.
        (1.5, -1.0, 1.5, 1.5, False, False),
        # Inside the range: rho = 1.1, A = 2 -> -2.2, gradient -2.2.
        (1.1, 2.0, -2.2, -2.2, False, False),
    ],
)
def test_clip_higher_cases(ratio, adv, loss, grad, low, high):
    got = _pg(ratio, adv, clip_low=0.2, clip_high=0.28)
    assert got[0] == pytest.approx(loss, abs=1e-12)
    assert got[1] == pytest.approx(grad, abs=1e-12)
    assert (got[2], got[3]) == (low, high)


def test_dual_clip():
    # A = -1, rho = 5, c = 3: PPO gives max(5, 1.2) = 5; dual clip caps at -cA = 3, no gradient.
    loss, grad, _, _, dual = _pg(5.0, -1.0, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    assert (loss, grad, dual) == (pytest.approx(3.0), 0.0, True)
    # rho = 2 < c: untouched, loss 2 and gradient -A rho = 2.
    loss, grad, _, _, dual = _pg(2.0, -1.0, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    assert (loss, grad, dual) == (pytest.approx(2.0), pytest.approx(2.0), False)
    # A > 0 is never dual-clipped: rho = 5 -> ordinary high clip, -1.2.
    loss, _, _, high, dual = _pg(5.0, 1.0, clip_low=0.2, clip_high=0.2, dual_clip=3.0)
    assert (loss, high, dual) == (pytest.approx(-1.2), True, False)


def test_clip_fraction_in_policy_loss_stats():
    # Four tokens of one response, A = +1: ratios 1.5 (high), 1.0, 0.9, 1.1; one padding token
    # with ratio 2 that must not count. Second response A = -1: ratios 0.5 (low), 1.0.
    logp = torch.log(torch.tensor([[1.5, 1.0, 0.9, 1.1, 2.0], [0.5, 1.0, 1, 1, 1]], dtype=torch.float64))
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 0, 0, 0]], dtype=torch.float64)
    cfg = get_algorithm("grpo")
    norm = step_normalizer(mask)
    _, stats = policy_loss(logp, torch.zeros_like(logp), torch.tensor([1.0, -1.0]), mask, norm, cfg)
    assert stats["clip_high_count"].item() == 1 and stats["clip_low_count"].item() == 1
    assert stats["num_tokens"].item() == 6


def test_tis_weight_truncates_and_is_detached():
    old = torch.log(torch.tensor([[0.5, 0.5, 0.2]]))
    sampler = torch.log(torch.tensor([[0.25, 0.5, 0.4]])).requires_grad_()
    # exp(old - sampler) = [2, 1, 0.5]; cap 1.5 -> [1.5, 1, 0.5]
    w = tis_weight(old, sampler, cap=1.5)
    torch.testing.assert_close(w, torch.tensor([[1.5, 1.0, 0.5]]))
    assert not w.requires_grad


def test_tis_weight_scales_pg_term_only():
    # One token, on-policy (rho = 1), A = 1, w = 2 (cap 3): pg = -A rho w = -2, grad -2 * weight.
    logp = torch.tensor([[math.log(0.5)]], dtype=torch.float64, requires_grad=True)
    sampler = torch.tensor([[math.log(0.25)]], dtype=torch.float64)
    mask = torch.ones(1, 1, dtype=torch.float64)
    cfg = get_algorithm("dr_grpo", tis_cap=3.0)
    loss, stats = policy_loss(logp, None, torch.tensor([1.0]), mask, step_normalizer(mask, constant=1.0), cfg,
                              sampler_logprobs=sampler)
    loss.backward()
    assert loss.item() == pytest.approx(-2.0) and logp.grad.item() == pytest.approx(-2.0)
    assert stats["tis_weight_sum"].item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="sampler_logprobs"):
        policy_loss(logp, None, torch.tensor([1.0]), mask, step_normalizer(mask, constant=1.0), cfg)


# ----------------------------------------------------------------------------- length bias
@pytest.mark.parametrize("name", ["dr_grpo", "grpo"])
def test_token_gradient_length_bias(name):
    # On-policy (rho = 1), no clipping active: l_t = -A rho_t, d l_t / d logp_t = -A * weight_t.
    #   Dr. GRPO: weight = 1 / (N C)      -> grad = -A / (N C)   whatever |o_i|
    #   GRPO    : weight = 1 / (N |o_i|)  -> grad = -A / (N |o_i|): long responses get smaller
    #             per-token gradients, so long *wrong* answers are penalised less (length bias).
    # std_scale is irrelevant here: A is given directly.
    lengths = [1, 3, 6]
    n, t_max, c = len(lengths), 6, 8.0
    mask = torch.zeros(n, t_max, dtype=torch.float64)
    for i, length in enumerate(lengths):
        mask[i, :length] = 1
    adv = torch.tensor([1.0, -1.0, -0.5], dtype=torch.float64)
    logp = torch.full((n, t_max), -1.3, dtype=torch.float64, requires_grad=True)
    cfg = get_algorithm(name, norm_constant=c)
    norm = step_normalizer(mask, constant=cfg.norm_constant_for(max_new_tokens=999))
    loss, _ = policy_loss(logp, None, adv, mask, norm, cfg)
    loss.backward()
    for i, length in enumerate(lengths):
        per_token = logp.grad[i, :length]
        denom = n * c if name == "dr_grpo" else n * length
        torch.testing.assert_close(per_token, torch.full_like(per_token, -adv[i].item() / denom))
        assert (logp.grad[i, length:] == 0).all()


# ----------------------------------------------------------------------------- KL
P = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)  # pi (the sampler)
Q = torch.tensor([0.2, 0.4, 0.3, 0.1], dtype=torch.float64)  # pi_ref


def test_kl_estimators_zero_when_policies_agree():
    logp = torch.log(P).repeat(3, 1)
    for est in ("k1", "k2", "k3"):
        assert kl_estimate(logp, logp.clone(), est).abs().max().item() == 0.0


def test_k3_and_k2_never_negative():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(64, 32, generator=g) * 3, torch.randn(64, 32, generator=g) * 3
    assert (kl_estimate(a, b, "k3") >= 0).all() and (kl_estimate(a, b, "k2") >= 0).all()
    assert (kl_estimate(a, b, "k1") < 0).any()  # k1 is unbiased but not pointwise non-negative


def test_kl_estimators_sample_means_match_exact_kl():
    # Exact: KL(P||Q) = sum P log(P/Q); E_P[k2] = 1/2 sum P (log P/Q)^2.
    log_ratio = torch.log(P / Q)
    kl = (P * log_ratio).sum().item()
    k2_expect = 0.5 * (P * log_ratio.square()).sum().item()
    g = torch.Generator().manual_seed(1)
    idx = torch.multinomial(P, 200_000, replacement=True, generator=g)
    logp, logq = torch.log(P)[idx].unsqueeze(0), torch.log(Q)[idx].unsqueeze(0)  # [1, S]
    for est, target in (("k1", kl), ("k3", kl), ("k2", k2_expect)):
        samples = kl_estimate(logp, logq, est)
        tol = 5 * samples.std().item() / math.sqrt(samples.numel())  # 5 standard errors
        assert abs(samples.mean().item() - target) < tol, est
    # k2's expectation differs from the KL: it is a biased estimator of it.
    assert abs(k2_expect - kl) > 0.01


def test_kl_loss_gradients_in_expectation():
    # Exact expectation over the 4 outcomes (weights P, not differentiated) of d k / d theta,
    # with pi = softmax(theta): k2 -> grad KL(pi||ref); k3 -> grad KL(ref||pi); k1 -> 0.
    theta = torch.log(P).clone().requires_grad_()

    def expected_grad(est):
        logp = torch.log_softmax(theta, dim=0)
        value = (P * kl_estimate(logp, torch.log(Q), est)).sum()
        return torch.autograd.grad(value, theta)[0]

    def grad_of(fn):
        return torch.autograd.grad(fn(torch.log_softmax(theta, dim=0)), theta)[0]

    reverse = grad_of(lambda lp: (lp.exp() * (lp - torch.log(Q))).sum())
    forward = grad_of(lambda lp: (Q * (torch.log(Q) - lp)).sum())
    torch.testing.assert_close(expected_grad("k2"), reverse)
    torch.testing.assert_close(expected_grad("k3"), forward)
    torch.testing.assert_close(expected_grad("k1"), torch.zeros(4, dtype=torch.float64))


def test_kl_in_policy_loss_needs_reference_only_when_beta_nonzero():
    logp = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(2, 3, dtype=torch.float64)
    norm = step_normalizer(mask)
    loss, stats = policy_loss(logp, None, torch.zeros(2), mask, norm, get_algorithm("grpo"))
    assert "kl_sum" not in stats and loss.item() == 0.0
    with pytest.raises(ValueError, match="ref_logprobs"):
        policy_loss(logp, None, torch.zeros(2), mask, norm, get_algorithm("grpo", kl_beta=0.04))
    # ref log-prob -1 everywhere, A = 0: loss = beta * mean k3 = 0.04 * (e^-1 - 1 + 1) = 0.04 / e.
    ref = torch.full((2, 3), -1.0, dtype=torch.float64)
    loss, stats = policy_loss(logp, None, torch.zeros(2), mask, norm, get_algorithm("grpo", kl_beta=0.04),
                              ref_logprobs=ref)
    assert loss.item() == pytest.approx(0.04 * math.exp(-1), abs=1e-12)
    assert stats["kl_sum"].item() == pytest.approx(6 * math.exp(-1), abs=1e-12)


def test_entropy_bonus_lowers_loss():
    logp = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(1, 2, dtype=torch.float64)
    entropy = torch.tensor([[1.0, 3.0]], dtype=torch.float64)
    # token-mean entropy 2, coefficient 0.01 -> loss -0.02 (A = 0).
    loss, stats = policy_loss(logp, None, torch.zeros(1), mask, step_normalizer(mask),
                              get_algorithm("dapo", entropy_coef=0.01), entropy=entropy)
    assert loss.item() == pytest.approx(-0.02) and stats["entropy_sum"].item() == 4.0


def test_nan_and_inf_on_padding_do_not_leak():
    # The sampler may report NaN (unscored token) and the reference -inf on padding; neither may
    # reach the loss or the gradient. Real token: on-policy, A = 1, sampler agrees -> loss -1.
    logp = torch.zeros(1, 3, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64)
    sampler = torch.tensor([[0.0, float("nan"), float("nan")]], dtype=torch.float64)
    ref = torch.tensor([[0.0, float("-inf"), float("-inf")]], dtype=torch.float64)
    cfg = get_algorithm("dapo", tis_cap=2.0, kl_beta=0.1)
    loss, stats = policy_loss(logp, None, torch.tensor([1.0]), mask, step_normalizer(mask), cfg,
                              ref_logprobs=ref, sampler_logprobs=sampler)
    loss.backward()
    assert loss.item() == pytest.approx(-1.0)
    assert torch.isfinite(logp.grad).all() and all(torch.isfinite(v).all() for v in stats.values())


# ----------------------------------------------------------------------------- GSPO
def test_gspo_sequence_ratio_by_hand():
    """Two responses (lengths 2 and 1, padding 100). Log-ratios: row 0 (+0.3, −0.1), row 1
    (+0.5). log s_0 = (0.3 − 0.1)/2 = 0.1, s_0 = e^0.1 = 1.10517; log s_1 = 0.5, s_1 = 1.64872.
    With A = (+1, −1) and ε = (0.2, 0.2): row 0 unclipped (s_0 < 1.2): l = −s_0 on both
    tokens; row 1 has A < 0 and s_1 > 0.8, so the max picks the unclipped −A s_1 = +s_1.
    seq-mean-token-mean over N = 2: L = ½(½(−s_0 − s_0) + s_1) = ½(s_1 − s_0) = 0.27177.
    Gradient (GSPO eq. 10): ∂L/∂logp_{0,t} = ½ · ½ · (−A_0 s_0) = −s_0/4 for t = 0, 1;
    ∂L/∂logp_{1,0} = ½ · (−A_1 s_1) = s_1/2; padding 0."""
    cfg = get_algorithm("gspo", clip_low=0.2, clip_high=0.2)
    old = torch.tensor([[-1.0, -2.0], [-0.5, 100.0]], dtype=torch.float64)
    lp = (old + torch.tensor([[0.3, -0.1], [0.5, 0.0]], dtype=torch.float64)).requires_grad_()
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    norm = step_normalizer(mask)
    loss, stats = policy_loss(lp, old, torch.tensor([1.0, -1.0], dtype=torch.float64), mask, norm, cfg)
    s0, s1 = math.exp(0.1), math.exp(0.5)
    assert float(loss.detach()) == pytest.approx(0.5 * (s1 - s0), abs=1e-12)
    loss.backward()
    expected = torch.tensor([[-s0 / 4, -s0 / 4], [s1 / 2, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(lp.grad, expected, rtol=0, atol=1e-12)
    assert float(stats["ratio_sum"]) == pytest.approx(2 * s0 + s1, abs=1e-12)  # s_i on every token


def test_gspo_clips_the_whole_sequence():
    """A sequence ratio past 1 + ε_high with A > 0 cuts the gradient of every token of the
    response, even tokens whose own ratio is below 1 (token-level PPO would keep those)."""
    cfg = get_algorithm("gspo")  # ε = 3e-4 / 4e-4
    old = torch.zeros(1, 3, dtype=torch.float64)
    lp = torch.tensor([[0.01, -0.001, 0.0002]], dtype=torch.float64, requires_grad=True)
    mask = torch.ones(1, 3, dtype=torch.float64)
    loss, stats = policy_loss(lp, old, torch.tensor([1.0], dtype=torch.float64), mask, step_normalizer(mask), cfg)
    loss.backward()
    assert torch.count_nonzero(lp.grad) == 0 and float(stats["clip_high_count"]) == 3
    token = get_algorithm("grpo", clip_low=3e-4, clip_high=4e-4)
    lp.grad = None
    loss, _ = policy_loss(lp, old, torch.tensor([1.0], dtype=torch.float64), mask, step_normalizer(mask), token)
    loss.backward()
    assert torch.count_nonzero(lp.grad) == 2  # the token-level ratio keeps t = 1, 2


def test_gspo_on_policy_gradient_is_the_length_normalised_sequence_gradient():
    """One optimizer step (old = None, s_i = 1): the gradient is −A_i/(N|o_i|) per token, the
    same as GRPO's at ratio 1 — GSPO differs only once the policy has moved."""
    lp = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    mask = MASK.clone()
    adv = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    grads = []
    for name in ("gspo", "grpo"):
        lp.grad = None
        loss, _ = policy_loss(lp, None, adv, mask, step_normalizer(mask), get_algorithm(name))
        loss.backward()
        grads.append(lp.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=0, atol=1e-12)


# ----------------------------------------------------------------------------- RAFT
def test_raft_is_sft_on_the_correct_responses():
    """RAFT's loss on its kept (correct) responses, A = R = 1: −1/N Σ_i 1/|o_i| Σ_t log π.
    Rows of lengths 1, 2, 4 with log-probs VALUES·(−0.1): L = 0.1·(2 + 2 + 1)/3 = 1/6."""
    cfg = get_algorithm("raft")
    lp = (-0.1 * VALUES).requires_grad_()
    loss, stats = policy_loss(lp, None, torch.ones(3, dtype=torch.float64), MASK, step_normalizer(MASK), cfg)
    assert float(loss) == pytest.approx(1 / 6, abs=1e-12)
    loss.backward()
    torch.testing.assert_close(lp.grad, -MASK / (MASK.sum(1, keepdim=True) * 3))
    assert float(stats["clip_high_count"]) == 0


def test_raft_and_raft_pp_differ_only_off_policy():
    """Same gradient while π_θ = π_old; once the policy moved past 1 + ε, RAFT++ clips the
    token (no gradient) and RAFT keeps pushing its log-likelihood."""
    mask = torch.ones(1, 2, dtype=torch.float64)
    adv = torch.ones(1, dtype=torch.float64)
    grads = {}
    for name, old in [("raft", None), ("raft_pp", None), ("raft_off", torch.tensor([[-1.0, -1.0]])),
                      ("raft_pp_off", torch.tensor([[-1.0, -1.0]]))]:
        lp = torch.tensor([[-0.5, -1.0]], dtype=torch.float64, requires_grad=True)
        cfg = get_algorithm(name.removesuffix("_off"))
        loss, _ = policy_loss(lp, old, adv, mask, step_normalizer(mask), cfg)
        loss.backward()
        grads[name] = lp.grad
    torch.testing.assert_close(grads["raft"], grads["raft_pp"])
    torch.testing.assert_close(grads["raft_off"], grads["raft"])  # log π: no ratio at all
    # token 0: ratio e^0.5 > 1.2 with A > 0: clipped; token 1: ratio 1: gradient −ρ/2
    torch.testing.assert_close(grads["raft_pp_off"], torch.tensor([[0.0, -0.5]], dtype=torch.float64))
