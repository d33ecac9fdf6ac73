"""The masked loss of multi-turn episodes, for every algorithm of core/algorithms.py: a
two-turn episode (model turn, environment turn, model turn) trained through the learner
(`TrainSequence.loss_mask`, micro-batched, padded rows and packed) has exactly the gradient
of the same tokens trained as one response whose environment tokens have loss weight 0,
computed here by hand: a plain forward pass over prompt + response, log-softmax, the mask
zeroed on the environment's tokens and padding, the step's normaliser counting only the
trained tokens, and the core loss functions (policy_loss; DPO's pair loss; PPO's value loss).
Negatives: training the environment's tokens too, or dropping them from the context, gives
another gradient (they are attended to, never trained on)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

from r1zero.config import TrainConfig
from r1zero.core import losses
from r1zero.core.algorithms import ALGORITHMS
from r1zero.core.preferences import dpo_loss
from r1zero.learner import local
from r1zero.learner.batching import TrainSequence
from r1zero.testing import tiny_model
from tests.helpers import local_learner

BUDGET = 16  # max_new_tokens: Dr. GRPO's constant C


@pytest.fixture(scope="module")
def base():
    """One tiny model and its tokenizer; every use takes a fresh copy of the model."""
    return tiny_model(seed=0)


def fresh(base):
    return copy.deepcopy(base[0])


def _episodes(tok, dpo: bool = False) -> list[TrainSequence]:
    """Two two-turn episodes and two one-turn responses, mixed advantages (DPO: two pairs,
    each an episode against a one-turn response). Environment text tokenised once."""
    g = torch.Generator().manual_seed(0)
    prompts = [tok("What is 1 + 2?")["input_ids"], tok("Name a prime:")["input_ids"]]
    env = tok("\n```output\n3\n```\n", add_special_tokens=False)["input_ids"]

    def rand(n):
        return torch.randint(5, 200, (n,), generator=g).tolist()

    two_turn = []
    for m1, m2 in ((3, 2), (2, 4)):
        resp = rand(m1) + env + rand(m2)
        two_turn.append((resp, [1] * m1 + [0] * len(env) + [1] * m2))
    one_turn = [(rand(4), None), (rand(5), None)]
    rows = [two_turn[0], one_turn[0], two_turn[1], one_turn[1]]
    advs = [1.0, -1.0, 1.0, -1.0] if dpo else [1.0, -0.5, -1.25, 0.75]
    return [TrainSequence(prompts[i // 2], r, a, None, pair=i // 2 if dpo else -1, loss_mask=m)
            for i, ((r, m), a) in enumerate(zip(rows, advs))]


def _cfg(name: str, packed: bool) -> TrainConfig:
    # micro_batch_tokens 48: several micro-batches per step (accumulation is exact too).
    return TrainConfig(algorithm=name, algo=ALGORITHMS[name], precision="fp32", packed=packed,
                       max_new_tokens=BUDGET, micro_batch_tokens=48, seed=0)


def _capture(monkeypatch) -> list[dict[str, torch.Tensor]]:
    """Record each optimizer step's gradients (policy first, then PPO's critic) instead of
    stepping, so the learner's gradient is compared, not Adam's move."""
    seen: list[dict[str, torch.Tensor]] = []

    def step(lrn, zero_grad=False):
        seen.append({n: p.grad.detach().clone() for n, p in lrn.policy.named_parameters() if p.grad is not None})
        lrn.optimizer.zero_grad(set_to_none=True)
        lrn.optim_steps += 1
        return 0.0

    monkeypatch.setattr(local, "optimizer_step", step)
    return seen


# ----------------------------------------------------------------------------- by hand
def _rows(seqs: list[TrainSequence], per_seq) -> torch.Tensor:
    """``[N, width]``: each sequence's response-aligned row, right-padded with 0."""
    width = max(len(s.response_ids) for s in seqs)
    return torch.stack([F.pad(per_seq(s), (0, width - len(s.response_ids))) for s in seqs])


def _hidden_rows(backbone, seqs):
    """Per sequence, the decoder's states ``[len(response), d]`` that predict its response."""
    out = []
    for s in seqs:
        ids = torch.tensor([s.prompt_ids + s.response_ids])
        h = backbone(input_ids=ids).last_hidden_state[0]  # [L, d]
        p = len(s.prompt_ids)
        out.append(h[p - 1: p - 1 + len(s.response_ids)])
    return out


def _logprob_rows(model, seqs, temperature=1.0) -> torch.Tensor:
    """``[N, width]`` log π(o_t) of every response token (environment tokens included),
    from a plain forward pass over the whole sequence."""
    hs = iter(_hidden_rows(model.get_decoder(), seqs))

    def one(s):
        logits = model.get_output_embeddings()(next(hs)) / temperature  # [o, V]
        return F.log_softmax(logits, -1).gather(1, torch.tensor(s.response_ids)[:, None])[:, 0]

    return _rows(seqs, one)


def _norm(seqs, mask) -> losses.LossNormalizer:
    return losses.LossNormalizer(float(len(seqs)), float(mask.sum()), float(BUDGET))


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def reference_policy(model, seqs, algo, token_adv=None, ref_model=None) -> dict[str, torch.Tensor]:
    """The gradient of the step loss over the same tokens as single responses, the
    environment's tokens weighted 0."""
    model.zero_grad(set_to_none=True)
    lp = _logprob_rows(model, seqs)  # [N, T]
    mask = _rows(seqs, lambda s: s.mask_row())  # [N, T]: 0 on environment tokens and padding
    if algo.objective == "dpo":  # mean over pairs of softplus(-z), s = sum of trained log-probs
        s = (lp * mask).sum(1)
        q = (_logprob_rows(ref_model, seqs) * mask).sum(1).detach() if algo.dpo_reference else None
        c, r = [i for i, x in enumerate(seqs) if x.advantage > 0], [i for i, x in enumerate(seqs) if x.advantage < 0]
        loss = dpo_loss(s[c], s[r], None if q is None else q[c], None if q is None else q[r], algo.dpo_beta)[0].mean()
    else:
        adv = token_adv if token_adv is not None else torch.tensor([s.advantage for s in seqs])
        loss, _ = losses.policy_loss(lp, None, adv, mask, _norm(seqs, mask), algo)
    loss.backward()
    return _grads(model)


def reference_critic(critic, seqs, algo) -> dict[str, torch.Tensor]:
    """PPO's critic: the clipped value loss on the trained tokens; at its zero-initialised
    head V = 0, so the GAE targets (γ = λ = 1) are G_t = R on every trained token."""
    critic.zero_grad(set_to_none=True)
    hs = iter(_hidden_rows(critic.backbone, seqs))
    values = _rows(seqs, lambda s: critic.value_head(next(hs)).squeeze(-1))  # [N, T]
    mask = _rows(seqs, lambda s: s.mask_row())
    returns = torch.tensor([s.advantage for s in seqs])[:, None] * mask
    loss, _ = losses.value_loss(values, torch.zeros_like(values), returns, mask, _norm(seqs, mask),
                                algo.aggregation, algo.value_clip)
    loss.backward()
    return _grads(critic)


def _gap(a: dict, b: dict) -> float:
    """Largest difference of two gradients, relative to the largest entry of ``b``."""
    scale = max(float(v.abs().max()) for v in b.values())
    return max(float((a[n] - b[n]).abs().max()) for n in b) / scale


def _assert_same(got: dict, want: dict, what: str) -> None:
    """Equal up to float summation order (the learner's fused kernels, padding, packing):
    every entry within 1e-5 of the gradient's largest entry."""
    assert got.keys() == want.keys(), what
    assert max(float(w.abs().max()) for w in want.values()) > 1e-6, f"{what}: no gradient at all"
    assert _gap(got, want) < 1e-5, (what, _gap(got, want))


# ----------------------------------------------------------------------------- the tests
def _learner_grads(base, name, packed, seqs, monkeypatch):
    """The learner's gradients for ``seqs`` (policy, and PPO's critic)."""
    from r1zero.learner.actor_critic import WithCritic
    from r1zero.learner.attention import set_attention
    from r1zero.learner.critic import ValueModel

    cfg = _cfg(name, packed)
    model, tok = fresh(base), base[1]
    set_attention(model, "auto", torch.device("cpu"), packed)  # the segment kernel when packed
    ref = copy.deepcopy(model).eval() if cfg.algo.needs_reference else None
    seen = _capture(monkeypatch)
    policy = local_learner(cfg, model, ref=ref, packed=packed, pad=tok.pad_token_id)
    if cfg.algo.needs_critic:
        lm = fresh(base)
        set_attention(lm, "auto", torch.device("cpu"), packed)
        critic = local_learner(cfg, ValueModel(lm), packed=packed, pad=tok.pad_token_id, role="critic")
        WithCritic(policy, critic, cfg.algo.gae_gamma, cfg.algo.gae_lambda).update(seqs, step=0)
    else:
        policy.update(seqs, step=0)
    return seen


def _layouts():
    """Every algorithm in the default layout (packed); padded rows too for two of them by
    default, for the others in the slow run."""
    for name in sorted(ALGORITHMS):
        yield pytest.param(name, True, id=f"{name}-packed")
        slow = () if name in ("grpo", "ppo") else (pytest.mark.slow,)
        yield pytest.param(name, False, id=f"{name}-padded", marks=slow)


@pytest.mark.parametrize("name,packed", list(_layouts()))
def test_two_turn_episode_gradient_equals_masked_single_response(base, name, packed, monkeypatch):
    from r1zero.learner.critic import ValueModel

    algo = ALGORITHMS[name]
    seqs = _episodes(base[1], dpo=algo.objective == "dpo")
    seen = _learner_grads(base, name, packed, seqs, monkeypatch)
    token_adv = None
    if algo.needs_critic:  # A_t = R - V(s_t) = R on trained tokens (zero-initialised head)
        token_adv = torch.tensor([s.advantage for s in seqs])[:, None] * _rows(seqs, lambda s: s.mask_row())
    want = reference_policy(fresh(base), seqs, algo, token_adv, ref_model=fresh(base))
    assert len(seen) == (2 if algo.needs_critic else 1)
    _assert_same(seen[0], want, f"{name} policy")
    if algo.needs_critic:
        _assert_same(seen[1], reference_critic(ValueModel(fresh(base)), seqs, algo), f"{name} critic")


@pytest.mark.parametrize("name", ["grpo", "dr_grpo", "dapo"])
def test_the_holes_matter(base, name, monkeypatch):
    """Negatives: training the environment's tokens as well, or leaving them out of the
    context, changes the gradient; so the test above could fail."""
    algo = ALGORITHMS[name]
    seqs = _episodes(base[1])
    masked = _learner_grads(base, name, True, seqs, monkeypatch)[0]
    unmasked = reference_policy(fresh(base), [dataclasses.replace(s, loss_mask=None) for s in seqs], algo)
    env_len = seqs[0].loss_mask.count(0)
    dropped = [dataclasses.replace(s, response_ids=s.response_ids[:3] + s.response_ids[3 + env_len:],
                                   loss_mask=None) if i == 0 else s for i, s in enumerate(seqs)]
    without_env = reference_policy(fresh(base), dropped, algo)
    for other, what in ((unmasked, "environment tokens trained"), (without_env, "environment tokens dropped")):
        assert _gap(masked, other) > 1e-2, what  # far above the 1e-5 the equality allows


def test_loss_mask_must_match_the_response():
    with pytest.raises(ValueError, match="loss_mask has 2 entries for 3 response tokens"):
        TrainSequence([1, 2], [3, 4, 5], 1.0, loss_mask=[1, 0])
    s = TrainSequence([1, 2], [3, 4, 5, 6], 1.0, loss_mask=[1, 0, 0, 1])
    assert s.trained_tokens == 2 and TrainSequence([1], [3, 4], 1.0).trained_tokens == 2
