"""The reference recipe's update schedule (optimizer steps of ``train_batch_size``
responses, π_old once per rollout), the lr schedule, and the correctness fixes of issue 10:
exact zero advantages for agreeing groups, algorithm names resolved in one place, top-p
refused, Ctrl-C / SIGTERM checkpoints that match their weights."""

from __future__ import annotations

import copy
import json
import math
import os
import signal
from dataclasses import replace

import pytest
import torch

from r1zero.config import ConfigError, TrainConfig, resolve_algorithm
from r1zero.core.advantages import compute_advantages
from r1zero.core.algorithms import ALGORITHMS
from r1zero.core.losses import LossNormalizer, policy_loss
from r1zero.learner import local as learners
from r1zero.learner.batching import TrainSequence
from r1zero.learner.optim import optim_settings, scheduled_lr
from r1zero.learner.plan import minibatches
from r1zero.train import trainer as trainer_mod
from r1zero.train.trainer import train
from r1zero.utils import derive_seed
from tests.test_train_loop import ParityTask, _cfg, _weights, tiny_dir  # noqa: F401  (fixture)


# ----------------------------------------------------------------------------- advantages
@pytest.mark.parametrize("name", sorted(ALGORITHMS))
@pytest.mark.parametrize("value", [0.1, 0.3, 1.0, 0.7, -0.2])
def test_agreeing_group_has_exactly_zero_advantage(name, value):
    algo = ALGORITHMS[name]
    # Group 0 agrees (eight equal rewards, e.g. countdown's 0.1 format reward); group 1 not.
    rewards = torch.tensor([value] * 8 + [0.0, 1.0] * 4, dtype=torch.float)
    adv = compute_advantages(rewards, 8, baseline=algo.baseline, std_scale=algo.std_scale,
                             std_unbiased=algo.std_unbiased, eps=algo.adv_eps)
    if algo.baseline in ("group_mean", "leave_one_out"):
        assert torch.equal(adv[:8], torch.zeros(8)), adv[:8]
    if algo.baseline in ("none", "value"):  # RAFT: A = R (wrong ones are filtered); PPO: GAE later
        assert torch.equal(adv[8:], rewards[8:])
    else:
        assert adv[8:].abs().min() > 0  # the mixed group keeps its signal


def test_agreeing_float_group_was_not_zero_before():
    """The residue the fix removes: a float32 mean of eight 0.1s is not 0.1."""
    r = torch.full((8,), 0.1)
    assert (r - r.mean()).abs().max() > 0


# ----------------------------------------------------------------------------- config
def test_algorithm_name_resolves_from_python():
    for name, algo in ALGORITHMS.items():
        assert resolve_algorithm(TrainConfig(algorithm=name)).algo == algo
    explicit = replace(ALGORITHMS["grpo"], clip_high=0.3)
    kept = resolve_algorithm(TrainConfig(algorithm="grpo", algo=explicit))
    assert kept.algo.clip_high == 0.3 and kept.algo.std_scale == "group"


def test_derive_resolves_the_algorithm(tmp_path):
    from r1zero.config import derive

    cfg = derive(replace(TrainConfig(algorithm="grpo", run_dir=str(tmp_path))))
    assert cfg.algo == ALGORITHMS["grpo"]


def test_top_p_below_one_is_refused_for_training():
    with pytest.raises(ConfigError, match="top_p < 1"):
        TrainConfig(top_p=0.9).validate()


def test_train_batch_size_is_validated():
    with pytest.raises(ConfigError, match="train_batch_size"):
        TrainConfig(train_batch_size=0).validate()


def test_gpu_presets_follow_oats_optimizer():
    from r1zero.config import PRESETS

    for name in ("math", "gsm8k", "countdown"):
        cfg = PRESETS[name]()
        assert cfg.adam_betas == (0.9, 0.95) and cfg.adam_eps == 1e-8, name
        assert cfg.weight_decay == 0.0 and cfg.max_grad_norm == 1.0 and cfg.lr == 1e-6
        assert cfg.train_batch_size == 128 and cfg.lr_schedule == "constant"
    math_cfg = PRESETS["math"]()
    assert math_cfg.total_optim_steps() == math_cfg.steps * 8  # 128 x 8 / 128


# ----------------------------------------------------------------------------- lr schedule
def test_lr_schedules():
    cfg = TrainConfig(lr=1.0, steps=10, prompts_per_step=1, group_size=1, lr_warmup_steps=2)
    lr = lambda c, k: scheduled_lr(optim_settings(c), k)  # noqa: E731
    assert [lr(cfg, k) for k in range(3)] == [0.5, 1.0, 1.0]  # warm-up, constant
    lin = replace(cfg, lr_schedule="linear")
    assert lr(lin, 2) == 1.0 and lr(lin, 6) == 0.5 and lr(lin, 10) == 0.0
    cos = replace(cfg, lr_schedule="cosine")
    assert lr(cos, 2) == 1.0 and lr(cos, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr(cos, 6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    critic = replace(cfg, critic=replace(cfg.critic, lr=5.0, lr_warmup_steps=0))
    assert scheduled_lr(optim_settings(critic, "critic"), 0) == 5.0  # the critic's own lr, no warm-up


# ----------------------------------------------------------------------------- Dr. GRPO loss
def test_dr_grpo_minibatch_loss_by_hand():
    """Two responses in one optimizer step, C = 4.
    Response 1: two tokens, ratio 1, A = 0.5: per-token loss -A * 1 = -0.5 each, sum -1.0.
    Response 2: one token, ratio e^0.3 = 1.35 > 1 + 0.2, A = 1: clipped, loss -1 * 1.2.
    Dr. GRPO: mean over the step's responses of (token sum / C):
        ((-1.0) / 4 + (-1.2) / 4) / 2 = -0.275."""
    lp = torch.tensor([[-1.0, -2.0], [-0.7, 0.0]], requires_grad=True)
    old = torch.tensor([[-1.0, -2.0], [-1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([0.5, 1.0])
    norm = LossNormalizer(num_sequences=2.0, num_tokens=3.0, constant=4.0)
    loss, _ = policy_loss(lp, old, adv, mask, norm, ALGORITHMS["dr_grpo"])
    assert loss.item() == pytest.approx(-0.275)


def test_minibatches_partition_the_rollout():
    seqs = [TrainSequence([1], [2, 3], float(i), None) for i in range(10)]
    parts = minibatches(seqs, 4, seed=3)
    assert [len(p) for p in parts] == [4, 4, 2]
    assert sorted(s.advantage for p in parts for s in p) == list(range(10))
    assert minibatches(seqs, None, seed=3) == [seqs] and minibatches([], 4, seed=3) == [[]]
    assert parts == minibatches(seqs, 4, seed=3)  # seeded: the same partition every time


# ----------------------------------------------------------------------------- schedule
def _run_metrics(run):
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def test_one_step_per_rollout_equals_the_whole_rollout(tiny_dir, tmp_path):  # noqa: F811
    kw = dict(steps=2, eval_every=0)
    train(_cfg(tiny_dir, tmp_path / "a", **kw))  # today's default: the whole rollout
    train(_cfg(tiny_dir, tmp_path / "b", train_batch_size=8, **kw))  # 2 prompts x 4
    a, b = _weights(tmp_path / "a", 2), _weights(tmp_path / "b", 2)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    rows = _run_metrics(tmp_path / "b")
    assert all(r["optim/steps"] == 1 for r in rows if "optim/steps" in r)


def _seq_logprobs(model, s: TrainSequence) -> torch.Tensor:
    """log pi(response tokens) of one sequence from a plain full forward (T = 1)."""
    ids = torch.tensor([s.prompt_ids + s.response_ids])
    logits = model(ids).logits[0, len(s.prompt_ids) - 1 : -1].float()  # [L, V]
    return torch.log_softmax(logits, -1).gather(1, ids[0, len(s.prompt_ids):, None])[:, 0]


def test_k_optimizer_steps_match_a_plain_reference_loop(tiny_dir, tmp_path):  # noqa: F811
    from r1zero.config import derive
    from r1zero.train.trainer import start

    cfg = _cfg(tiny_dir, tmp_path / "run", train_batch_size=2, adam_eps=1e-2, lr=0.3,
               algorithm="dr_grpo", algo=ALGORITHMS["dr_grpo"], max_new_tokens=6)
    t = start(derive(cfg))
    g = torch.Generator().manual_seed(0)
    prompts = [t.tokenizer("What is 1 + 2?")["input_ids"], t.tokenizer("Hi there")["input_ids"]]
    seqs = [TrainSequence(prompts[i % 2], torch.randint(5, 200, (3 + i,), generator=g).tolist(),
                          adv, None) for i, adv in enumerate([1.0, -0.5, 0.75, -1.0, 0.25, 2.0])]
    ref = copy.deepcopy(t.learner.policy).float()
    opt = torch.optim.AdamW(ref.parameters(), lr=cfg.lr, betas=cfg.adam_betas, eps=cfg.adam_eps,
                            weight_decay=cfg.weight_decay)
    out = t.learner.update(seqs, step=0)
    assert out["optim/steps"] == 3

    # The reference: pi_old from the model before any step; then, per optimizer step of 2
    # responses, L = 1/2 sum_i sum_t max(-A r, -A clip(r, 0.8, 1.2)) / C, C = max_new_tokens.
    with torch.no_grad():
        old = {id(s): _seq_logprobs(ref, s) for s in seqs}
    for mini in minibatches(seqs, 2, derive_seed(cfg.seed, "minibatch", 0)):
        opt.zero_grad()
        total = 0.0
        for s in mini:
            ratio = torch.exp(_seq_logprobs(ref, s) - old[id(s)])
            pg = torch.maximum(-s.advantage * ratio, -s.advantage * ratio.clamp(0.8, 1.2))
            total = total + pg.sum() / cfg.max_new_tokens
        (total / len(mini)).backward()
        torch.nn.utils.clip_grad_norm_(ref.parameters(), cfg.max_grad_norm)
        opt.step()
    from r1zero.testing import tiny_model

    base = dict(tiny_model(seed=0)[0].named_parameters())
    with torch.no_grad():
        moved = max(float((q - base[n]).abs().max()) for n, q in ref.named_parameters())
        differ = max(float((p - q).abs().max())
                     for p, q in zip(t.learner.policy.parameters(), ref.parameters()))
    assert moved > 1e-3, "the reference did not move"
    # Packed micro-batches vs plain forwards: float summation order only.
    assert differ < 1e-3 * moved, (differ, moved)


def test_optim_steps_is_logged_on_every_step(tiny_dir, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=2, eval_every=0, train_batch_size=2))  # 8 -> 2 + 2 + 2 + 2
    rows = [r for r in _run_metrics(run) if r["step"] > 0]
    assert [r["optim/steps"] for r in rows] == [4, 4]


def test_all_filtered_step_still_takes_one_zero_gradient_step(tiny_dir, tmp_path):  # noqa: F811
    """Rewards that always agree: DAPO's filter drops every group, and the step takes the
    same zero-gradient optimizer step as an all-skipped one (one rule, optim/steps = 1)."""
    from r1zero.config import TaskConfig

    task = TaskConfig(name="tests.test_train_schedule:make_constant_task", num_train=20, num_test=3)
    for algo in ("dapo", "dr_grpo"):
        run = tmp_path / algo
        one_draw = replace(ALGORITHMS[algo], dynamic_sampling_draws=1)
        train(_cfg(tiny_dir, run, steps=1, eval_every=0, task=task, algorithm=algo, algo=one_draw))
        row = _run_metrics(run)[-1]
        assert row["optim/steps"] == 1 and row["optim/grad_norm"] == 0.0, algo


# ----------------------------------------------------------------------------- signals
def test_sigterm_finishes_the_step_and_saves_a_matching_checkpoint(tiny_dir, tmp_path, monkeypatch):  # noqa: F811
    real = learners.optimizer_step
    sent = []

    def step_then_signal(t, zero_grad=False):
        norm = real(t, zero_grad)
        if not sent:  # the signal lands right after the weights moved, before the counter
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)
        return norm

    monkeypatch.setattr(learners, "optimizer_step", step_then_signal)
    run = tmp_path / "stopped"
    with pytest.raises(SystemExit) as e:
        train(_cfg(tiny_dir, run, steps=3, eval_every=0, save_every=0))
    assert e.value.code == 130
    saved = sorted(p.name for p in (run / "checkpoints").glob("step_*"))
    assert saved == ["step_000001"]
    monkeypatch.setattr(learners, "optimizer_step", real)
    straight = tmp_path / "straight"
    train(_cfg(tiny_dir, straight, steps=1, eval_every=0))
    a, b = _weights(run, 1), _weights(straight, 1)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)
    assert signal.getsignal(signal.SIGTERM) is not None  # handlers restored


# ----------------------------------------------------------------------------- resume
def test_resume_keeps_the_runs_own_steps_and_drops_replayed_rows(tiny_dir, tmp_path):  # noqa: F811
    """A run killed after its last checkpoint: the steps past it are replayed on resume,
    and metrics.jsonl / rollouts/ hold each step once; the run's own step count stands."""
    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=3, eval_every=0, save_every=1, keep_checkpoints=5))
    # Simulate a kill after step 3 was logged but before its checkpoint was written.
    import shutil

    shutil.rmtree(run / "checkpoints" / "step_000003")
    (run / "checkpoints" / "latest").write_text("step_000002\n")
    # Python API: nothing given but resume (TrainConfig's default steps=200 is not "given").
    train(TrainConfig(resume=str(run), progress=False))
    steps = [r["step"] for r in _run_metrics(run)]
    assert steps == [1, 2, 3], steps  # step 3 ran twice, is logged once
    assert sorted(p.name for p in (run / "rollouts").glob("*.jsonl")) == [
        "step_000001.jsonl", "step_000002.jsonl", "step_000003.jsonl"]  # as metrics: 1-based
    saved = json.loads((run / "config.json").read_text())
    assert saved["steps"] == 3 and saved["resolved"]["backend"] == "hf"
    assert saved["resolved"]["device"] == "cpu" and "attn_implementation" in saved["resolved"]


def test_resume_with_a_conflicting_flag_names_it(tiny_dir, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=1, eval_every=0))
    with pytest.raises(ConfigError, match="--lr"):
        train(replace(TrainConfig(resume=str(run)), lr=0.5))
    with pytest.raises(ConfigError, match="--task.num-train|--task.num_train"):
        from r1zero.config import TaskConfig

        train(TrainConfig(resume=str(run), task=TaskConfig(num_train=7)))


def test_cli_resume_parses_against_the_saved_config(tiny_dir, tmp_path, monkeypatch):  # noqa: F811
    from r1zero import cli

    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=1, eval_every=0, lr=0.01))
    seen = {}
    monkeypatch.setattr("r1zero.train.trainer.train",
                        lambda cfg, given=None: seen.update(cfg=cfg, given=given))
    cli.cmd_train(["--resume", str(run), "--steps", "2"])
    assert seen["cfg"].steps == 2 and seen["cfg"].lr == 0.01  # the arith preset's lr did not leak
    from r1zero.config import derive, saved_config

    saved = saved_config(run)
    assert derive(seen["cfg"], given=seen["given"], saved=saved).steps == 2
    cli.cmd_train(["--resume", str(run), "--lr", "0.5"])
    with pytest.raises(ConfigError, match="--lr"):
        derive(seen["cfg"], given=seen["given"], saved=saved)
    cli.cmd_train(["--resume", str(run), "--algorithm", "grpo"])  # was silently dropped
    with pytest.raises(ConfigError, match="--algorithm"):
        derive(seen["cfg"], given=seen["given"], saved=saved)
    with pytest.raises(ConfigError, match="drop --preset"):
        cli.cmd_train(["--resume", str(run), "--preset", "math"])


# ----------------------------------------------------------------------------- DAPO
def test_overlong_penalty_by_hand():
    """L_max = 100, L_cache = 20: no penalty up to 80 tokens, a linear ramp to -1 at 100."""
    from r1zero.core.rewards import overlong_penalty

    got = overlong_penalty(torch.tensor([50, 80, 81, 90, 100, 120]), max_len=100, cache=20)
    assert got.tolist() == pytest.approx([0.0, 0.0, -0.05, -0.5, -1.0, -1.0])
    with pytest.raises(ValueError):
        overlong_penalty(torch.tensor([1]), max_len=10, cache=0)


def test_dapo_preset_is_the_published_recipe():
    d = ALGORITHMS["dapo"]
    assert (d.clip_low, d.clip_high, d.aggregation) == (0.2, 0.28, "token-mean")
    assert d.filter_zero_variance_groups and d.dynamic_sampling_draws > 1
    assert d.overlong_filter and d.overlong_buffer_frac == 0.2 and d.kl_beta == 0


def _completion(i, g, tokens, truncated=False):
    from r1zero.rollout.base import Completion

    return Completion(i, g, [1, 2], list(range(tokens)), "x", "length" if truncated else "stop")


def test_build_batch_keeps_mixed_groups_up_to_the_batch_and_filters_overlong():
    from types import SimpleNamespace

    from r1zero.train.trainer import build_batch

    cfg = SimpleNamespace(group_size=2, prompts_per_step=2, truncation="zero", algo=ALGORITHMS["dapo"])
    t = SimpleNamespace(cfg=cfg)
    # 4 groups: agree, mixed, mixed, mixed -> the first two mixed groups are kept.
    rewards = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0])
    comps = [_completion(i // 2, i % 2, 3, truncated=(i == 3)) for i in range(8)]
    seqs = build_batch(t, comps, torch.arange(8, dtype=torch.float), rewards, [None] * 8)
    # group 1 = samples 2, 3 (3 is truncated: out of the loss), group 2 = samples 4, 5
    assert [s.advantage for s in seqs] == [2.0, 4.0, 5.0]


def test_dynamic_sampling_draws_until_the_cap_when_every_group_agrees(tiny_dir, tmp_path):  # noqa: F811
    from r1zero.config import TaskConfig

    task = TaskConfig(name="tests.test_train_schedule:make_constant_task", num_train=20, num_test=3)
    algo = replace(ALGORITHMS["dapo"], dynamic_sampling_draws=3)
    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=1, eval_every=0, task=task, algorithm="dapo", algo=algo))
    row = _run_metrics(run)[-1]
    assert row["rollout/draws"] == 3 and row["rollout/groups_kept"] == 0
    assert row["optim/steps"] == 1 and row["optim/grad_norm"] == 0.0


def test_dynamic_sampling_stops_once_the_batch_is_full(tiny_dir, tmp_path):  # noqa: F811
    run = tmp_path / "run"
    algo = replace(ALGORITHMS["dapo"], dynamic_sampling_draws=5, overlong_buffer_frac=0.0)
    train(_cfg(tiny_dir, run, steps=2, eval_every=0, algorithm="dapo", algo=algo))
    rows = [r for r in _run_metrics(run) if r["step"] > 0]
    for r in rows:  # the parity reward mixes most groups: few redraws, a full batch
        assert 1 <= r["rollout/draws"] <= 5 and r["rollout/groups_kept"] <= 2
        assert r["rollout/draws"] == 5 or r["rollout/groups_kept"] == 2


class _ConstantTask(ParityTask):
    """Every response gets reward 0: every group agrees."""

    name = "constant"

    def verify(self, response, problem, *, template):
        from r1zero.tasks import TaskVerdict

        return TaskVerdict(0.0, False, True, "wrong_value")


def make_constant_task(cfg):
    return _ConstantTask(cfg)


def test_transformers_backend_sync_copies_nothing(tiny_dir, tmp_path):  # noqa: F811
    """Under --precision bf16 the transformers backend samples from the bf16 compute copy,
    which each optimizer step refreshes once; the sync after it has nothing to copy."""
    from r1zero.config import derive
    from r1zero.train.trainer import start

    t = start(derive(_cfg(tiny_dir, tmp_path / "run", precision="bf16")))
    lrn = t.learner
    assert t.shares_weights and t.backend.model is lrn.compute
    t.backend.load_weights = lambda *a, **k: (_ for _ in ()).throw(AssertionError("copied"))
    trainer_mod.sync(t)  # no copy
    for p in lrn.policy.parameters():
        p.grad = torch.ones_like(p)
    learners.optimizer_step(lrn)
    for c, m in zip(lrn.compute.parameters(), lrn.policy.parameters()):
        assert torch.equal(c, m.to(torch.bfloat16))  # the copy the sampler uses is current


# ----------------------------------------------------------------------------- online DPO
def _dpo_update(model_dir, ref_model, micro_batch_tokens):
    from r1zero.learner.local import run_update
    from r1zero.models import load_model
    from tests.helpers import local_learner
    from tests.test_cluster_fsdp import _sequences

    cfg = TrainConfig(algorithm="online_dpo", algo=ALGORITHMS["online_dpo"], precision="fp32",
                      lr=1.0, max_grad_norm=0.0, micro_batch_tokens=micro_batch_tokens, max_new_tokens=8)
    model, tok = load_model(model_dir)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    lrn = local_learner(cfg, model, optimizer=opt, ref=ref_model, pad=tok.pad_token_id)
    seqs = _sequences(tok, dpo=True)
    part = run_update(lrn, seqs, step=0)
    return model, seqs, part


def test_online_dpo_update_is_the_dpo_gradient(tiny_dir):  # noqa: F811
    """One SGD step (lr 1, no clipping) of the learner moves the weights by minus the
    gradient of mean_p softplus(−β[(s_c − q_c) − (s_r − q_r)]), computed here directly by
    autograd from full forward passes; micro-batching does not change it."""
    from r1zero.models import load_model

    ref, _ = load_model(tiny_dir)
    with torch.no_grad():  # a reference that differs from the initial policy
        for p in ref.parameters():
            p.mul_(0.9)
    ref.requires_grad_(False)
    model, seqs, part = _dpo_update(tiny_dir, ref, micro_batch_tokens=4096)
    small, _, _ = _dpo_update(tiny_dir, ref, micro_batch_tokens=64)

    start, _ = load_model(tiny_dir)

    def seq_logprob(m, s):
        ids = torch.tensor([s.prompt_ids + s.response_ids])
        lp = torch.log_softmax(m(ids).logits[0, :-1].float(), -1).gather(-1, ids[0, 1:, None])[:, 0]
        return lp[len(s.prompt_ids) - 1:].sum()

    s = torch.stack([seq_logprob(start, q) for q in seqs])
    with torch.no_grad():
        q = torch.stack([seq_logprob(ref, x) for x in seqs])
    beta = ALGORITHMS["online_dpo"].dpo_beta
    z = beta * ((s[0::2] - q[0::2]) - (s[1::2] - q[1::2]))
    torch.nn.functional.softplus(-z).mean().backward()
    moved = 0.0
    for (name, p0), p1, p2 in zip(start.named_parameters(), model.parameters(), small.parameters()):
        torch.testing.assert_close(p1.detach() - p0.detach(), -p0.grad, rtol=1e-4, atol=1e-6, msg=name)
        torch.testing.assert_close(p2.detach(), p1.detach(), rtol=0, atol=1e-6, msg=name)
        moved = max(moved, float(p0.grad.abs().max()))
    assert moved > 1e-4
    assert float(part["totals"]["dpo_pairs"]) == 4
    assert float(part["totals"]["dpo_loss_sum"]) == pytest.approx(float(torch.nn.functional.softplus(-z.detach()).sum()), rel=1e-4)


def test_online_dpo_batch_is_best_and_worst_of_each_group():
    from types import SimpleNamespace

    from r1zero.train.trainer import build_batch

    t = SimpleNamespace(cfg=SimpleNamespace(group_size=3, prompts_per_step=3, truncation="zero",
                                            algo=ALGORITHMS["online_dpo"]))
    rewards = torch.tensor([0.0, 1.0, 0.5,   1.0, 1.0, 1.0,   0.0, 0.0, 1.0])
    comps = [_completion(i // 3, i % 3, 2 + i) for i in range(9)]
    seqs = build_batch(t, comps, torch.zeros(9), rewards, [None] * 9)
    assert [(len(s.response_ids) - 2, s.advantage, s.pair) for s in seqs] == [
        (1, 1.0, 0), (0, -1.0, 0), (8, 1.0, 1), (6, -1.0, 1)]  # the tied group gives no pair


@pytest.mark.parametrize("name", ["gspo", "raft", "raft_pp", "online_dpo", "ppo"])
def test_new_algorithms_train_two_steps(tiny_dir, tmp_path, name):  # noqa: F811
    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=2, eval_every=0, save_every=0, algorithm=name, lr=0.05))
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r["optim/grad_norm"]) for r in rows)
    if name == "online_dpo":
        assert any(r.get("dpo/pairs", 0) > 0 for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ppo", "online_dpo", "raft", "gspo"])
def test_new_algorithms_on_the_packaged_model(tmp_path, name):
    """The output contract: `r1zero train --preset arith --algorithm NAME --steps 2`."""
    import subprocess
    import sys

    run = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "r1zero", "train", "--preset", "arith", "--algorithm", name,
                    "--steps", "2", "--eval-every", "0", "--backend", "hf", "--no-progress",
                    "--run-dir", str(run)], check=True)
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "optim/grad_norm" in r] == [1, 2]
