"""bf16 compute weights with an fp32 master copy (r1zero.learner.precision)."""

import torch

from r1zero.learner.precision import compute_model, copy_weights, fold_gradients
from r1zero.testing import tiny_model


def _loss(model, ids):
    return model(input_ids=ids, labels=ids).loss


def test_bf16_copy_keeps_tied_weights_and_lines_up():
    policy, _ = tiny_model(seed=0)
    policy.config.tie_word_embeddings = True
    policy.tie_weights()
    copy = compute_model(policy, "bf16")
    assert copy is not policy and compute_model(policy, "fp32") is policy
    assert copy.get_input_embeddings().weight is copy.get_output_embeddings().weight
    assert [n for n, _ in copy.named_parameters()] == [n for n, _ in policy.named_parameters()]
    assert all(p.dtype == torch.bfloat16 for p in copy.parameters())


def test_folded_bf16_gradients_match_fp32_and_accumulate_in_fp32():
    policy, _ = tiny_model(seed=0)
    copy = compute_model(policy, "bf16")
    ids = torch.randint(0, policy.config.vocab_size, (4, 12), generator=torch.Generator().manual_seed(1))
    _loss(policy, ids).backward()
    exact = [p.grad.clone() for p in policy.parameters()]
    policy.zero_grad(set_to_none=True)
    for half in (ids[:2], ids[2:]):  # two micro-batches, each half the mean
        (_loss(copy, half) / 2).backward()
        fold_gradients(copy, policy)
        assert all(p.grad is None for p in copy.parameters())
    got = [p.grad for p in policy.parameters()]
    assert all(g.dtype == torch.float32 for g in got)
    flat_exact, flat_got = torch.cat([g.flatten() for g in exact]), torch.cat([g.flatten() for g in got])
    cos = torch.nn.functional.cosine_similarity(flat_exact, flat_got, dim=0)
    assert cos > 0.99, float(cos)


def test_copy_weights_rounds_the_master_into_the_copy():
    policy, _ = tiny_model(seed=0)
    copy = compute_model(policy, "bf16")
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(0.5)
    copy_weights(policy, copy)
    for c, m in zip(copy.parameters(), policy.parameters()):
        assert torch.equal(c, m.to(torch.bfloat16))
