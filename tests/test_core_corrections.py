"""The off-policy correction rows (`--algo.is-correction`, core/corrections.py): the value
and the gradient of each row's loss derived by hand, and the mismatch metrics.

Shared set-up of the hand derivations: two responses of three tokens, on-policy for the
learner (π_θ = π_old, so the clipped ratio ρ_t = π_θ/π_old = 1 and the surrogate is −A_i),
RLOO's aggregation seq-mean-token-sum (token weight 1/N_step = 1/2), and a sampler μ with

    response 0: A_0 = +1, r_t = π_old/μ = (3, 1, 0.5)   R_0 = Π r = 1.5,   G_0 = 1.5^(1/3) = 1.1447
    response 1: A_1 = −1, r_t = (0.9, 1.1, 1)           R_1 = 0.99,        G_1 = 0.99^(1/3) = 0.99665

With a constant weight w_{i,t} the loss is Σ_{i,t} −A_i w_{i,t} / 2 and, because
∂(−A ρ_t)/∂log π_θ(o_t) = −A ρ_t = −A, its gradient is ∂L/∂log π_θ(o_t) = −A_i w_{i,t} / 2.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from r1zero.config import TrainConfig, resolve_algorithm
from r1zero.core.algorithms import ALGORITHMS, get_algorithm
from r1zero.core.corrections import CORRECTIONS, apply_correction, mismatch_metrics
from r1zero.core.losses import LossNormalizer, policy_loss
from r1zero.core.metrics import add_stats, summarize_loss_stats

R = torch.tensor([[3.0, 1.0, 0.5], [0.9, 1.1, 1.0]])  # r_t = π_old / μ
ADV = torch.tensor([1.0, -1.0])
MASK = torch.ones(2, 3)
NORM = LossNormalizer(num_sequences=2, num_tokens=6)


def _loss(shift: torch.Tensor | None = None, adv=ADV, **algo):
    """(loss, d loss / d log π_θ, stats) of RLOO's clipped loss with ``algo`` switches;
    ``shift`` moves log π_θ away from log π_old (default: on-policy for the learner)."""
    old = torch.full((2, 3), -1.0)
    sampler = old - torch.log(R)  # log μ = log π_old − log r
    logp = (old + (shift if shift is not None else 0.0)).clone().requires_grad_(True)
    cfg = get_algorithm("rloo", **algo)
    loss, stats = policy_loss(logp, old, adv, MASK, NORM, cfg, sampler_logprobs=sampler,
                              staleness=torch.tensor([[0, 0, 0], [1, 1, 1]]))
    loss.backward()
    return float(loss.detach()), logp.grad, stats


def _close(grad, rows):
    torch.testing.assert_close(grad, torch.tensor(rows), atol=1e-6, rtol=0)


def test_token_tis_by_hand():
    # w = min(r, 2) = (2, 1, 0.5 | 0.9, 1.1, 1); L = (−3.5 + 3.0)/2 = −0.25; one token capped.
    loss, grad, stats = _loss(is_correction="token_tis", tis_cap=2.0)
    assert loss == pytest.approx(-0.25, abs=1e-6)
    _close(grad, [[-1.0, -0.5, -0.25], [0.45, 0.55, 0.5]])
    assert float(stats["tis_capped_count"]) == 1 and float(stats["tis_weight_sum"]) == pytest.approx(6.5)


def test_seq_tis_by_hand():
    # w_i = min(R_i, 1.2) = 1.2 (capped: 1.5 > 1.2) on every token of o_0, 0.99 on o_1;
    # L = (−3·1.2 + 3·0.99)/2 = −0.315.
    loss, grad, stats = _loss(is_correction="seq_tis", tis_cap=1.2)
    assert loss == pytest.approx(-0.315, abs=1e-6)
    _close(grad, [[-0.6] * 3, [0.495] * 3])
    assert float(stats["tis_capped_count"]) == 3  # all of o_0
    # Under a cap above R_0 the weight is the sequence ratio itself: −(1.5·3 − 0.99·3)/2.
    loss, grad, _ = _loss(is_correction="seq_tis", tis_cap=2.0)
    assert loss == pytest.approx(-0.765, abs=1e-6)
    _close(grad, [[-0.75] * 3, [0.495] * 3])


def test_token_mis_by_hand():
    # Band [0.95, 2]: r = 3 and 0.5 (o_0) and 0.9 (o_1) are dropped, the rest keep w = r:
    # w = (0, 1, 0 | 0, 1.1, 1); L = (−1 + 2.1)/2 = 0.55.
    loss, grad, stats = _loss(is_correction="token_mis", is_low=0.95, is_high=2.0)
    assert loss == pytest.approx(0.55, abs=1e-6)
    _close(grad, [[0.0, -0.5, 0.0], [0.0, 0.55, 0.5]])
    assert stats["mm_masked"].sum() == 3
    # IcePop's default band [0.5, 5] keeps every token (0.5 is inside): w = r.
    loss, _, stats = _loss(is_correction="token_mis")
    assert loss == pytest.approx((-4.5 + 3.0) / 2, abs=1e-6) and stats["mm_masked"].sum() == 0


def test_seq_mis_by_hand():
    # Band [1, 2]: R_0 = 1.5 kept with w = 1.5, R_1 = 0.99 dropped: L = −4.5/2 = −2.25.
    loss, grad, stats = _loss(is_correction="seq_mis", is_low=1.0, is_high=2.0)
    assert loss == pytest.approx(-2.25, abs=1e-6)
    _close(grad, [[-0.75] * 3, [0.0] * 3])
    assert float(stats["mm_sequences_dropped"]) == 1 and float(stats["mm_sequences"]) == 2
    # The default band [0.5, 2] keeps both: the seq_tis value without a binding cap.
    assert _loss(is_correction="seq_mis")[0] == pytest.approx(-0.765, abs=1e-6)


def test_geometric_mask_by_hand():
    # Band [0.99, 1.01] (default): G_0 = 1.1447 out (w = 0), G_1 = 0.99665 in with w = 1
    # (a pure mask, not a weight): L = 3·1/2 = 1.5.
    loss, grad, stats = _loss(is_correction="geo_mask")
    assert loss == pytest.approx(1.5, abs=1e-6)
    _close(grad, [[0.0] * 3, [0.5] * 3])
    # A band that holds G_0 too keeps everything at weight 1: the plain loss (−3 + 3)/2 = 0.
    assert _loss(is_correction="geo_mask", is_low=0.9, is_high=1.2)[0] == pytest.approx(0.0, abs=1e-6)


def test_off_policy_sequence_masking_by_hand():
    # D_i = mean_t log(μ/π_θ) = −mean log r (π_θ = π_old): D_0 = −ln(1.5)/3 = −0.135,
    # D_1 = −ln(0.99)/3 = +0.00335. δ = 0.001: o_1 has A < 0 and D_1 > δ, so it is dropped:
    # L = −3/2 (o_0 alone), gradient 0 on o_1.
    loss, grad, stats = _loss(is_correction="opsm", opsm_delta=0.001)
    assert loss == pytest.approx(-1.5, abs=1e-6)
    _close(grad, [[-0.5] * 3, [0.0] * 3])
    assert float(stats["mm_sequences_dropped"]) == 1
    # δ = 0.01 > D_1: nothing dropped, the plain loss (−3 + 3)/2 = 0.
    assert _loss(is_correction="opsm", opsm_delta=0.01)[0] == pytest.approx(0.0, abs=1e-6)
    # A positive advantage is never dropped: flip the signs (o_1 now has A > 0, D_1 > δ).
    loss, grad, _ = _loss(adv=-ADV, is_correction="opsm", opsm_delta=0.001)
    assert loss == pytest.approx(0.0, abs=1e-6)
    _close(grad, [[0.5] * 3, [-0.5] * 3])


def test_opsm_reads_the_current_policy():
    # π_θ = π_old·e^(−0.1) on o_1 raises D_1 by 0.1: dropped at δ = 0.05, kept on-policy.
    old = torch.full((2, 3), -1.0)
    sampler = old - torch.log(R)
    row = CORRECTIONS["opsm"]
    moved = old - torch.tensor([[0.0], [0.1]])
    kept = apply_correction(row, old, old, sampler, ADV, MASK, cap=None, delta=0.05)
    dropped = apply_correction(row, moved, old, sampler, ADV, MASK, cap=None, delta=0.05)
    assert kept.weight.eq(1).all()
    assert dropped.weight.tolist() == [[1.0] * 3, [0.0] * 3]


def test_decoupled_ppo_by_hand():
    # π_prox = π_old. Weight π_prox/μ = r, masked above C = 2 (AReaL's behav_imp_weight_cap):
    # w = (0, 1, 0.5 | 0.9, 1.1, 1); L = (−1.5 + 3.0)/2 = 0.75.
    loss, grad, stats = _loss(is_correction="decoupled", tis_cap=2.0)
    assert loss == pytest.approx(0.75, abs=1e-6)
    _close(grad, [[0.0, -0.5, -0.25], [0.45, 0.55, 0.5]])
    assert stats["mm_masked"].sum() == 1
    # Without a cap the weight is r itself: (−4.5 + 3.0)/2.
    assert _loss(is_correction="decoupled")[0] == pytest.approx(-0.75, abs=1e-6)


def test_decoupled_clips_against_the_proximal_policy_and_coupled_against_the_sampler():
    # Move π_θ = π_old·1.5 on every token. decoupled: u = π_θ/π_prox = 1.5 is clipped at 1.2
    # for A > 0 (no gradient) and unclipped for A < 0 (−A u w: value 1.5·r, gradient 1.5·r/2):
    # L = (−1.2·(0+1+0.5) + 1.5·3)/2 = (−1.8 + 4.5)/2 = 1.35.
    shift = torch.full((2, 3), math.log(1.5))
    loss, grad, _ = _loss(shift, is_correction="decoupled", tis_cap=2.0)
    assert loss == pytest.approx(1.35, abs=1e-5)
    _close(grad, [[0.0] * 3, [0.675, 0.825, 0.75]])
    # coupled: ρ = π_θ/μ = 1.5·r, w = 1. o_0 (A > 0): ρ = (4.5, 1.5, 0.75), the first two
    # clipped at 1.2 (loss −1.2, no gradient), 0.75 unclipped (−0.75, gradient −0.75/2);
    # o_1 (A < 0): ρ = (1.35, 1.65, 1.5), max(ρ, clip(ρ)) = ρ (gradient ρ/2).
    # L = (−1.2 − 1.2 − 0.75 + 1.35 + 1.65 + 1.5)/2 = 0.675.
    loss, grad, stats = _loss(shift, is_correction="coupled")
    assert loss == pytest.approx(0.675, abs=1e-5)
    _close(grad, [[0.0, 0.0, -0.375], [0.675, 0.825, 0.75]])
    assert float(stats["clip_high_count"]) == 2


def test_no_correction_leaves_the_loss_alone_and_still_measures():
    # w = 1: L = (−3 + 3)/2 = 0, gradient −A/2; the mismatch samples are there all the same.
    loss, grad, stats = _loss(is_correction="none")
    assert loss == pytest.approx(0.0, abs=1e-6)
    _close(grad, [[-0.5] * 3, [0.5] * 3])
    assert stats["mm_log_ratio"].numel() == 6 and "tis_weight_sum" not in stats


def test_corrections_need_the_sampler_and_a_cap():
    logp = torch.zeros(1, 2, requires_grad=True)
    with pytest.raises(ValueError, match="needs sampler_logprobs"):
        policy_loss(logp, None, torch.ones(1), torch.ones(1, 2), NORM,
                    get_algorithm("rloo", is_correction="geo_mask"))
    with pytest.raises(ValueError, match="tis_cap"):
        get_algorithm("rloo", is_correction="seq_tis")
    with pytest.raises(ValueError, match="is_correction"):
        get_algorithm("rloo", is_correction="bogus")
    assert get_algorithm("rloo").correction == "none"
    assert get_algorithm("rloo", tis_cap=2.0).correction == "token_tis"
    assert get_algorithm("rloo", tis_cap=2.0, is_correction="none").correction == "none"
    # derive: stale samplers and the truncating rows get the cap 2.0 unless one was given.
    assert resolve_algorithm(TrainConfig(max_staleness=2)).algo.correction == "token_tis"
    asked = dataclasses.replace(ALGORITHMS["dr_grpo"], is_correction="seq_tis")  # no cap given
    cfg = resolve_algorithm(TrainConfig(algo=asked))
    assert cfg.algo.tis_cap == 2.0


def test_padding_and_unscored_tokens_get_weight_one_and_no_statistic():
    old = torch.tensor([[-1.0, -1.0, -1.0]])
    sampler = torch.tensor([[-1.0 - math.log(3.0), float("nan"), -5.0]])  # r = 3, unscored, padding
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    a = apply_correction(CORRECTIONS["token_mis"], old, old, sampler, torch.ones(1), mask,
                         cap=None, low=0.5, high=2.0)
    assert a.weight.tolist() == [[0.0, 1.0, 1.0]] and a.usable.tolist() == [[True, False, False]]


# ----------------------------------------------------------------------------- metrics
def test_mismatch_metrics_by_hand():
    # The six ratios r = (3, 1, 0.5, 0.9, 1.1, 1), sorted (0.5, 0.9, 1, 1, 1.1, 3).
    # k1 = mean(−log r) = −ln(3·0.5·0.9·1.1)/6 = −ln(1.485)/6; k3 = mean(r − 1 − ln r).
    # Quantiles (linear, position p·5): p1 → 0.5 + 0.05·0.4 = 0.52; p50 → 1; p99 → 1.1 +
    # 0.95·1.9 = 2.905; max 3. Staleness 0 holds o_0, 1 holds o_1.
    _, _, stats = _loss(is_correction="token_tis", tis_cap=2.0)
    m = summarize_loss_stats(add_stats({}, stats))
    r = [3.0, 1.0, 0.5, 0.9, 1.1, 1.0]
    assert m["mismatch/kl_k1"] == pytest.approx(-math.log(1.485) / 6, abs=1e-7)
    assert m["mismatch/kl_k3"] == pytest.approx(sum(x - 1 - math.log(x) for x in r) / 6, abs=1e-7)
    assert m["mismatch/is_ratio_p1"] == pytest.approx(0.52, abs=1e-6)
    assert m["mismatch/is_ratio_p50"] == pytest.approx(1.0, abs=1e-6)
    assert m["mismatch/is_ratio_p99"] == pytest.approx(2.905, abs=1e-6)
    assert m["mismatch/is_ratio_max"] == pytest.approx(3.0, abs=1e-6)
    assert m["mismatch/truncated_frac"] == pytest.approx(1 / 6) and m["mismatch/masked_frac"] == 0
    assert m["mismatch/stale0/kl_k1"] == pytest.approx(-math.log(1.5) / 3, abs=1e-7)
    assert m["mismatch/stale1/kl_k1"] == pytest.approx(-math.log(0.99) / 3, abs=1e-7)
    assert m["mismatch/stale1/token_frac"] == 0.5 and m["mismatch/stale0/truncated_frac"] == pytest.approx(1 / 3)
    # Both estimators vanish when the sampler is the learner (r = 1); no samples, no metrics.
    same = {"mm_log_ratio": torch.zeros(4), "mm_masked": torch.zeros(4), "mm_truncated": torch.zeros(4),
            "mm_staleness": torch.zeros(4), "mm_sequences": torch.tensor(1.0),
            "mm_sequences_dropped": torch.tensor(0.0)}
    zero = mismatch_metrics(same)
    assert zero["mismatch/kl_k1"] == 0 and zero["mismatch/kl_k3"] == 0 and zero["mismatch/is_ratio_max"] == 1
    assert mismatch_metrics({}) == {}


def test_mismatch_metrics_do_not_depend_on_the_micro_batching():
    old = torch.full((2, 3), -1.0)
    sampler = old - torch.log(R)
    cfg = get_algorithm("rloo", is_correction="geo_mask")

    def stats(rows):
        logp = old[rows].clone().requires_grad_(True)
        return policy_loss(logp, old[rows], ADV[rows], MASK[rows], NORM, cfg,
                           sampler_logprobs=sampler[rows])[1]

    whole = summarize_loss_stats(add_stats({}, stats([0, 1])))
    split = summarize_loss_stats(add_stats(add_stats({}, stats([0])), stats([1])))
    assert whole == pytest.approx(split, abs=1e-7)
    assert whole["mismatch/masked_seq_frac"] == 0.5
