"""HFBackend on a tiny random Llama with the real SmolLM2 tokenizer (CPU, seconds)."""

from __future__ import annotations

import pytest
import torch

from r1zero.rollout import HFBackend, RolloutBackend, SamplingParams
from r1zero.testing import tiny_model

PROMPTS = ["Hello there", "What is 2 + 2? Answer:", "x"]  # different lengths: left padding


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matmuls lose to OpenMP spin-waiting on a shared CPU: 1 thread is ~10x faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny():
    return tiny_model(seed=0)


@pytest.fixture
def backend(tiny):
    model, tok = tiny
    return HFBackend(model, tok, batch_size=64)


def test_is_a_rollout_backend(backend):
    assert isinstance(backend, RolloutBackend)


def test_prompt_major_order_and_count(backend):
    out = backend.generate(PROMPTS, SamplingParams(n=3, max_new_tokens=4), [1, 2, 3])
    assert [(c.prompt_index, c.sample_index) for c in out] == [(i, j) for i in range(3) for j in range(3)]
    assert all(len(c.token_ids) == len(c.logprobs) == 4 for c in out)
    assert all(c.finish_reason == "length" and c.truncated for c in out)


def test_sampling_is_reproducible_and_independent_of_batch(tiny):
    """Row (i, j) draws from its own generator, so alone / in a batch / in chunks of one
    gives the same tokens; different samples of one prompt differ."""
    model, tok = tiny
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=10)
    batched = HFBackend(model, tok, batch_size=64).generate(PROMPTS, params, [1, 2, 3])
    one_by_one = HFBackend(model, tok, batch_size=1).generate(PROMPTS, params, [1, 2, 3])
    alone = HFBackend(model, tok).generate([PROMPTS[1]], params, [2])
    assert [c.token_ids for c in batched] == [c.token_ids for c in one_by_one]
    assert [c.token_ids for c in alone] == [c.token_ids for c in batched[3:6]]
    assert len({tuple(c.token_ids) for c in batched[:3]}) == 3
    # Log-probs agree up to padding-dependent float noise.
    for a, b in zip(batched, one_by_one):
        assert torch.allclose(torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-4)


def test_different_seeds_give_different_samples(backend):
    params = SamplingParams(n=1, max_new_tokens=8)
    a = backend.generate(PROMPTS[:1], params, [1])[0].token_ids
    b = backend.generate(PROMPTS[:1], params, [2])[0].token_ids
    assert a != b


def test_greedy_at_temperature_zero_matches_argmax(tiny):
    model, tok = tiny
    params = SamplingParams(n=2, temperature=0.0, max_new_tokens=6)
    out = HFBackend(model, tok).generate(PROMPTS[:2], params, [5, 6])
    assert out[0].token_ids == out[1].token_ids  # the seed plays no part
    ids = tok(PROMPTS[0])["input_ids"]
    for _ in range(6):  # reference: argmax of a full forward, no cache
        with torch.no_grad():
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert out[0].token_ids == ids[-6:]


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_logprobs_match_teacher_forced_recomputation(tiny, temperature):
    """The sampler's log-probs equal log_softmax(logits / T) from one full forward over
    prompt + response, what the learner computes."""
    model, tok = tiny
    params = SamplingParams(n=2, temperature=temperature, max_new_tokens=12)
    for c in HFBackend(model, tok).generate(PROMPTS, params, [1, 2, 3]):
        ids = torch.tensor([c.prompt_token_ids + c.token_ids])
        with torch.no_grad():
            logits = model(ids).logits[0, len(c.prompt_token_ids) - 1 : -1]  # [T, V]
        ref = torch.log_softmax(logits / temperature, -1)
        ref = ref.gather(1, torch.tensor(c.token_ids)[:, None])[:, 0]
        assert torch.allclose(torch.tensor(c.logprobs), ref, atol=1e-4)


def test_top_p_logprobs_are_renormalised_over_the_nucleus(tiny):
    model, tok = tiny
    full = HFBackend(model, tok).generate(PROMPTS, SamplingParams(max_new_tokens=6), [1, 2, 3])
    nucleus = HFBackend(model, tok).generate(
        PROMPTS, SamplingParams(top_p=0.5, max_new_tokens=6), [1, 2, 3]
    )
    # Dropping the tail can only raise the kept tokens' probabilities.
    assert sum(map(sum, (c.logprobs for c in nucleus))) > sum(map(sum, (c.logprobs for c in full)))
    # A vanishing nucleus keeps only the top token: greedy, with probability 1.
    tiny_p = HFBackend(model, tok).generate(PROMPTS[:1], SamplingParams(top_p=1e-9, max_new_tokens=5), [1])
    greedy = HFBackend(model, tok).generate(PROMPTS[:1], SamplingParams(temperature=0, max_new_tokens=5), [1])
    assert tiny_p[0].token_ids == greedy[0].token_ids
    assert all(abs(lp) < 1e-6 for lp in tiny_p[0].logprobs)


def _sampled(model, tok, eos_ids=None, **kw):
    backend = HFBackend(model, tok)
    if eos_ids is not None:
        backend.eos_ids = eos_ids  # pretend these tokens are the model's EOS
    params = SamplingParams(temperature=1.0, max_new_tokens=12, **kw)
    return backend.generate(PROMPTS[:1], params, [7])[0]


def test_stop_string_ends_generation_and_is_kept(tiny):
    model, tok = tiny
    free = _sampled(model, tok)
    # A stop string made of the text of tokens k..k+1 of the free-running sample, with the
    # first k whose text does not occur earlier; the same seed replays the same tokens.
    ids = free.token_ids
    k = next(k for k in range(2, 10) if tok.decode(ids[k : k + 2]).strip()
             and tok.decode(ids[k : k + 2]) not in tok.decode(ids[: k + 1]))
    stop = tok.decode(ids[k : k + 2])
    out = _sampled(model, tok, stop=(stop,))
    assert out.finish_reason == "stop"
    assert out.token_ids == ids[: k + 2]
    assert out.text.endswith(stop) and out.text.count(stop) == 1
    assert out.logprobs == pytest.approx(free.logprobs[: k + 2], abs=1e-6)


def test_eos_ends_generation_and_is_kept(tiny):
    model, tok = tiny
    free = _sampled(model, tok)
    eos = free.token_ids[3]
    out = _sampled(model, tok, eos_ids=[eos])
    first = free.token_ids.index(eos)
    assert out.finish_reason == "stop" and out.token_ids == free.token_ids[: first + 1]


def test_rows_finish_independently(tiny):
    """A row that stops early leaves the batch; the others continue unchanged."""
    model, tok = tiny
    params = SamplingParams(n=4, max_new_tokens=10)
    free = HFBackend(model, tok).generate(PROMPTS[:1], params, [3])
    backend = HFBackend(model, tok)
    backend.eos_ids = [free[0].token_ids[2]]
    out = backend.generate(PROMPTS[:1], params, [3])
    assert out[0].finish_reason == "stop" and len(out[0].token_ids) <= 3
    for a, b in zip(free[1:], out[1:]):
        if backend.eos_ids[0] not in a.token_ids:
            assert a.token_ids == b.token_ids and b.finish_reason == "length"


def test_update_weights_copies_or_shares(tiny):
    model, tok = tiny
    shared = HFBackend(model, tok)
    shared.load_weights(model.named_parameters())  # same storage: nothing to copy

    other, _ = tiny_model(seed=1)
    copy = HFBackend(other, tok)
    params = SamplingParams(max_new_tokens=6)
    before = copy.generate(PROMPTS[:1], params, [0])[0]
    copy.load_weights(model.state_dict().items())  # includes the tied lm_head.weight
    after = copy.generate(PROMPTS[:1], params, [0])[0]
    expected = shared.generate(PROMPTS[:1], params, [0])[0]
    assert after.token_ids == expected.token_ids != before.token_ids
    assert after.logprobs == pytest.approx(expected.logprobs, abs=1e-6)
    with pytest.raises(KeyError, match="no tensor"):
        copy.load_weights([("not.a.weight", torch.zeros(1))])


def test_generate_restores_training_mode(tiny):
    model, tok = tiny
    model.train()
    try:
        HFBackend(model, tok).generate(PROMPTS[:1], SamplingParams(max_new_tokens=2), [0])
        assert model.training
    finally:
        model.eval()


def test_seed_count_must_match(backend):
    with pytest.raises(ValueError, match="prompt_seeds"):
        backend.generate(PROMPTS, SamplingParams(max_new_tokens=2), [1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_generation_matches_teacher_forcing_and_cpu_seeding():
    """On a GPU: same per-row seeding (generators stay on the CPU), log-probs equal a
    teacher-forced recomputation, and weights sync from CPU tensors."""
    model, tok = tiny_model(seed=0)
    cpu_out = HFBackend(model, tok).generate(PROMPTS, SamplingParams(n=2, max_new_tokens=8), [1, 2, 3])
    gpu_model = model.to("cuda")
    backend = HFBackend(gpu_model, tok)
    params = SamplingParams(n=2, max_new_tokens=8)
    out = backend.generate(PROMPTS, params, [1, 2, 3])
    alone = backend.generate(PROMPTS[1:2], params, [2])
    assert [c.token_ids for c in alone] == [c.token_ids for c in out[2:4]]
    same = sum(a.token_ids == b.token_ids for a, b in zip(out, cpu_out))
    assert same >= len(out) - 1  # CPU/GPU float differences may flip a rare boundary draw
    for c in out:
        ids = torch.tensor([c.prompt_token_ids + c.token_ids], device="cuda")
        with torch.no_grad():
            logits = gpu_model(ids).logits[0, len(c.prompt_token_ids) - 1 : -1].float()
        ref = torch.log_softmax(logits, -1).gather(1, torch.tensor(c.token_ids, device="cuda")[:, None])[:, 0]
        assert torch.allclose(torch.tensor(c.logprobs), ref.cpu(), atol=1e-3)
    other, _ = tiny_model(seed=1)
    backend.load_weights(other.state_dict().items())
    assert torch.equal(gpu_model.lm_head.weight.cpu(), other.lm_head.weight)
