"""The fused output layer + log-softmax + entropy function against plain autograd."""

import pytest
import torch

from r1zero.learner import token_logprobs as tl
from r1zero.learner.token_logprobs import token_logprobs


def _reference(h, w, b, targets, temperature):
    z = (h @ w.t() + (0 if b is None else b)) / temperature
    logp = torch.log_softmax(z, -1)
    lp = logp.gather(-1, targets[:, None]).squeeze(-1)
    ent = -(logp.exp() * logp).sum(-1)
    return lp, ent


def _inputs(k=150, d=6, v=40, bias=False, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(k, d, generator=g, dtype=dtype, requires_grad=True)
    w = torch.randn(v, d, generator=g, dtype=dtype, requires_grad=True)
    b = torch.randn(v, generator=g, dtype=dtype, requires_grad=True) if bias else None
    return h, w, b, torch.randint(0, v, (k,), generator=g)


@pytest.mark.parametrize("temperature", [1.0, 0.7])
@pytest.mark.parametrize("bias", [False, True])
def test_values_and_gradients_match_autograd(temperature, bias, monkeypatch):
    monkeypatch.setattr(tl, "ROWS_PER_CHUNK", 32)  # several chunks, a ragged last one
    h, w, b, t = _inputs(bias=bias)
    lp, ent = token_logprobs(h, w, t, bias=b, temperature=temperature, entropy_grad=True)
    ref_lp, ref_ent = _reference(h, w, b, t, temperature)
    torch.testing.assert_close(lp, ref_lp)
    torch.testing.assert_close(ent, ref_ent)
    g1, g2 = torch.randn(len(t), dtype=h.dtype), torch.randn(len(t), dtype=h.dtype)
    params = [x for x in (h, w, b) if x is not None]
    got = torch.autograd.grad((lp * g1).sum() + (ent * g2).sum(), params)
    want = torch.autograd.grad((ref_lp * g1).sum() + (ref_ent * g2).sum(), params)
    for a, e in zip(got, want):
        torch.testing.assert_close(a, e)


def test_gradcheck(monkeypatch):
    monkeypatch.setattr(tl, "OVERWRITE_LOGITS", False)  # gradcheck runs backward many times
    h, w, b, t = _inputs(k=5, d=3, v=7, bias=True)
    fn = lambda h, w, b: token_logprobs(h, w, t, bias=b, temperature=0.9, entropy_grad=True)
    assert torch.autograd.gradcheck(fn, (h, w, b))


def test_entropy_metric_carries_no_gradient_and_fp32_inputs_are_untouched():
    h, w, _, t = _inputs(dtype=torch.float32)
    lp, ent = token_logprobs(h, w, t, temperature=0.5)
    assert not ent.requires_grad and lp.requires_grad
    lp.sum().backward()  # in fp32 the chunks must be copies, not views of saved logits
    ref_lp, _ = _reference(h.detach().requires_grad_(), w, None, t, 0.5)
    torch.testing.assert_close(lp, ref_lp)


def test_bf16_inputs_give_fp32_outputs_close_to_fp32():
    h, w, _, t = _inputs(dtype=torch.float32)
    lp, ent = token_logprobs(h.bfloat16(), w.bfloat16(), t)
    assert lp.dtype == torch.float32
    ref_lp, ref_ent = _reference(h, w, None, t, 1.0)
    torch.testing.assert_close(lp, ref_lp, atol=0.1, rtol=0.05)
    with pytest.raises(TypeError, match="differ"):
        token_logprobs(h, w.bfloat16(), t)


def test_models_with_post_processed_logits_are_refused():
    from r1zero.config import ConfigError
    from r1zero.learner.attention import check_output_layer
    from r1zero.testing import tiny_model

    model, _ = tiny_model(seed=0)
    check_output_layer(model)
    model.config.final_logit_softcapping = 30.0
    with pytest.raises(ConfigError, match="final_logit_softcapping"):
        check_output_layer(model)


def test_entropy_can_be_skipped_without_changing_logprobs():
    h, w, _, t = _inputs(dtype=torch.float32)
    lp, ent = token_logprobs(h, w, t, temperature=0.8, with_entropy=False)
    assert ent is None
    torch.testing.assert_close(lp, token_logprobs(h, w, t, temperature=0.8)[0])


def test_backward_overwrites_the_saved_logits_and_refuses_a_second_backward():
    h, w, _, t = _inputs(dtype=torch.float32)
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: (saved.append(x), x)[1], lambda x: x):
        lp, _ = token_logprobs(h, w, t)
    logits = next(x for x in saved if x.shape == (len(t), w.shape[0]))
    before = logits.clone()
    lp.sum().backward(retain_graph=True)
    assert not torch.equal(logits, before)  # no second [k, V] block was allocated
    with pytest.raises(RuntimeError, match="OVERWRITE_LOGITS"):
        lp.sum().backward()
