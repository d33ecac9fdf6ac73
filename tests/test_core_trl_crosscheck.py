"""Independent cross-check of the loss against TRL 1.16's `GRPOTrainer._compute_loss` on identical inputs.

Building a real GRPOTrainer needs a model, a tokenizer and a dataset, and its loss reads
only a dozen attributes; so we call the unbound method on a stub that carries exactly those
attributes (the least fragile option: a TRL change that renames one fails loudly with an
AttributeError, not with a silently different number). TRL's advantages live inside
`_generate_and_score_completions` (generation + reward calls), so for them we check our
defaults against TRL's own std primitive instead.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch

grpo_trainer = pytest.importorskip("trl.trainer.grpo_trainer", reason="trl not installed")
trl_utils = pytest.importorskip("trl.trainer.utils")

from r1zero.core.advantages import compute_advantages  # noqa: E402
from r1zero.core.algorithms import get_algorithm  # noqa: E402
from r1zero.core.losses import policy_loss, step_normalizer, tis_weight  # noqa: E402

N, T, MAX_COMPLETION = 4, 6, 8
LENGTHS = [2, 6, 3, 5]


def make_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    mask = torch.zeros(N, T)
    for i, length in enumerate(LENGTHS):
        mask[i, :length] = 1
    logp = (-torch.rand(N, T, generator=g) * 2).requires_grad_()
    old = logp.detach() + 0.3 * torch.randn(N, T, generator=g)  # ratios spread over the clip range
    ref = logp.detach() + 0.5 * torch.randn(N, T, generator=g)
    sampler = old + 0.2 * torch.randn(N, T, generator=g)
    adv = torch.tensor([1.2, -0.7, 0.3, -1.1])
    return logp, old, ref, sampler, adv, mask


def trl_loss(loss_type: str, logp, old, ref, adv, mask, *, beta=0.0, eps_high=0.2, is_ratio=None,
             grad_accum=1, num_items=None):
    """Run TRL's `_compute_loss` on a stub trainer that returns our log-probs as the model's."""
    stub = SimpleNamespace(
        loss_type=loss_type, beta=beta, epsilon_low=0.2, epsilon_high=eps_high,
        importance_sampling_level="token", top_entropy_quantile=1.0, off_policy_mask_threshold=None,
        use_vllm=is_ratio is not None, vllm_importance_sampling_correction=is_ratio is not None,
        max_completion_length=MAX_COMPLETION, current_gradient_accumulation_steps=grad_accum,
        _entropy_bonus_enabled=False, aux_loss_enabled=False,
        args=SimpleNamespace(delta=None, use_bias_correction_kl=False, steps_per_generation=grad_accum),
        model=SimpleNamespace(training=True),
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)},
        accelerator=SimpleNamespace(gather=lambda x: x, reduce=lambda x, reduction="sum": x, num_processes=1),
        _get_per_token_logps_and_entropies=lambda *a, **k: (logp, torch.zeros_like(logp), None),
    )
    inputs = {
        "prompt_ids": torch.zeros(logp.shape[0], 1, dtype=torch.long),
        "prompt_mask": torch.ones(logp.shape[0], 1, dtype=torch.long),
        "completion_ids": torch.zeros(logp.shape, dtype=torch.long),
        "completion_mask": mask,
        "advantages": adv,
        "old_per_token_logps": old,
        "ref_per_token_logps": ref,
        "num_items_in_batch": (mask.sum() if num_items is None else num_items).clone(),
    }
    if is_ratio is not None:
        inputs["importance_sampling_ratio"] = is_ratio
    return grpo_trainer.GRPOTrainer._compute_loss(stub, None, inputs)


def ours(name: str, logp, old, ref, adv, mask, *, masks_of_step=None, sampler=None, **overrides):
    cfg = get_algorithm(name, **overrides)
    norm = step_normalizer(masks_of_step if masks_of_step is not None else mask,
                           constant=cfg.norm_constant_for(MAX_COMPLETION))
    return policy_loss(logp, old, adv, mask, norm, cfg, ref_logprobs=ref, sampler_logprobs=sampler)[0]


def assert_same_loss_and_grad(loss_a, loss_b, logp):
    (grad_a,) = torch.autograd.grad(loss_a, logp, retain_graph=True)
    (grad_b,) = torch.autograd.grad(loss_b, logp, retain_graph=True)
    torch.testing.assert_close(loss_a, loss_b, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(grad_a, grad_b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(
    "trl_type, name, overrides",
    [
        ("grpo", "grpo", {}),
        ("dr_grpo", "dr_grpo", {}),
        ("dapo", "dapo", {}),  # TRL dapo: token sum / tokens of the whole generation batch
        ("bnpo", "dapo", {}),  # TRL bnpo: token mean of the micro-batch (= step with one micro-batch)
    ],
)
def test_matches_trl_loss(trl_type, name, overrides):
    logp, old, ref, _, adv, mask = make_inputs()
    eps_high = get_algorithm(name).clip_high
    assert_same_loss_and_grad(
        trl_loss(trl_type, logp, old, ref, adv, mask, eps_high=eps_high),
        ours(name, logp, old, ref, adv, mask, **overrides),
        logp,
    )


def test_matches_trl_grpo_with_k3_kl():
    # DeepSeekMath GRPO: beta 0.04, k3 = exp(ref - logp) - (ref - logp) - 1 added per token.
    logp, old, ref, _, adv, mask = make_inputs(1)
    assert_same_loss_and_grad(
        trl_loss("grpo", logp, old, ref, adv, mask, beta=0.04),
        ours("grpo", logp, old, ref, adv, mask, kl_beta=0.04, kl_estimator="k3"),
        logp,
    )


def test_matches_trl_truncated_importance_sampling():
    # TRL's vLLM correction multiplies the PG term by a ratio it computes upstream
    # (token_truncate mode: exp(old - sampler) clamped at the cap); feed it our weight.
    logp, old, ref, sampler, adv, mask = make_inputs(2)
    w = tis_weight(old, sampler, cap=2.0) * mask
    assert_same_loss_and_grad(
        trl_loss("dr_grpo", logp, old, ref, adv, mask, is_ratio=w),
        ours("dr_grpo", logp, old, ref, adv, mask, sampler=sampler, tis_cap=2.0),
        logp,
    )


@pytest.mark.parametrize("trl_type, name", [("grpo", "grpo"), ("dr_grpo", "dr_grpo"), ("dapo", "dapo")])
def test_matches_trl_with_two_accumulation_steps(trl_type, name):
    # Two equal micro-batches of 2 responses; TRL divides each by its accumulation steps
    # (grpo, dr_grpo) or by the batch token count (dapo); we pass one step normaliser.
    logp, old, ref, _, adv, mask = make_inputs(3)
    halves = [slice(0, 2), slice(2, 4)]
    trl_total = sum(
        trl_loss(trl_type, logp[s], old[s], ref[s], adv[s], mask[s], eps_high=get_algorithm(name).clip_high,
                 grad_accum=2, num_items=mask.sum())
        for s in halves
    )
    our_total = sum(ours(name, logp[s], old[s], ref[s], adv[s], mask[s], masks_of_step=mask) for s in halves)
    assert_same_loss_and_grad(trl_total, our_total, logp)


def test_group_std_matches_trl_nanstd():
    # TRL: (R - group mean) / (nanstd(group) + 1e-4), nanstd being Bessel-corrected.
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
    grouped = rewards.view(-1, 4)
    expected = (grouped - grouped.mean(1, keepdim=True)) / (trl_utils.nanstd(grouped, dim=1).unsqueeze(1) + 1e-4)
    ours_adv = compute_advantages(rewards, 4, std_scale="group", std_unbiased=True, eps=1e-4)
    torch.testing.assert_close(ours_adv, expected.reshape(-1))
    batch_expected = (grouped - grouped.mean(1, keepdim=True)) / (trl_utils.nanstd(rewards) + 1e-4)
    torch.testing.assert_close(compute_advantages(rewards, 4, std_scale="batch", eps=1e-4), batch_expected.reshape(-1))
