"""Overlapped rollouts (`--max-staleness`, train/source.py) and the generation-budget
schedule: k = 0 is the plain loop; with k >= 1 every completion carries the weight version
that sampled it, no step is more than k versions old, and the truncated importance
weights are those of the learner's π_old against the stale sampler."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
import torch

from r1zero.config import ClusterConfig, ConfigError, TrainConfig, resolve_algorithm
from r1zero.rollout.base import Completion
from r1zero.train import source as ro
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)


def _rows(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------- k = 0
def test_on_policy_is_the_plain_loop(tiny_dir, tmp_path):  # noqa: F811
    """k = 0 through train() gives the metrics of the phases called one after another."""
    from r1zero.config import derive
    from r1zero.train import trainer as tr
    from r1zero.train.trainer import start

    kw = dict(steps=3, eval_every=0, save_every=0, lr=0.05, adam_eps=1e-2)
    tr.train(_cfg(tiny_dir, tmp_path / "loop", **kw))
    t = start(derive(_cfg(tiny_dir, tmp_path / "hand", **kw)))
    try:
        by_hand = []
        for step in range(3):
            problems, completions, verdicts, parts, _ = tr.draw_groups(t, step)
            rewards = tr.shaped_rewards(parts)
            adv = tr.advantages(t, rewards)
            metrics = t.learner.update(tr.build_batch(t, completions, adv, rewards, verdicts), step)
            tr.sync(t)
            by_hand.append((float(rewards.mean()), metrics["optim/grad_norm"], metrics["loss/policy"]))
    finally:
        t.source.close()
        t.backend.close()
        t.logger.close()
    loop = [(r["reward/mean"], r["optim/grad_norm"], r["loss/policy"]) for r in _rows(tmp_path / "loop")]
    assert loop == by_hand
    assert all(r["rollout/staleness_max"] == 0 for r in _rows(tmp_path / "loop"))


# ----------------------------------------------------------------------------- bookkeeping
class _Engine:
    """Stands in for the engines: `sync` bumps the version it holds."""

    def __init__(self):
        self.version = 0
        self.drawn_with: dict[int, int] = {}


@pytest.mark.parametrize("k", [1, 2])
def test_versions_with_a_slow_learner(monkeypatch, k):
    """Fast engines, slow learner: step s is drawn as soon as s - v <= k, so by the
    version v = max(0, s - k); the stamp is the version the engines held while drawing."""
    from r1zero.train import trainer as tr

    engine = _Engine()

    def draw_groups(t, step):
        engine.drawn_with[step] = engine.version
        c = Completion(0, 0, [1], [2], "x", "stop")
        return [], [c], [], {"verifier": torch.zeros(1)}, 1

    def sync(t):
        time.sleep(0.01)
        engine.version += 1

    monkeypatch.setattr(tr, "draw_groups", draw_groups)

    class T:
        cfg = TrainConfig(max_staleness=k, steps=7)

    t = T()
    source = ro.make_source(k, lambda s, v: tr.draw_step(t, s, v), lambda: sync(t), start=0, steps=7)
    assert isinstance(source, ro.Overlapped)
    got = []
    try:
        for step in range(7):
            drawn = source.take(step)
            time.sleep(0.05)  # the learner's update
            source.sync(step + 1)
            got.append((drawn.version, drawn.completions[0].weight_version, engine.drawn_with[step]))
    finally:
        source.close()
    assert [v for v, _, _ in got] == [max(0, s - k) for s in range(7)]
    assert all(v == stamp == held for v, stamp, held in got)
    lags = [ro.staleness_metrics(ro.Drawn(s, [], [Completion(0, 0, [1], [2], "x", "stop", weight_version=v)],
                                          [], {}, torch.zeros(1), 1, v, 0.0))["rollout/staleness_max"]
            for s, (v, _, _) in enumerate(got)]
    assert max(lags) == k


def test_producer_failure_reaches_the_loop(monkeypatch):
    from r1zero.train import trainer as tr

    def draw_groups(t, step):
        raise ValueError("engine exploded")

    monkeypatch.setattr(tr, "draw_groups", draw_groups)

    class T:
        cfg = TrainConfig(max_staleness=1, steps=3)

    t = T()
    source = ro.make_source(1, lambda s, v: tr.draw_step(t, s, v), lambda: None, start=0, steps=3)
    with pytest.raises(RuntimeError, match="rollout producer failed while drawing step 1.*engine exploded"):
        source.take(0)
    source.close()


# ----------------------------------------------------------------------------- IS weights
def _token_logprobs(state, model_dir, seqs, temperature):
    from r1zero.models import load_model

    model, _ = load_model(model_dir)
    model.load_state_dict(state)
    out = []
    with torch.no_grad():
        for s in seqs:
            ids = torch.tensor([s.prompt_ids + s.response_ids])
            logits = model(ids).logits[0, :-1].float() / temperature
            lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
            out.append(lp[len(s.prompt_ids) - 1:])
    return out


def test_stale_importance_weights_match_a_hand_reference(tiny_dir, tmp_path):  # noqa: F811
    """Step 1 is sampled by version 0 (the initial weights) while step 0 trains; its
    truncated IS weights are min(exp(log π_old − log π_sampler), cap) with π_old the
    learner after step 0 and π_sampler the version recorded on the rollout."""
    from r1zero.config import derive
    from r1zero.train import trainer as tr
    from r1zero.train.trainer import start

    cfg = _cfg(tiny_dir, tmp_path / "run", steps=2, eval_every=0, save_every=0, lr=0.3,
               adam_eps=1e-2, max_staleness=1, skip_zero_advantage=False)
    t = start(derive(cfg))
    assert t.cfg.algo.tis_cap == 2.0 and not t.shares_weights  # on by default; own engine copy
    versions = {0: {k: v.clone() for k, v in t.learner.policy.state_dict().items()}}
    seen = {}
    update = t.learner.update

    def recording_update(seqs, step):
        versions.setdefault(step, {k: v.clone() for k, v in t.learner.policy.state_dict().items()})
        seen[step] = seqs
        return update(seqs, step)

    t.learner.update = recording_update
    take = t.source.take
    drawn = {}
    t.source.take = lambda step: drawn.setdefault(step, take(step))
    try:
        tr.train_step(t, 0)
        metrics = tr.train_step(t, 1)
    finally:
        t.source.close()
        t.backend.close()
        t.logger.close()
    v = drawn[1].version
    assert v in (0, 1) and {c.weight_version for c in drawn[1].completions} == {v}
    assert metrics["rollout/staleness_max"] == 1 - v
    seqs = [s for s in seen[1] if s.response_ids]
    old = _token_logprobs(versions[1], tiny_dir, seqs, cfg.temperature)
    sampler = _token_logprobs(versions[v], tiny_dir, seqs, cfg.temperature)
    for s, lp in zip(seqs, sampler):  # the engine's own numbers are those of version v
        torch.testing.assert_close(torch.tensor(s.sampler_logprobs), lp, atol=1e-4, rtol=0)
    w = torch.cat([torch.exp(o - p).clamp(max=2.0) for o, p in zip(old, sampler)])
    assert metrics["policy/tis_weight_mean"] == pytest.approx(float(w.mean()), abs=1e-4)
    if v == 0:  # the stale case (practically always: the producer draws during step 0)
        assert abs(float(w.mean()) - 1.0) > 1e-3


def test_resume_keeps_every_trained_step(tiny_dir, tmp_path):  # noqa: F811
    from r1zero.train.trainer import train

    run = tmp_path / "run"
    kw = dict(eval_every=0, save_every=1, max_staleness=1)
    train(_cfg(tiny_dir, run, steps=2, **kw))
    train(replace(_cfg(tiny_dir, run, steps=3, **kw), resume=str(run)))
    rows = _rows(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[-1]["rollout/staleness_max"] == 0  # a resume draws its first step afresh


# ----------------------------------------------------------------------------- config
def test_staleness_config_rules():
    assert resolve_algorithm(TrainConfig(max_staleness=1)).algo.tis_cap == 2.0
    assert resolve_algorithm(TrainConfig()).algo.tis_cap is None
    with pytest.raises(ConfigError, match="max-staleness.*colocate"):
        TrainConfig(max_staleness=1, device="cuda",
                    cluster=ClusterConfig(learners=1, engines=1, colocate=True)).validate()
    with pytest.raises(ConfigError, match="max_staleness"):
        TrainConfig(max_staleness=-1).validate()


# ----------------------------------------------------------------------------- budget schedule
def test_budget_schedule_drives_rollouts_and_the_loss_constant(tiny_dir, tmp_path):  # noqa: F811
    from r1zero.train.trainer import train

    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=3, eval_every=0, save_every=0, max_new_tokens="0:3,1:5,2:7"))
    rows = _rows(run)
    assert [r["rollout/max_new_tokens"] for r in rows] == [3, 5, 7]
    lens = [json.loads(x)["length"] for s in (1, 2, 3) for x in  # rollout files count from 1
            (run / "rollouts" / f"step_{s:06d}.jsonl").read_text().splitlines()]
    assert max(lens[:8]) <= 3 and max(lens[8:16]) <= 5 and max(lens[16:]) == 7  # random model: never stops


@pytest.mark.parametrize("value, at", [
    (512, {0: 512, 10_000: 512}),
    ("512", {0: 512}),
    ("0:8192,400:16384,800:24576", {0: 8192, 399: 8192, 400: 16384, 799: 16384, 800: 24576, 5000: 24576}),
])
def test_budget_at(value, at):
    cfg = TrainConfig(max_new_tokens=value)
    cfg.validate()
    assert {s: cfg.max_new_tokens_at(s) for s in at} == at


@pytest.mark.parametrize("bad", ["1:512", "0:512,0:1024", "0:512,10", "0:x", "abc", "0:0", 0, "0:512;5:9"])
def test_bad_budget_schedules_are_refused(bad):
    with pytest.raises(ConfigError, match="--max-new-tokens"):
        TrainConfig(max_new_tokens=bad).validate()
