"""Micro-batch planning/collation and learner log-probs on right-padded rows."""

import torch

from r1zero.train.batching import TrainSequence, collate, make_micro_batches, plan_micro_batches
from r1zero.train.learner import response_logprobs


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
