"""The MLP and RMSNorm rewrites that keep fewer activations (learner/lean_layers.py): same
values and gradients as the blocks' own forwards, fewer saved tensors, and blocks of
another layout left alone."""

import copy

import pytest
import torch

from r1zero.learner.lean_layers import lean_activations
from r1zero.testing import tiny_model


def _saved_bytes(fn) -> tuple[int, object]:
    seen = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    return sum(seen.values()), out


def _loss(model, ids):
    return model(input_ids=ids).logits.float().pow(2).mean()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
def test_same_values_and_gradients_as_the_plain_model(dtype):
    plain, _ = tiny_model(3, dtype=dtype, num_layers=2)
    lean = copy.deepcopy(plain)
    # 2 MLPs + 5 norms (2 per layer + the final one); bf16 norms are switched too but run
    # their own forward on bf16 inputs
    assert lean_activations(lean) == 7
    ids = torch.randint(100, 1000, (2, 17), generator=torch.Generator().manual_seed(0))
    for m in (plain, lean):
        m.train()
        _loss(m, ids).backward()
    torch.testing.assert_close(_loss(lean, ids), _loss(plain, ids))
    tol = dict(rtol=1e-5, atol=1e-7) if dtype == torch.float32 else {}
    for (name, a), (_, b) in zip(plain.named_parameters(), lean.named_parameters()):
        if dtype == torch.bfloat16:  # the bf16 norms run their own forward: same kernels
            assert torch.equal(a.grad, b.grad), name
        else:
            torch.testing.assert_close(b.grad, a.grad, **tol, msg=name)


def test_the_mlp_is_bit_for_bit_the_plain_one():
    plain, _ = tiny_model(1)
    lean = copy.deepcopy(plain)
    for m in lean.modules():  # switch the MLPs only
        if hasattr(m, "gate_proj"):
            lean_activations(m)
    ids = torch.randint(100, 1000, (2, 9), generator=torch.Generator().manual_seed(1))
    _loss(plain, ids).backward()
    _loss(lean, ids).backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), lean.named_parameters()):
        assert torch.equal(a.grad, b.grad), name


def test_fewer_bytes_are_kept_for_backward():
    plain, _ = tiny_model(0, hidden_size=64, intermediate_size=256)
    lean = copy.deepcopy(plain)
    lean_activations(lean)
    ids = torch.randint(100, 1000, (1, 64), generator=torch.Generator().manual_seed(2))
    before, _ = _saved_bytes(lambda: _loss(plain, ids))
    after, _ = _saved_bytes(lambda: _loss(lean, ids))
    # per layer and token: silu(g) and the product (2 x 256 floats) and one 64-wide norm
    # output for each of the 2 norms are no longer kept
    assert before - after >= 2 * 64 * 4 * (2 * 256 + 2 * 64)


def test_no_grad_forward_and_generation_are_unchanged():
    plain, tok = tiny_model(2)
    lean = copy.deepcopy(plain)
    lean_activations(lean)
    ids = tok("What is 2 + 3?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(lean(input_ids=ids).logits, plain(input_ids=ids).logits)
    kw = dict(max_new_tokens=6, do_sample=False)
    assert torch.equal(lean.generate(ids, **kw), plain.generate(ids, **kw))


def test_blocks_of_another_layout_are_left_alone():
    class GeluMLP(torch.nn.Module):  # the parts' names, another activation
        def __init__(self):
            super().__init__()
            self.gate_proj, self.up_proj, self.down_proj = (torch.nn.Linear(8, 16), torch.nn.Linear(8, 16),
                                                            torch.nn.Linear(16, 8))
            self.act_fn = torch.nn.GELU()

        def forward(self, x):
            return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))

    class OffsetRMSNorm(torch.nn.Module):  # Gemma-style (1 + w): the check refuses it
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.randn(8))
            self.variance_epsilon = 1e-6

        def forward(self, x):
            r = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
            return (1 + self.weight) * (x * r)

    model = torch.nn.Sequential(GeluMLP(), OffsetRMSNorm())
    assert lean_activations(model) == 0
    assert all("forward" not in vars(m) for m in model.modules())


def test_a_lora_wrapped_down_projection_falls_back_to_the_plain_block():
    plain, _ = tiny_model(4)
    lean = copy.deepcopy(plain)
    lean_activations(lean)
    mlp = lean.model.layers[0].mlp

    class Wrapped(torch.nn.Module):  # what peft puts in place of a Linear
        def __init__(self, base):
            super().__init__()
            self.base = base

        def forward(self, x):
            return self.base(x) * 2

    mlp.down_proj = Wrapped(mlp.down_proj)
    x = torch.randn(3, 64)
    torch.testing.assert_close(mlp(x), type(mlp).forward(mlp, x))


def test_under_autocast_the_blocks_run_their_own_forward():
    """``--precision bf16-autocast``: fp32 weights, bf16 matmuls; the rewrites step aside
    (their backward would not see forward's casts) and training gives the plain gradients."""
    plain, _ = tiny_model(5)
    lean = copy.deepcopy(plain)
    lean_activations(lean)
    ids = torch.randint(100, 1000, (2, 9), generator=torch.Generator().manual_seed(3))
    for m in (plain, lean):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = _loss(m, ids)
        loss.backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), lean.named_parameters()):
        assert torch.equal(a.grad, b.grad), name
