"""PPO with a value model: GAE, the clipped value loss, explained variance (by hand), the
critic learner (micro-batch invariant, padded = packed) and token advantages reaching the
policy loss in both layouts."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch

from r1zero.config import TrainConfig
from r1zero.core.advantages import gae
from r1zero.core.algorithms import ALGORITHMS
from r1zero.core.losses import step_normalizer, value_loss
from r1zero.core.metrics import explained_variance
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)


def test_gae_with_gamma_lambda_one_is_reward_minus_value():
    v = torch.tensor([[0.2, 0.5, 0.9], [0.1, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1, 1], [1, 0, 0]])
    adv, ret = gae(v, torch.tensor([1.0, 0.0]), mask)
    torch.testing.assert_close(adv, torch.tensor([[0.8, 0.5, 0.1], [-0.1, 0.0, 0.0]]))
    torch.testing.assert_close(ret, torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]))


def test_gae_by_hand_with_discounts():
    """γ = 0.9, λ = 0.5, one response of 3 tokens, R = 1, V = (0.2, 0.4, 0.6):
    δ = (0.9·0.4 − 0.2, 0.9·0.6 − 0.4, 1 − 0.6) = (0.16, 0.14, 0.4);
    A_2 = 0.4, A_1 = 0.14 + 0.45·0.4 = 0.32, A_0 = 0.16 + 0.45·0.32 = 0.304; G = A + V."""
    v = torch.tensor([[0.2, 0.4, 0.6, 7.0]], dtype=torch.float64)  # padding value ignored
    adv, ret = gae(v, torch.tensor([1.0], dtype=torch.float64),
                   torch.tensor([[1.0, 1, 1, 0]], dtype=torch.float64), gamma=0.9, lam=0.5)
    torch.testing.assert_close(adv, torch.tensor([[0.304, 0.32, 0.4, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(ret, torch.tensor([[0.504, 0.72, 1.0, 0.0]], dtype=torch.float64))


def test_value_loss_clips_by_hand():
    """ε_v = 0.2. Token 0: V 0.5 → 1.0, G 1: unclipped err 0, clipped V 0.7 err 0.09 → the
    max is 0.09 and the gradient is cut. Token 1: V 0 → 0.1, G 1: both branches agree in
    direction; err 0.81 vs clipped (0.1) 0.81: loss ½ 0.81. token-mean over 2 tokens."""
    values = torch.tensor([[1.0, 0.1]], requires_grad=True)
    old, ret = torch.tensor([[0.5, 0.0]]), torch.tensor([[1.0, 1.0]])
    mask = torch.ones(1, 2)
    loss, stats = value_loss(values, old, ret, mask, step_normalizer(mask), "token-mean", 0.2)
    assert float(loss.detach()) == pytest.approx(0.5 * (0.09 + 0.81) / 2)
    loss.backward()
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, (0.1 - 1.0) / 2]]))
    assert float(stats["value_clip_count"]) == 1


def test_explained_variance():
    ret = torch.tensor([[1.0, 0.0, 1.0, 0.0]])
    mask = torch.ones(1, 4)
    assert explained_variance(ret, ret, mask) == 1.0
    assert explained_variance(ret - 0.5, ret, mask) == pytest.approx(1.0)  # a bias is not variance
    assert explained_variance(torch.zeros(1, 4), ret, mask) == pytest.approx(0.0)
    assert explained_variance(1 - ret, ret, mask) == pytest.approx(-3.0)


def _critic_update(model_dir, micro_batch_tokens, packed):
    from r1zero.learner.build import build_learner
    from r1zero.learner.critic import with_gae
    from r1zero.models import load_model
    from tests.test_cluster_fsdp import _sequences

    cfg = dataclasses.replace(TrainConfig(algorithm="ppo", algo=ALGORITHMS["ppo"], precision="fp32",
                                          micro_batch_tokens=micro_batch_tokens, max_new_tokens=8,
                                          packed=packed, adam_eps=1e-2),  # Adam step ~ gradient, not its sign
                              critic=dataclasses.replace(TrainConfig().critic, lr=0.05))
    _, tok = load_model(model_dir)
    critic = build_learner(cfg, model_path=model_dir, device=torch.device("cpu"), precision="fp32",
                           role="critic")
    with torch.no_grad():  # a non-zero head, so values differ per position
        critic.policy.value_head.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    seqs = [dataclasses.replace(s, advantage=float(i % 2)) for i, s in enumerate(_sequences(tok))]
    seqs, stats = with_gae(seqs, critic.values(seqs), 1.0, 1.0)
    metrics = critic.update(seqs, 0)
    return critic.policy, seqs, metrics, stats


@pytest.mark.parametrize("packed", [False, True])
def test_critic_update_is_micro_batch_invariant(tiny_dir, packed):  # noqa: F811
    big, seqs, metrics, stats = _critic_update(tiny_dir, 4096, packed)
    small, _, _, _ = _critic_update(tiny_dir, 64, packed)
    for (name, a), b in zip(big.named_parameters(), small.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    assert metrics["critic/value_loss"] > 0 and math.isfinite(stats["critic/explained_variance"])
    assert all(len(s.token_advantages) == len(s.response_ids) for s in seqs)
    # A_t = R − V_t (γ = λ = 1) and G_t = R
    s = seqs[1]
    torch.testing.assert_close(torch.tensor(s.token_advantages),
                               s.advantage - torch.tensor(s.old_values), rtol=0, atol=1e-6)
    assert s.returns == pytest.approx([s.advantage] * len(s.response_ids))


def test_padded_and_packed_critics_agree(tiny_dir):  # noqa: F811
    padded, _, m1, _ = _critic_update(tiny_dir, 4096, False)
    packed, _, m2, _ = _critic_update(tiny_dir, 4096, True)
    assert m1["critic/value_loss"] == pytest.approx(m2["critic/value_loss"], rel=1e-5)
    for (name, a), b in zip(padded.named_parameters(), packed.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5, msg=name)


def test_token_advantages_are_aligned_in_both_layouts():
    from r1zero.learner.batching import TrainSequence, collate, collate_packed

    seqs = [TrainSequence([1, 2, 3], [4, 5], 1.0, token_advantages=[0.5, -0.5], returns=[1.0, 1.0],
                          old_values=[0.5, 1.5]),
            TrainSequence([1, 2, 3], [6, 7, 8], 0.0, token_advantages=[0.1, 0.2, 0.3],
                          returns=[0.0, 0.0, 0.0], old_values=[-0.1, -0.2, -0.3])]
    padded = collate(seqs, [0, 1], pad_id=0)
    packed = collate_packed(seqs, [0, 1])
    for mb in (padded, packed):
        m = mb.response_mask.bool()
        assert mb.advantages[m].tolist() == pytest.approx([0.5, -0.5, 0.1, 0.2, 0.3])
        assert mb.old_values[m].tolist() == pytest.approx([0.5, 1.5, -0.1, -0.2, -0.3])
        assert mb.returns[m].tolist() == pytest.approx([1.0, 1.0, 0.0, 0.0, 0.0])


def test_ppo_run_saves_and_resumes_its_critic(tiny_dir, tmp_path):  # noqa: F811
    from r1zero.train.trainer import train

    run = tmp_path / "run"
    kw = dict(algorithm="ppo", eval_every=0, save_every=1)
    train(_cfg(tiny_dir, run, steps=2, **kw))
    assert (run / "checkpoints" / "step_000002" / "critic" / "model.safetensors").exists()
    train(dataclasses.replace(_cfg(tiny_dir, run, steps=3, **kw), resume=str(run)))
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert {"critic/value_loss", "critic/explained_variance", "critic/value_clip_frac"} <= set(rows[-1])
