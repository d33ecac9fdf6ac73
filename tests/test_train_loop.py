"""End-to-end training on a tiny random model: artefacts, resume, micro-batch invariance."""

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from r1zero.config import ConfigError, TaskConfig, TrainConfig
from r1zero.tasks import TaskVerdict
from r1zero.testing import tiny_model
from r1zero.train.trainer import prompts_for_step, train


class ParityTask:
    """Arithmetic prompts with a reward a random model can earn (even-length text), so
    advantages are non-zero and the update is not trivially the identity."""

    name = "parity"
    default_template = "chat"

    def __init__(self, cfg):
        from r1zero.tasks import get_task

        self.inner = get_task(replace(cfg, name="arithmetic"))

    def problems(self, split):
        return self.inner.problems(split)

    def verify(self, response, problem, *, template):
        ok = len(response) % 2 == 0
        return TaskVerdict(float(ok), ok, True, "correct" if ok else "wrong_value")


def make_parity_task(cfg):
    return ParityTask(cfg)


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny")
    model, tok = tiny_model(seed=0)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


def _cfg(model_dir, run_dir, **kw):
    base = TrainConfig(
        model=model_dir,
        task=TaskConfig(name="tests.test_train_loop:make_parity_task", num_train=20, num_test=3),
        template="chat",
        steps=2,
        prompts_per_step=2,
        group_size=4,
        max_new_tokens=6,
        lr=1e-3,
        backend="hf",
        precision="fp32",
        eval_every=1,
        save_every=1,
        keep_checkpoints=5,
        run_dir=str(run_dir),
        progress=False,
        device="cpu",
        truncation="keep",  # the random model never stops; keep its parity rewards
    )
    return replace(base, **kw)


def _weights(run_dir, step):
    """A checkpoint's weights: one model.safetensors (one process) or the files DCP's
    Hugging Face writer consolidates (learner ranks); both are HF layouts."""
    out = {}
    for f in sorted((run_dir / "checkpoints" / f"step_{step:06d}").glob("*.safetensors")):
        out.update(load_file(str(f)))
    assert out, f"no weights in step {step} of {run_dir}"
    return out


def test_config_error_before_any_model_load(monkeypatch, tmp_path):
    import r1zero.models

    def boom(*a, **k):
        raise AssertionError("model loaded before the config was validated")

    monkeypatch.setattr(r1zero.models, "load_model", boom)
    with pytest.raises(ConfigError, match="group_size"):
        train(_cfg("x", tmp_path, group_size=0))
    with pytest.raises(ConfigError, match="train-path"):
        train(_cfg("x", tmp_path, task=TaskConfig(name="math")))


def test_prompt_order_is_a_pure_function_of_step():
    a = [prompts_for_step(10, s, 4, seed=1) for s in range(5)]
    assert a == [prompts_for_step(10, s, 4, seed=1) for s in range(5)]
    first_epoch = sum(a[:2], []) + a[2][:2]  # 10 draws = one permutation
    assert sorted(first_epoch) == list(range(10))


def assert_one_step_convention(run) -> None:
    """Metrics rows, rollout files and their records, checkpoints and `r1zero analyze` number
    the steps alike: N = the N-th step trained (1-based; metrics' step 0 is the evaluation of
    the untouched model). Before: rollout files and records counted from 0."""
    from r1zero.analysis.run import run_analyze_run

    trained = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    trained = [s for s in trained if s > 0]
    files = sorted(int(p.stem.removeprefix("step_")) for p in (run / "rollouts").glob("step_*.jsonl"))
    assert files == trained == [1, 2]
    for n in files:
        rows = (run / "rollouts" / f"step_{n:06d}.jsonl").read_text().splitlines()
        assert {json.loads(x)["step"] for x in rows} == {n}
    checkpoints = sorted(int(p.name.removeprefix("step_")) for p in (run / "checkpoints").glob("step_*"))
    assert checkpoints == trained
    assert sorted(run_analyze_run(str(run))["steps"]) == trained


def test_end_to_end_artifacts(tiny_dir, tmp_path, capsys):
    run = tmp_path / "run"
    train(_cfg(tiny_dir, run))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2]
    for key in ("reward/mean", "rollout/len_mean", "loss/total", "optim/grad_norm", "perf/step_s",
                "policy/entropy", "eval/accuracy"):
        assert key in records[-1], key
    rollouts = (run / "rollouts" / "step_000001.jsonl").read_text().splitlines()
    assert len(rollouts) == 8 and {"response", "reward", "correct", "length"} <= set(json.loads(rollouts[0]))
    assert_one_step_convention(run)
    assert (run / "config.json").exists() and (run / "run_info.json").exists()
    assert (run / "plots").is_dir()
    assert "heldout_accuracy: " in capsys.readouterr().out.strip().splitlines()[-1]


def test_resume_continues_the_same_curve(tiny_dir, tmp_path):
    straight = tmp_path / "straight"
    train(_cfg(tiny_dir, straight, steps=2))
    resumed = tmp_path / "resumed"
    train(_cfg(tiny_dir, resumed, steps=1))
    train(_cfg(tiny_dir, resumed, steps=2, resume=str(resumed)))
    a, b = _weights(straight, 2), _weights(resumed, 2)
    assert any(not torch.equal(a[n], _weights(straight, 1)[n]) for n in a)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)


def test_micro_batching_does_not_change_the_update(tiny_dir, tmp_path):
    one = tmp_path / "one"
    many = tmp_path / "many"
    # A large Adam eps makes the step proportional to the gradient (the first Adam step is
    # otherwise ~lr*sign(g), which turns float noise in near-zero gradients into full steps).
    kw = dict(steps=1, eval_every=0, adam_eps=1e-2, lr=1.0)
    train(_cfg(tiny_dir, one, micro_batch_tokens=100_000, **kw))
    train(_cfg(tiny_dir, many, micro_batch_tokens=64, **kw))
    a, b = _weights(one, 1), _weights(many, 1)
    start = tiny_model(seed=0)[0].state_dict()
    moved = max(float((a[n] - start[n]).abs().max()) for n in a)
    differ = max(float((a[n] - b[n]).abs().max()) for n in a)
    # Float summation order differs between the two layouts; a normaliser computed per
    # micro-batch instead of per step would differ by the order of the step itself.
    assert moved > 1e-3, "the step did not move the weights"
    assert differ < 1e-3 * moved, (differ, moved)


def test_bf16_run_checkpoints_fp32_master_and_resumes_exactly(tiny_dir, tmp_path):
    """precision=bf16: forward/backward on a bf16 copy, fp32 master weights in checkpoints,
    so a resumed run still reproduces the straight one."""
    kw = dict(precision="bf16", eval_every=0)
    straight = tmp_path / "straight"
    train(_cfg(tiny_dir, straight, steps=2, **kw))
    resumed = tmp_path / "resumed"
    train(_cfg(tiny_dir, resumed, steps=1, **kw))
    train(_cfg(tiny_dir, resumed, steps=2, resume=str(resumed), **kw))
    a, b = _weights(straight, 2), _weights(resumed, 2)
    assert all(v.dtype == torch.float32 for v in a.values())
    start = tiny_model(seed=0)[0].state_dict()
    # lr 1e-3 moves weights by far less than bf16's spacing: only an fp32 master keeps them.
    assert any(not torch.equal(a[n], start[n]) for n in a)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_kl_entropy_bonus_and_ppo_epochs_run_on_packed_batches(tiny_dir, tmp_path, precision):
    """The reference model, the entropy bonus (entropy with gradient) and PPO epochs (old
    log-probs) all go through the packed learner path."""
    from r1zero.core.algorithms import ALGORITHMS

    algo = replace(ALGORITHMS["grpo"], kl_beta=0.04, entropy_coef=0.01)
    run = tmp_path / "run"
    train(_cfg(tiny_dir, run, steps=1, eval_every=0, epochs=2, algo=algo, precision=precision))
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["policy/kl_ref"] >= 0 and last["policy/entropy"] > 0
    assert "loss/kl" in last and torch.isfinite(torch.tensor(last["loss/total"]))
