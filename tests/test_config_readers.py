"""Flags the run would not read are errors (config/readers.py), and --train-batch-size must
divide the rollout it cuts: both checked by `derive`, before anything loads."""

from __future__ import annotations

import dataclasses

import pytest

from r1zero.config import (
    PRESETS,
    READERS,
    ConfigError,
    TrainConfig,
    config_diff,
    derive,
    resolve_algorithm,
    with_algorithm,
)
from r1zero.config.derive import config_from_dict


def _asked(preset: str = "arith", algorithm: str | None = None, **changes) -> tuple[TrainConfig, set[str]]:
    """What the CLI hands `derive`: the preset with typed flags (dotted names) changed, and
    the set of those names (``given``)."""
    base = PRESETS[preset]()
    base = with_algorithm(base, algorithm) if algorithm else resolve_algorithm(base)
    cfg = dataclasses.asdict(base)
    for dotted, value in changes.items():
        *path, leaf = dotted.split("__")
        node = cfg
        for part in path:
            node = node[part]
        node[leaf] = value
    asked = config_from_dict(TrainConfig, cfg)
    return asked, set(config_diff(asked, base)) | ({"algorithm"} if algorithm else set())


@pytest.mark.parametrize("preset, algorithm, changes, flag, decided", [
    ("arith", None, {"task__train_path": "bad.jsonl"}, "--task.train-path", "--task.name is 'arithmetic'"),
    ("math", None, {"task__train_path": "t.jsonl", "task__digits": 3}, "--task.digits", "'math'"),
    ("math", None, {"task__train_path": "t.jsonl", "task__num_test": 5}, "--task.num-test", "'math'"),
    ("countdown", None, {"task__extract": "auto"}, "--task.extract", "'countdown'"),
    ("arith", None, {"backend": "hf", "vllm_dtype": "float32"}, "--vllm-dtype", "--backend is 'hf'"),
    ("arith", None, {"device": "cpu", "vllm_gpu_memory_utilization": 0.5},
     "--vllm-gpu-memory-utilization", "--device is 'cpu'"),
    ("arith", None, {"critic__lr": 1e-5}, "--critic.lr", "--algorithm is 'dr_grpo'"),
    ("arith", "grpo", {"algo__dpo_beta": 0.2}, "--algo.dpo-beta", "--algo.objective is 'pg'"),
    ("arith", None, {"algo__kl_estimator": "k1"}, "--algo.kl-estimator", "--algo.kl-beta is 0.0"),
    ("arith", None, {"reward__cosine_exceed": -5.0}, "--reward.cosine-exceed", "--reward.shaping is ()"),
    ("arith", None, {"judge__base_url": "http://x/v1"}, "--judge.base-url", "--judge.model is None"),
    ("arith", None, {"judge__audit": 3}, "--judge.audit", "never by `r1zero train`"),
    ("arith", None, {"cluster__num_cpus": 2}, "--cluster.num-cpus", "--cluster.learners is 0"),
    ("arith", None, {"eval_every": 0, "eval_max_new_tokens": 64}, "--eval-max-new-tokens",
     "--eval-every is 0"),
    ("arith", None, {"wandb_project": "x"}, "--wandb-project", "--wandb is False"),
])
def test_a_flag_the_run_does_not_read_is_an_error_naming_it(preset, algorithm, changes, flag, decided):
    asked, given = _asked(preset, algorithm, **changes)
    with pytest.raises(ConfigError) as e:
        derive(asked, given=given)
    msg = str(e.value)
    assert msg.startswith(f"{flag} has no effect in this run") and decided in msg
    assert f"Drop {flag}" in msg and "\n" not in msg


@pytest.mark.parametrize("preset, algorithm, changes", [
    ("arith", None, {"task__digits": 3}),  # the arithmetic task reads it
    ("math", None, {"task__train_path": "t.jsonl", "task__strict_data": True}),
    ("arith", None, {"task__name": "tests.somewhere:factory", "task__train_path": "x"}),  # a user task
    ("arith", None, {"backend": "auto", "vllm_dtype": "float32"}),  # auto may pick vLLM
    ("arith", "ppo", {"critic__lr": 1e-5, "algo__gae_lambda": 0.95}),
    ("arith", "online_dpo", {"algo__dpo_beta": 0.2}),
    ("arith", None, {"algo__kl_beta": 0.01, "algo__kl_estimator": "k1"}),
    ("arith", None, {"reward__shaping": ("cosine",), "reward__cosine_exceed": -5.0}),
    ("arith", None, {"judge__model": "j", "judge__base_url": "http://x/v1", "task__name": "math",
                     "task__train_path": "t.jsonl"}),
    ("arith", None, {"wandb": True, "wandb_project": "x"}),
])
def test_a_flag_the_run_reads_passes(preset, algorithm, changes):
    asked, given = _asked(preset, algorithm, **changes)
    derive(asked, given=given)


def test_several_unread_flags_are_named_in_one_line():
    asked, given = _asked(critic__lr=1e-5, wandb_project="x")
    with pytest.raises(ConfigError, match=r"^2 flags have no effect in this run: --critic.lr is read "
                       r"only by .*; --wandb-project is read only by"):
        derive(asked, given=given)


def test_only_typed_flags_are_checked():
    """A preset's own values are not the user's: the math preset is not "given" its task."""
    asked, _ = _asked("math", task__train_path="t.jsonl")
    derive(asked, given={"task.train_path"})


def test_every_reader_row_names_real_fields():
    cfg = TrainConfig()
    for row in READERS:
        for dotted in (*row.fields, *row.decided_by):
            obj = cfg
            for part in dotted.split("."):
                assert hasattr(obj, part), dotted
                obj = getattr(obj, part)


def test_presets_from_python_read_every_field_they_set():
    """`train(PRESETS[name]())` from Python takes every field that differs from TrainConfig's
    defaults as given: no preset may set a field its own run ignores."""
    for name, make in PRESETS.items():
        cfg = make()
        if cfg.task.name in ("math", "gsm8k"):
            cfg = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, train_path="t.jsonl"))
        derive(cfg, given=config_diff(cfg, TrainConfig()))


# ----------------------------------------------------------------------------- train_batch_size
@pytest.mark.parametrize("size, prompts, group, algorithm, ok", [
    (None, 8, 8, None, True),     # the whole rollout
    (4, 1, 8, None, True),        # 8 = 4 + 4
    (3, 1, 8, None, False),       # 8 = 3 + 3 + 2
    (8, 1, 8, None, True),
    (16, 1, 8, None, True),       # >= the rollout: one step over all of it
    (128, 1, 2, None, True),      # the math preset's 128 with a tiny CPU rollout of 2
    (2, 3, 8, "online_dpo", True),   # DPO trains 2 per prompt: 6 = 2 + 2 + 2
    (4, 3, 8, "online_dpo", False),  # 6 = 4 + 2
])
def test_train_batch_size_must_divide_the_rollout(size, prompts, group, algorithm, ok):
    cfg = resolve_algorithm(TrainConfig(train_batch_size=size, prompts_per_step=prompts,
                                        group_size=group, algorithm=algorithm or "dr_grpo"))
    if ok:
        cfg.validate()
        return
    with pytest.raises(ConfigError, match=rf"--train-batch-size {size} does not divide the rollout "
                       rf"of {cfg.rollout_responses} responses"):
        cfg.validate()


def test_train_batch_size_message_shows_the_steps_and_the_divisors():
    with pytest.raises(ConfigError) as e:
        TrainConfig(train_batch_size=3, prompts_per_step=1, group_size=8).validate()
    msg = str(e.value)
    assert "3 + 3 + 2" in msg and "(1, 2, 4, 8)" in msg and "leave it unset" in msg
