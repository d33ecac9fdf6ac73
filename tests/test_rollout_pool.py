"""EnginePool: prompts sharded over several engines, completions identical whatever the
number of engines (seeds per prompt and sample), weights sent to every engine."""

from __future__ import annotations

import copy

import pytest
import torch

from r1zero.rollout import HFBackend, RolloutBackend, SamplingParams
from r1zero.rollout.pool import EnginePool, shard_bounds
from tests.test_rollout_hf import one_thread, tiny  # noqa: F401  (fixtures)

PROMPTS = ["Hello there", "What is 2 + 2? Answer:", "x", "Count to five:", "The sky is", "ok"]


def _key(c):
    return (c.prompt_index, c.sample_index, c.token_ids, c.text, c.finish_reason)


def test_shard_bounds():
    assert shard_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert shard_bounds(2, 3) == [(0, 1), (1, 2)]  # an idle engine
    assert shard_bounds(0, 2) == []
    with pytest.raises(ValueError):
        shard_bounds(3, 0)


@pytest.mark.parametrize("num_engines", [1, 2, 3, 4])
def test_pool_completions_do_not_depend_on_the_number_of_engines(tiny, num_engines):
    model, tok = tiny
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=5)
    seeds = [11, 12, 13, 14, 15, 16]
    alone = HFBackend(model, tok).generate(PROMPTS, params, seeds)
    # Separate engine objects with their own copy of the weights, as on a cluster.
    pool = EnginePool([HFBackend(copy.deepcopy(model), tok) for _ in range(num_engines)])
    assert isinstance(pool, RolloutBackend)
    pooled = pool.generate(PROMPTS, params, seeds)
    assert [_key(c) for c in pooled] == [_key(c) for c in alone]  # the same samples, exactly
    for a, b in zip(pooled, alone):  # log-probs up to float noise (other batch padding)
        torch.testing.assert_close(torch.tensor(a.logprobs), torch.tensor(b.logprobs),
                                   rtol=0, atol=1e-4)


def test_pool_sends_weights_to_every_engine(tiny):
    model, tok = tiny
    engines = [HFBackend(copy.deepcopy(model), tok) for _ in range(2)]
    pool = EnginePool(engines)
    new = {n: p.detach() + 1.0 for n, p in model.named_parameters()}
    pool.load_weights(iter(new.items()))  # a one-shot iterator reaches both engines
    for engine in engines:
        for n, p in engine.model.named_parameters():
            assert torch.equal(p, new[n]), n
    pool.sleep(), pool.wake(), pool.close()


def test_pool_checks_seeds_and_needs_an_engine(tiny):
    model, tok = tiny
    with pytest.raises(ValueError, match="at least one"):
        EnginePool([])
    with pytest.raises(ValueError, match="prompt_seeds"):
        EnginePool([HFBackend(model, tok)]).generate(PROMPTS, SamplingParams(), [1])
