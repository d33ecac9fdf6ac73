"""Partial rollouts (``--rollout.partial``): new weights enter a generation in flight between
two tokens. The engine records the version of every token and recomputes its cache with the
new weights, so each token's log-prob is exactly that of its own version; the rollout
source applies a sync at the next token boundary instead of waiting for the draw."""

from __future__ import annotations

import copy
import json
import statistics
import time

import pytest
import torch

from r1zero.rollout import HFBackend, SamplingParams
from r1zero.testing import tiny_model
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)

PROMPTS = ["Hello there", "What is 2 + 2? Answer:"]  # different lengths: left padding


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _full_logprobs(model, c, temperature):
    """log π(o_t) of each response token from one forward over prompt + response."""
    ids = torch.tensor([c.prompt_token_ids + c.token_ids])
    with torch.no_grad():
        logits = model(ids).logits[0, :-1].float() / temperature
    lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
    return lp[len(c.prompt_token_ids) - 1:]


def _two_versions():
    """The tiny model (version 0) and a perturbed copy of its weights (version 1)."""
    v0, tok = tiny_model(seed=0)
    v1 = copy.deepcopy(v0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in v1.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return v0, v1, tok


def test_a_response_across_a_weight_update_has_each_versions_logprobs():
    """The hook swaps in version 1 before token 3 of every sample: tokens 0-2 carry version
    0 and its log-probs, tokens 3.. version 1 and its own log-probs (recomputed from
    scratch with each version's weights over the whole prefix, so a stale cache would fail
    it), and the prefix before the update is the one an uninterrupted run samples."""
    v0, v1, tok = _two_versions()
    engine = HFBackend(copy.deepcopy(v0), tok)
    calls = {"n": 0, "version": 0}

    def hook():  # called once before the prefill, then before every token
        calls["n"] += 1
        if calls["n"] == 5 and calls["version"] == 0:  # call 1: the prefill; 2 + t: token t
            engine.load_weights(v1.state_dict().items())
            calls["version"] = 1
        return calls["version"]

    engine.update_hook = hook
    params = SamplingParams(n=2, temperature=1.0, max_new_tokens=8)
    out = engine.generate(PROMPTS, params, [11, 12])
    plain = HFBackend(copy.deepcopy(v0), tok).generate(PROMPTS, params, [11, 12])
    for c, p in zip(out, plain):
        assert c.token_versions == [0, 0, 0] + [1] * (len(c.token_ids) - 3)
        assert c.token_ids[:3] == p.token_ids[:3]  # the same random stream up to the update
        got = torch.tensor(c.logprobs)
        torch.testing.assert_close(got[:3], _full_logprobs(v0, c, 1.0)[:3], atol=1e-4, rtol=0)
        torch.testing.assert_close(got[3:], _full_logprobs(v1, c, 1.0)[3:], atol=1e-4, rtol=0)
        # ... and not version 0's: the update took effect.
        assert (got[3:] - _full_logprobs(v0, c, 1.0)[3:]).abs().max() > 1e-2


def test_without_a_hook_no_token_versions_are_reported():
    v0, _, tok = _two_versions()
    out = HFBackend(v0, tok).generate(PROMPTS, SamplingParams(n=1, max_new_tokens=3), [1, 2])
    assert all(c.token_versions is None for c in out)


# ----------------------------------------------------------------------------- the source
class _TokenEngine:
    """Stands in for an engine: one response per draw, one `update_hook` call (and 10 ms)
    per token; a sync loads the next version."""

    def __init__(self):
        self.update_hook = None
        self.loads = 0

    def tokens(self, n: int) -> list[int | None]:
        out = []
        for _ in range(n):
            out.append(self.update_hook() if self.update_hook is not None else None)
            time.sleep(0.01)
        return out


def _run_source(partial: bool, k: int = 1, steps: int = 4):
    from r1zero.rollout.base import Completion
    from r1zero.train import source as ro

    engine = _TokenEngine()

    def draw(step, version):
        c = Completion(0, 0, [1], [2] * 20, "x", "length")
        c.token_versions = engine.tokens(20)
        if c.token_versions[0] is None:
            c.token_versions = [version] * 20
        return ro.Drawn(step, [], [c], [], {}, torch.zeros(1), 1, version, 0.0)

    def push():
        engine.loads += 1

    source = ro.make_source(k, draw, push, 0, steps, partial_engine=engine if partial else None)
    got, waits = [], []
    try:
        for step in range(steps):
            got.append(source.take(step))
            time.sleep(0.05)  # the update: shorter than a draw (20 tokens x 10 ms)
            t0 = time.perf_counter()
            source.sync(step + 1)
            waits.append(time.perf_counter() - t0)
    finally:
        source.close()
    return got, waits, engine


def test_partial_sync_lands_between_two_tokens():
    """k = 1: step 1 starts with version 0 while step 0 trains; the sync of version 1 lands
    mid-draw, so step 1's response switches from 0 to 1 part-way (each version at most one
    step behind, versions never go back), and the sync itself waited one token, not a draw."""
    from r1zero.train.source import staleness_metrics

    got, waits, engine = _run_source(partial=True)
    assert engine.update_hook is None  # the source unhooks on close
    versions = [d.completions[0].token_versions for d in got]
    assert versions[0] == [0] * 20
    assert versions[1][0] == 0 and versions[1][-1] == 1  # the switch inside one response
    for d, vs in zip(got, versions):
        assert vs == sorted(vs) and all(0 <= d.step - v <= 1 for v in vs)
        m = staleness_metrics(d)
        assert m["rollout/token_staleness_max"] <= 1
    assert statistics.median(waits[:-1]) < 0.1  # a draw takes 0.2 s; a token 0.01 s


def test_overlapped_sync_waits_for_the_draw():
    """The same schedule without --rollout.partial: whole responses carry one version and a
    sync waits for the draw in flight."""
    got, waits, _ = _run_source(partial=False)
    assert all(len(set(d.completions[0].token_versions)) == 1 for d in got)
    assert max(waits) > 0.1


def test_partial_needs_an_engine_with_a_hook():
    from r1zero.train import source as ro

    with pytest.raises(ValueError, match="cannot take new weights between two tokens"):
        ro.make_source(1, lambda s, v: None, lambda: None, 0, 2, partial_engine=object())


def test_partial_config_rules():
    from r1zero.config import ClusterConfig, ConfigError, RolloutConfig, TrainConfig

    with pytest.raises(ConfigError, match="needs --max-staleness >= 1"):
        TrainConfig(rollout=RolloutConfig(partial=True)).validate()
    with pytest.raises(ConfigError, match="in-process engine only"):
        TrainConfig(max_staleness=1, rollout=RolloutConfig(partial=True),
                    cluster=ClusterConfig(engines=2)).validate()
    TrainConfig(max_staleness=2, rollout=RolloutConfig(partial=True)).validate()


# ----------------------------------------------------------------------------- a run
def test_a_partial_run_logs_token_staleness_and_the_mismatch_every_step(tiny_dir, tmp_path):  # noqa: F811
    """--max-staleness 2 --rollout.partial on the tiny model: every step logs token
    staleness <= 2 and the mismatch metrics, every rollout record its (prompt, seed) and
    token versions, and every token's version is one the engines held (<= the step)."""
    from r1zero.config import RolloutConfig
    from r1zero.train.trainer import train

    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=4, eval_every=0, save_every=0, max_staleness=2,
               rollout=RolloutConfig(partial=True), skip_zero_advantage=False, rollout_samples=-1))
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    for r in rows:
        assert 0 <= r["rollout/token_staleness_max"] <= 2
        assert r["rollout/token_staleness_mean"] <= r["rollout/token_staleness_max"]
        for key in ("mismatch/kl_k1", "mismatch/kl_k3", "mismatch/is_ratio_p1", "mismatch/is_ratio_p50",
                    "mismatch/is_ratio_p99", "mismatch/is_ratio_max", "mismatch/masked_frac",
                    "mismatch/truncated_frac", "mismatch/stale0/kl_k3" if r["step"] == 1 else "mismatch/tokens"):
            assert r[key] is not None, key
    for step in range(1, 5):
        recs = [json.loads(x) for x in (run / "rollouts" / f"step_{step:06d}.jsonl").read_text().splitlines()]
        assert len(recs) == 8 and all(isinstance(x["seed"], int) for x in recs)
        for x in recs:
            versions = [v for v, n in x["token_versions"] for _ in range(n)]
            assert len(versions) == x["length"] and versions == sorted(versions)
            assert all(step - 3 <= v <= step - 1 for v in versions)  # step s: drawn after s - 1 updates, k = 2


# ----------------------------------------------------------------------------- vLLM
@pytest.mark.slow
@pytest.mark.vllm
def test_vllm_abort_and_resubmit_gives_each_versions_logprobs():
    """The vLLM engine under an update hook (stepped by hand): new weights before step 6
    abort every unfinished sample and resubmit its prefix; every token's log-prob is its
    own version's (HF fp32 teacher forcing of the whole sequence with that version)."""
    pytest.importorskip("vllm")
    from r1zero.models import DEFAULT_MODEL, load_model, resolve_model_path
    from r1zero.rollout.vllm import VLLMBackend

    v0, tok = load_model(DEFAULT_MODEL)
    g = torch.Generator().manual_seed(0)
    new_state = {k: v + 0.05 * v.std() * torch.randn(v.shape, generator=g) if v.dim() > 1 else v.clone()
                 for k, v in v0.state_dict().items()}
    v1 = copy.deepcopy(v0)
    v1.load_state_dict(new_state)
    engine = VLLMBackend(resolve_model_path(DEFAULT_MODEL), dtype="float32", enforce_eager=True,
                         cpu_kv_cache_gib=0.5)
    calls = {"n": 0, "version": 0}

    def hook():
        calls["n"] += 1
        if calls["n"] == 7 and calls["version"] == 0:
            engine.load_weights(new_state.items())
            calls["version"] = 1
        return calls["version"]

    engine.update_hook = hook
    prompts = [tok.apply_chat_template([{"role": "user", "content": f"What is {a} + {b}?"}], tokenize=False,
                                       add_generation_prompt=True) for a, b in ((3, 4), (12, 30))]
    try:
        out = engine.generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=24), [1, 2])
    finally:
        engine.close()
    switched = 0
    for c in out:
        assert len(c.token_versions) == len(c.token_ids) == len(c.logprobs)
        assert c.token_versions == sorted(c.token_versions)
        got = torch.tensor(c.logprobs)
        for version, model in ((0, v0), (1, v1)):
            at = torch.tensor([v == version for v in c.token_versions])
            if at.any():
                gap = (got[at] - _full_logprobs(model, c, 1.0)[at]).abs().max()
                assert gap < 1e-3, (version, float(gap))
        switched += len(set(c.token_versions)) == 2
    assert switched >= 1  # at least one sample crossed the update
