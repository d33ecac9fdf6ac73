"""Micro-batch planning/collation and learner log-probs on right-padded rows."""

import pytest
import torch

from r1zero.learner.batching import (
    TrainSequence,
    collate,
    collate_packed,
    make_micro_batches,
    plan_micro_batches,
    plan_packed,
)
from r1zero.learner.logprobs import response_logprobs


def test_plan_respects_budget_and_covers_all():
    lengths = [5, 30, 12, 12, 7, 50, 3]
    groups = plan_micro_batches(lengths, token_budget=60)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        longest = max(lengths[i] for i in g)
        assert len(g) == 1 or len(g) * longest <= 60


def test_oversized_sequence_gets_its_own_micro_batch():
    assert plan_micro_batches([100, 3], token_budget=10) == [[0], [1]]


def test_collate_masks_only_response_targets():
    seqs = [TrainSequence([1, 2, 3], [4, 5], 1.0, [-0.1, -0.2]),
            TrainSequence([1], [6, 7, 8], -1.0, [-0.3, -0.4, -0.5])]
    mb = collate(seqs, [0, 1], pad_id=0)
    assert mb.input_ids.tolist() == [[1, 2, 3, 4, 5], [1, 6, 7, 8, 0]]
    # row 0: targets at positions 2,3 (tokens 4,5); row 1: positions 0,1,2 (tokens 6,7,8)
    assert mb.response_mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    assert mb.sampler_logprobs[1, :3].tolist() == torch.tensor([-0.3, -0.4, -0.5]).tolist()
    assert mb.num_tokens == 9


class _TinyLM(torch.nn.Module):
    """A causal toy LM with the HF accessors the learner uses (get_decoder/get_output_embeddings)."""

    def __init__(self, vocab=11, d=8):
        super().__init__()
        torch.manual_seed(0)
        self.emb = torch.nn.Embedding(vocab, d)
        self.head = torch.nn.Linear(d, vocab)
        outer = self

        class Decoder(torch.nn.Module):
            def forward(self, input_ids, attention_mask=None, use_cache=False):
                x = outer.emb(input_ids).cumsum(1)  # causal: position t sees tokens <= t
                return type("Out", (), {"last_hidden_state": x})()

        self.decoder = Decoder()

    def get_decoder(self):
        return self.decoder

    def get_output_embeddings(self):
        return self.head


def test_response_logprobs_match_per_sequence_forward():
    model = _TinyLM()
    seqs = [TrainSequence([1, 2, 3], [4, 5], 0.0), TrainSequence([1], [6, 7, 8], 0.0),
            TrainSequence([2, 2], [9], 0.0)]
    mbs = make_micro_batches(seqs, token_budget=8, pad_id=0)
    for mb in mbs:
        lp, ent = response_logprobs(model, mb, temperature=0.7, with_entropy=True)
        for r, i in enumerate(mb.index):
            s = seqs[i]
            ids = torch.tensor([s.prompt_ids + s.response_ids])
            logits = model.head(model.emb(ids).cumsum(1))[0, :-1] / 0.7
            ref = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None]).squeeze(-1)
            p = len(s.prompt_ids)
            got = lp[r][mb.response_mask[r].bool()]
            torch.testing.assert_close(got, ref[p - 1 :], rtol=1e-5, atol=1e-5)
            assert (ent[r][mb.response_mask[r].bool()] > 0).all()


def test_packed_collate_puts_each_prompt_once_and_no_padding():
    seqs = [TrainSequence([1, 2, 3], [4, 5], 1.0, [-0.1, -0.2]),
            TrainSequence([1, 2, 3], [6], -1.0, [-0.3]),
            TrainSequence([7, 8], [9, 9, 9], 0.5, [-0.4, -0.5, -0.6])]
    mb = collate_packed(seqs, [0, 1, 2])
    pk = mb.packed
    # prefixes [1,2] and [7]; then suffixes [3,4,5], [3,6], [8,9,9,9]
    assert pk.input_ids.tolist() == [[1, 2, 7, 3, 4, 5, 3, 6, 8, 9, 9, 9]]
    assert pk.position_ids.tolist() == [[0, 1, 0, 2, 3, 4, 2, 3, 1, 2, 3, 4]]
    assert mb.num_tokens == 12
    assert pk.targets.tolist() == [[4, 5, 0], [6, 0, 0], [9, 9, 9]]
    assert pk.hidden_index.tolist() == [[3, 4, 0], [6, 0, 0], [8, 9, 10]]
    assert mb.response_mask.tolist() == [[1, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert mb.sampler_logprobs[2].tolist() == torch.tensor([-0.4, -0.5, -0.6]).tolist()
    seg = pk.segments
    # segment 2 = the suffix [3,4,5]: sees prefix [1,2] fully, itself causally
    assert seg.k_index[2, :5].tolist() == [0, 1, 3, 4, 5]
    assert seg.mask[2, :3, :5].int().tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    # every flat token's output comes from exactly one query slot of its own segment
    assert sorted(seg.q_index.flatten()[seg.gather_back].tolist()) == list(range(12))
    assert seg.q_index.flatten()[seg.gather_back].tolist() == list(range(12))


def test_packed_plan_keeps_groups_together_within_budget():
    seqs = [TrainSequence([1] * 10, [2] * 5, 0.0)] * 3 + [TrainSequence([3] * 10, [4] * 5, 0.0)] * 3
    # one group = prefix 9 + 3 suffixes of 6 = 27 tokens
    assert plan_packed(seqs, 54) == [[0, 1, 2, 3, 4, 5]]
    assert plan_packed(seqs, 30) == [[0, 1, 2], [3, 4, 5]]
    assert plan_packed(seqs, 21) == [[0, 1], [2], [3, 4], [5]]  # split groups repeat the prefix
    one = [TrainSequence([5], [1], 0.0), TrainSequence([5], [2, 2], 0.0)]  # no prefix at all
    mb = collate_packed(one, [0, 1])
    assert mb.packed.input_ids.tolist() == [[5, 1, 5, 2, 2]]


def _groups(seed: int, vocab: int) -> list[TrainSequence]:
    """3 groups x 4 responses; prompts of different lengths, so prefixes are padded."""
    import random

    rng = random.Random(seed)
    seqs = []
    for _ in range(3):
        prompt = [rng.randrange(5, vocab) for _ in range(rng.randint(3, 9))]
        for _ in range(4):
            response = [rng.randrange(5, vocab) for _ in range(rng.randint(1, 7))]
            seqs.append(TrainSequence(prompt, response, rng.choice([-1.0, 1.0])))
    return seqs


@pytest.mark.parametrize("kernel", ["matmul", "sdpa"])
@pytest.mark.parametrize("precision", ["fp32", "bf16-autocast"])
def test_packed_gives_the_same_logprobs_and_gradients(precision, kernel, monkeypatch):
    """One flat row through the segment kernel is the same function of the weights as
    padded full rows (values, entropy and gradients)."""
    from r1zero.learner import segment_attention
    from r1zero.learner.attention import set_attention, supports_packing
    from r1zero.testing import tiny_model

    if kernel == "sdpa":  # the GPU branch, run on CPU
        monkeypatch.setattr(segment_attention, "MATMUL_DEVICES", ())
    model, tok = tiny_model(seed=0)
    assert supports_packing(model)
    seqs = _groups(0, 200)

    def run(packed: bool):
        set_attention(model, "auto", torch.device("cpu"), packed)
        model.zero_grad(set_to_none=True)
        per_seq = {}
        for mb in make_micro_batches(seqs, token_budget=40, pad_id=tok.pad_token_id, packed=packed):
            assert (mb.packed is not None) == packed
            lp, ent = response_logprobs(model, mb, temperature=0.9, with_entropy=True,
                                        precision=precision)
            (lp * mb.advantages[:, None]).sum().backward()
            for r, i in enumerate(mb.index):
                per_seq[i] = (lp[r][mb.response_mask[r].bool()].detach(),
                              ent[r][mb.response_mask[r].bool()])
        return per_seq, [p.grad.clone() for p in model.parameters()]

    full, g_full = run(False)
    packed, g_packed = run(True)
    assert sorted(full) == sorted(packed) == list(range(len(seqs)))
    tol = dict(rtol=0, atol=1e-5) if precision == "fp32" else dict(rtol=0, atol=0.05)
    for i in full:
        torch.testing.assert_close(packed[i][0], full[i][0], **tol)
        torch.testing.assert_close(packed[i][1], full[i][1], **tol)
    for a, b in zip(g_full, g_packed):
        if precision == "fp32":
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
        else:
            assert torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0) > 0.99


def test_packing_is_refused_for_sliding_window_models():
    from r1zero.learner.attention import supports_packing
    from r1zero.testing import tiny_model

    model, _ = tiny_model(seed=0)
    model.config.sliding_window, model.config.use_sliding_window = 16, True
    assert not supports_packing(model)


def test_segment_kernel_falls_back_to_sdpa_without_segments():
    """The same module still runs ordinary (e.g. generation) calls after the switch."""
    from r1zero.learner.attention import set_attention
    from r1zero.testing import tiny_model

    model, _ = tiny_model(seed=0)
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 11, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    want = model(input_ids=ids, attention_mask=mask).logits
    set_attention(model, "auto", torch.device("cpu"), packed=True)
    torch.testing.assert_close(model(input_ids=ids, attention_mask=mask).logits, want)
