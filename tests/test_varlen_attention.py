"""The GPU path of packed micro-batches, checked on CPU: the FlexAttention mask rule from
per-token ids equals the segment plan (itself tested against padded rows), the block mask
built without an [N, N] mask equals FlexAttention's own, and eager FlexAttention (forward
only: torch has no FlexAttention backward on CPU) gives the segment kernel's outputs and
the padded rows' log-probs. Also the segment kernel's own CPU path: its autograd Function
(probabilities recomputed in backward) against plain autograd."""

import random
from types import SimpleNamespace

import pytest
import torch

from r1zero.config import ConfigError
from r1zero.learner import segment_attention, varlen_attention
from r1zero.learner.batching import TrainSequence, collate_packed, make_micro_batches

flex_attention = pytest.importorskip("torch.nn.attention.flex_attention")


def _layout(seed: int, vocab: int = 200) -> list[TrainSequence]:
    """2-4 prompt groups of 1-4 responses of 1-9 tokens; prompts of 1-8 tokens (a one-token
    prompt has no shared prefix), one pair of prompts sharing a prefix but not its last
    token. Lengths differ, so the segment plan pads queries and keys."""
    rng = random.Random(seed)
    seqs = []
    for g in range(rng.randint(2, 4)):
        prompt = [rng.randrange(5, vocab) for _ in range(rng.choice([1, 3, 5, 8]))]
        prompts = [prompt]
        if g == 0 and len(prompt) > 1:
            prompts.append(prompt[:-1] + [prompt[-1] + 1])
        for p in prompts:
            for _ in range(rng.randint(1, 4)):
                response = [rng.randrange(5, vocab) for _ in range(rng.randint(1, 9))]
                seqs.append(TrainSequence(p, response, rng.choice([-1.0, 1.0])))
    return seqs


def _packed(seed: int):
    seqs = _layout(seed)
    return collate_packed(seqs, list(range(len(seqs)))).packed


def _segment_mask_flat(seg, n: int) -> torch.Tensor:
    """The segment plan's ``mask [M, Lq, Lk]`` re-expressed over flat tokens ``[N, N]``:
    row i = the mask row of token i's query slot, scattered onto its key slots' tokens."""
    m, lq = seg.q_index.shape
    slot = seg.gather_back  # [N] slot of each token in M*Lq order
    rows = seg.mask.view(m * lq, -1)[slot].int()  # [N, Lk]
    keys = seg.k_index[slot // lq]  # [N, Lk] flat token of each key slot
    # Padding key slots point at token 0 with False: sum, so they never hide a True.
    return torch.zeros(n, n, dtype=torch.int).scatter_add_(1, keys, rows) > 0


def _rule_dense(pk) -> torch.Tensor:
    n = pk.group_ids.numel()
    idx = torch.arange(n)
    mask_mod = varlen_attention.packed_mask_mod(pk.group_ids, pk.branch_ids)
    return mask_mod(0, 0, idx[:, None], idx[None, :])  # [N, N]


@pytest.mark.parametrize("seed", range(8))
def test_mask_mod_equals_the_segment_plan(seed):
    pk = _packed(seed)
    n = pk.group_ids.numel()
    want = _segment_mask_flat(pk.segments, n)
    assert torch.equal(_rule_dense(pk), want)
    # FlexAttention's own dense expansion of the mask_mod (vmap over index grids) agrees.
    mod = varlen_attention.packed_mask_mod(pk.group_ids, pk.branch_ids)
    assert torch.equal(flex_attention.create_mask(mod, 1, 1, n, n, device="cpu")[0, 0], want)


def test_mask_rule_by_hand():
    seqs = [TrainSequence([1, 2, 3], [4, 5], 1.0), TrainSequence([1, 2, 3], [6], -1.0),
            TrainSequence([7, 8], [9, 9], 0.5), TrainSequence([5], [6], 0.5)]
    pk = collate_packed(seqs, [0, 1, 2, 3]).packed
    # flat: prefix [1,2] | prefix [7] | [3,4,5] | [3,6] | [8,9,9] | [5,6]
    #       0 1          | 2          | 3 4 5   | 6 7   | 8 9 10   | 11 12
    assert pk.input_ids.tolist() == [[1, 2, 7, 3, 4, 5, 3, 6, 8, 9, 9, 5, 6]]
    assert pk.group_ids.tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, 5, 5]
    assert pk.branch_ids.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4]
    dense = _rule_dense(pk).int()
    assert dense[4].tolist() == [1, 1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]  # prompt + own past
    assert dense[7].tolist() == [1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]  # not sibling 3..5
    assert dense[1].tolist() == [1, 1] + [0] * 11  # a prefix token: causal over its prefix
    assert dense[12].tolist() == [0] * 11 + [1, 1]  # no prefix: only itself
    assert not dense[4, 6] and not dense[6, 4]  # sibling responses never see each other
    assert not dense[3, 4] and not dense[0, 1]  # a later token is masked
    assert not dense[9, 0] and not dense[4, 2]  # another group's prompt is masked


@pytest.mark.parametrize("block_size", [2, 4, 8, 128])
@pytest.mark.parametrize("seed", range(4))
def test_block_mask_equals_create_block_mask(seed, block_size, monkeypatch):
    """Tiles built slab by slab equal FlexAttention's from the dense mask; small blocks
    give empty, partial and full tiles and a padded last tile."""
    monkeypatch.setattr(varlen_attention, "MAX_SLAB_ELEMENTS", 64)  # several slabs
    pk = _packed(seed)
    n = pk.group_ids.numel()
    got = varlen_attention.packed_block_mask(pk.group_ids, pk.branch_ids, block_size)
    want = flex_attention.create_block_mask(
        varlen_attention.packed_mask_mod(pk.group_ids, pk.branch_ids), 1, 1, n, n,
        device="cpu", BLOCK_SIZE=block_size)
    assert got.shape == want.shape == (1, 1, n, n)
    for count, cols in (("kv_num_blocks", "kv_indices"), ("full_kv_num_blocks", "full_kv_indices"),
                        ("q_num_blocks", "q_indices")):
        assert torch.equal(getattr(got, count), getattr(want, count)), count
        got_cols, want_cols = getattr(got, cols)[0, 0], getattr(want, cols)[0, 0]  # [B, B]
        for row, k in enumerate(getattr(want, count)[0, 0].tolist()):
            assert torch.equal(got_cols[row, :k], want_cols[row, :k]), (cols, row)
    assert torch.equal(got.to_dense(), want.to_dense())


class _Attn(torch.nn.Module):
    """What the kernels read of the attention module (``training``)."""


@pytest.mark.parametrize("branch", ["matmul", "sdpa"])
@pytest.mark.parametrize("seed", range(3))
def test_flex_gives_the_segment_kernel_output(seed, branch, monkeypatch):
    if branch == "sdpa":  # the segment kernel's GPU branch (SDPA, enable_gqa), on CPU
        monkeypatch.setattr(segment_attention, "MATMUL_DEVICES", ())
    pk = _packed(seed)
    n, heads, kv_heads, dim = pk.group_ids.numel(), 4, 2, 16
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(1, heads, n, dim, generator=gen)
    k = torch.randn(1, kv_heads, n, dim, generator=gen)
    v = torch.randn(1, kv_heads, n, dim, generator=gen)
    module = _Attn().eval()
    seg = pk.segments
    want, _ = segment_attention.segment_attention(module, q, k, v, seg.mask[:, None], scaling=0.3,
                                                  **{segment_attention.KWARG: seg})
    block_mask = varlen_attention.packed_block_mask(pk.group_ids, pk.branch_ids, 4)
    got, _ = varlen_attention.varlen_attention(module, q, k, v, block_mask, scaling=0.3)
    assert got.shape == want.shape == (1, n, heads, dim)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def _plain_autograd(mp):
    """Route the kernel's dropout-free call to plain autograd (its dropout path at p=0)."""
    def plain(query, key, value, seg, scale):
        qg, k, v = segment_attention.regroup(query, key, value, seg, scale)
        return segment_attention.matmul_attention(qg, k, v, seg.bias, 0.0)

    mp.setattr(segment_attention.SegmentAttention, "apply", plain)


def _values_and_grads(seg, q, k, v, w):
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    out, _ = segment_attention.segment_attention(_Attn().eval(), *leaves, None, scaling=0.3,
                                                 **{segment_attention.KWARG: seg})
    (out.float() * w).sum().backward()
    return [out.detach()] + [t.grad for t in leaves]


HEADS = [(6, 2), (6, 3), (4, 4)]  # grouped-query (G = 3, 2) and plain multi-head
TOL = {torch.float64: dict(rtol=1e-10, atol=1e-10), torch.float32: dict(rtol=1e-5, atol=1e-5),
       torch.bfloat16: dict(rtol=2e-2, atol=2e-2)}


@pytest.mark.parametrize("heads,kv_heads", HEADS)
@pytest.mark.parametrize("dtype", list(TOL))
@pytest.mark.parametrize("seed", range(3))
def test_matmul_function_gives_plain_autograds_values_and_gradients(seed, dtype, heads, kv_heads,
                                                                   monkeypatch):
    """The CPU path's Function (P recomputed in backward) against plain autograd of the same
    formula, through the whole kernel: outputs and the gradients of query, key and value.
    The layouts pad query and key slots (their outputs are dropped)."""
    pk = _packed(seed)
    seg = pk.segments
    n, dim = pk.group_ids.numel(), 16
    assert seg.q_index.numel() > n  # padding query slots
    gen = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(1, h, n, dim, generator=gen, dtype=torch.float64).to(dtype)
               for h in (heads, kv_heads, kv_heads))
    w = torch.randn(1, n, heads, dim, generator=gen)
    got = _values_and_grads(seg, q, k, v, w)
    with monkeypatch.context() as mp:
        _plain_autograd(mp)
        want = _values_and_grads(seg, q, k, v, w)
    for name, a, b in zip(["out", "query", "key", "value"], got, want):
        assert a.dtype == dtype and torch.isfinite(a).all(), name
        torch.testing.assert_close(a, b, **TOL[dtype], msg=name)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_matmul_function_on_fully_masked_rows(dtype):
    """Rows whose bias is all the dtype's lowest value (the segment plan makes none: its
    padding queries see one key) give plain autograd's finite values and gradients, with a
    gradient flowing into every row."""
    m, kv_heads, g, lq, lk, dim = 3, 2, 3, 5, 7, 8
    mask = torch.rand(m, lq, lk, generator=torch.Generator().manual_seed(0)) < 0.6
    mask[:, -2:] = False  # two fully masked query rows per segment
    bias = torch.zeros(m, lq, lk).masked_fill_(~mask, float("-inf"))[:, None, None]

    def bias_of(dt):
        return bias.to(dt).clamp_(min=torch.finfo(dt).min)

    # A plan by hand: segment i's query slots are flat tokens i*Lq.., its key slots i*Lk..
    n = m * lk
    seg = SimpleNamespace(q_index=torch.arange(m * lq).view(m, lq),
                          k_index=torch.arange(n).view(m, lk), bias=bias_of)
    gen = torch.Generator().manual_seed(1)
    inputs = [torch.randn(1, heads, n, dim, generator=gen).to(dtype)
              for heads in (kv_heads * g, kv_heads, kv_heads)]
    grad_out = torch.randn(m, kv_heads, g * lq, dim, generator=gen).to(dtype)
    results = []
    for fn in (segment_attention.SegmentAttention.apply,
               lambda q, k, v, seg, scale: segment_attention.matmul_attention(
                   *segment_attention.regroup(q, k, v, seg, scale), seg.bias, 0.0)):
        leaves = [t.clone().requires_grad_() for t in inputs]
        out = fn(*leaves, seg, 0.3)
        out.backward(grad_out)
        results.append([out.detach()] + [t.grad for t in leaves])
    for a, b in zip(*results):
        assert torch.isfinite(a).all()
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_matmul_function_keeps_no_probabilities(monkeypatch):
    """What autograd keeps of the CPU path holds no [M, Hkv, G, Lq, Lk] block; plain autograd
    (the control) keeps it."""
    pk = _packed(0)
    seg = pk.segments
    n, heads, kv_heads, dim = pk.group_ids.numel(), 6, 2, 16
    (m, lq), lk = seg.q_index.shape, seg.k_index.shape[1]
    probs = m * heads * lq * lk  # = M * Hkv * G * Lq * Lk
    assert lk != dim  # no other saved tensor can have that size
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, h, n, dim, generator=gen).requires_grad_()
               for h in (heads, kv_heads, kv_heads))

    def saved_sizes() -> list[int]:
        sizes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: (sizes.append(t.numel()), t)[1],
                                                      lambda t: t):
            segment_attention.segment_attention(_Attn().eval(), q, k, v, None, scaling=0.3,
                                                **{segment_attention.KWARG: seg})
        return sizes

    assert probs not in saved_sizes()
    with monkeypatch.context() as mp:
        _plain_autograd(mp)
        assert probs in saved_sizes()


def test_matmul_function_keeps_only_the_compact_inputs(monkeypatch):
    """What autograd keeps of the CPU path is the compact query, key and value and small
    index tensors: no padded, per-segment [M, ..., Lq or Lk, D] copies (a shared prompt's
    keys copied into each of its responses' segments). Plain autograd (the control) keeps
    more."""
    prompt = list(range(5, 45))
    seqs = [TrainSequence(prompt, [50 + i] * (2 + 3 * i), 1.0) for i in range(5)]
    seqs.append(TrainSequence([7, 8, 9], [60, 61], -1.0))
    pk = collate_packed(seqs, list(range(len(seqs)))).packed
    seg = pk.segments
    n, heads, kv_heads, dim = pk.group_ids.numel(), 6, 2, 16
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, h, n, dim, generator=gen).requires_grad_()
               for h in (heads, kv_heads, kv_heads))
    compact = sum(t.nbytes for t in (q, k, v))
    index = sum(t.nbytes for t in (seg.q_index, seg.k_index, seg.gather_back))
    assert seg.k_index.numel() > 2 * n  # the prompt's keys are copied into many segments

    def saved_bytes() -> int:
        storages = {}

        def pack(t):
            storage = t.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            segment_attention.segment_attention(_Attn().eval(), q, k, v, None, scaling=0.3,
                                                **{segment_attention.KWARG: seg})
        return sum(storages.values())

    assert compact <= saved_bytes() <= compact + index
    with monkeypatch.context() as mp:
        _plain_autograd(mp)
        assert saved_bytes() > compact + index


def test_sdpa_branch_shares_kv_heads_without_repeating(monkeypatch):
    """Off CUDA the SDPA branch passes enable_gqa and the grouped K/V as they are."""
    calls = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        calls.append((q.shape[1], k.shape[1], kw["enable_gqa"]))
        return real(q, k, v, **kw)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    q, k = torch.randn(3, 6, 5, 8), torch.randn(3, 2, 5, 8)
    mask = torch.ones(3, 1, 5, 5, dtype=torch.bool).tril()
    out = segment_attention.sdpa_grouped(q, k, k, mask, 0.0, 0.5)
    assert calls == [(6, 2, True)]
    ref = real(q, k.repeat_interleave(3, 1), k.repeat_interleave(3, 1), attn_mask=mask, scale=0.5)
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("precision", ["fp32", "bf16-autocast"])
def test_flex_logprobs_equal_padded_rows(precision):
    """A tiny Llama's packed micro-batches through eager FlexAttention give the log-probs
    and entropies of padded full rows, and never build the dense segment plan."""
    from r1zero.learner.attention import set_attention
    from r1zero.learner.logprobs import response_logprobs
    from r1zero.testing import tiny_model

    model, tok = tiny_model(seed=0)
    seqs = [s for seed in range(3) for s in _layout(seed, vocab=200)]

    def run(packed: bool):
        out = {}
        for mb in make_micro_batches(seqs, token_budget=64, pad_id=tok.pad_token_id, packed=packed):
            with torch.no_grad():
                lp, ent = response_logprobs(model, mb, temperature=0.9, with_entropy=True,
                                            precision=precision)
            if packed:
                assert mb.packed._segments is None  # FlexAttention needed only the ids
            for r, i in enumerate(mb.index):
                keep = mb.response_mask[r].bool()
                out[i] = (lp[r][keep], ent[r][keep])
        return out

    set_attention(model, "auto", torch.device("cpu"), packed=False)
    padded = run(False)
    varlen_attention.register()  # set_attention refuses it on CPU (no backward there)
    model.set_attn_implementation(varlen_attention.NAME)
    flex = run(True)
    assert sorted(flex) == sorted(padded) == list(range(len(seqs)))
    tol = dict(rtol=0, atol=1e-5) if precision == "fp32" else dict(rtol=0, atol=0.05)
    for i in padded:
        torch.testing.assert_close(flex[i][0], padded[i][0], **tol)
        torch.testing.assert_close(flex[i][1], padded[i][1], **tol)


def test_flex_kernel_falls_back_to_sdpa_without_a_block_mask():
    from r1zero.testing import tiny_model

    model, _ = tiny_model(seed=0)
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    want = model(input_ids=ids, attention_mask=mask).logits
    varlen_attention.register()
    model.set_attn_implementation(varlen_attention.NAME)
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, want)


def test_kernel_choice_rules(monkeypatch):
    from r1zero.learner.attention import packed_kernel, packed_rows, set_attention
    from r1zero.testing import tiny_model

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    # auto: FlexAttention where it trains (CUDA), the segment kernel elsewhere.
    assert packed_kernel(cpu) == segment_attention.NAME
    assert packed_kernel(cuda) == varlen_attention.NAME
    assert packed_kernel(torch.device("mps")) == segment_attention.NAME
    model, _ = tiny_model(seed=0)
    assert set_attention(model, "auto", cpu, packed=True) == segment_attention.NAME
    with pytest.raises(ConfigError, match="no backward on cpu"):
        set_attention(model, varlen_attention.NAME, cpu, packed=True)
    # A named packed kernel means packed rows; with packing off it is an error.
    assert packed_rows(True, varlen_attention.NAME, model)
    assert packed_rows(True, "auto", model) and not packed_rows(True, "sdpa", model)
    assert not packed_rows(False, "auto", model)
    with pytest.raises(ConfigError, match="--no-packed"):
        packed_rows(False, segment_attention.NAME, model)
    model.config.sliding_window, model.config.use_sliding_window = 16, True
    assert not packed_rows(True, "auto", model)
    with pytest.raises(ConfigError, match="cannot pack"):
        packed_rows(True, varlen_attention.NAME, model)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_flex_on_cuda_gives_the_dense_paths_logprobs_and_gradients():
    """Compiled FlexAttention (forward and backward) against the segment kernel's SDPA
    branch on longer rows (128-token tiles: empty, partial and full ones), fp32."""
    from r1zero.learner.attention import set_attention
    from r1zero.learner.logprobs import response_logprobs
    from r1zero.testing import tiny_model

    cuda = torch.device("cuda")
    model, tok = tiny_model(seed=0)
    model = model.to(cuda)
    rng = random.Random(0)
    seqs = []
    for _ in range(3):
        prompt = [rng.randrange(5, 200) for _ in range(rng.randint(40, 90))]
        for _ in range(4):
            response = [rng.randrange(5, 200) for _ in range(rng.randint(100, 400))]
            seqs.append(TrainSequence(prompt, response, rng.choice([-1.0, 1.0])))
    assert set_attention(model, "auto", cuda, packed=True) == varlen_attention.NAME

    def run(kernel: str):
        set_attention(model, kernel, cuda, packed=True)
        model.zero_grad(set_to_none=True)
        per_seq = {}
        for mb in make_micro_batches(seqs, token_budget=2048, pad_id=tok.pad_token_id, packed=True):
            lp, ent = response_logprobs(model, mb, temperature=0.9, with_entropy=True)
            (lp * mb.advantages.to(cuda)[:, None]).sum().backward()
            for r, i in enumerate(mb.index):
                keep = mb.response_mask[r].bool().to(cuda)
                per_seq[i] = (lp[r][keep].detach(), ent[r][keep])
        return per_seq, [p.grad.clone() for p in model.parameters()]

    flex, g_flex = run(varlen_attention.NAME)
    dense, g_dense = run(segment_attention.NAME)
    for i in dense:
        torch.testing.assert_close(flex[i][0], dense[i][0], rtol=0, atol=1e-4)
        torch.testing.assert_close(flex[i][1], dense[i][1], rtol=0, atol=1e-4)
    for a, b in zip(g_dense, g_flex):
        torch.testing.assert_close(b, a, rtol=1e-3, atol=1e-5)
