"""Named configs: `r1zero train --preset NAME` starts from one of these, and flags override
it. Each is a `TrainConfig` whose departures from the reference recipe are said in its
docstring (docs/algorithms.md has the full list); the docstring's first line is the
preset's one-line summary in `r1zero train --help`."""

from __future__ import annotations

import typing
from typing import Any

from r1zero.config.sections import TaskConfig
from r1zero.config.train_config import TrainConfig


def _preset_arith() -> TrainConfig:
    """The CPU demo (default): SmolLM2-135M learns 2-digit addition in minutes.

    Two departures from the reference recipe, both measured (docs/benchmarks.md): the
    4-bit packaged model almost never puts a number inside \\boxed{} (0/64 greedy, 0.4%
    sampled), so an unboxed answer is read too (extract=auto; the box still
    wins when present); and rollouts use T = 0.7, where 53% of groups hold a correct
    sample against 23% at T = 1.0 (a group with no correct sample teaches nothing).

    16 steps with evaluations at 0, 8 and 16 (it was 24 steps, evaluated every 6): on a CPU
    without native bf16 (fp32 everywhere, ~3x slower) the demo must still finish in about
    ten minutes, and held-out accuracy has made most of its gain by then (0.19 -> 0.55 at
    step 6 and 0.59 at step 12 in the 24-step runs; docs/benchmarks.md).

    Seed 1, not 0: 16 steps of 8 x 8 samples are a chaotic process. Measured 2026-12-04
    (bf16 CPU, this preset): seed 0 collapses onto short wrong answers (held-out 0.20 ->
    0.20 -> 0.17 at steps 0 / 8 / 16), seed 1 learns (0.20 -> 0.69 -> 0.76), seed 2 too
    (0.20 -> 0.59 at step 8). The demo should show what the method does; the seed study is
    in docs/benchmarks.md, and --seed N runs any other."""
    return TrainConfig(
        task=TaskConfig(name="arithmetic", digits=2, operations=("+",), num_train=2000,
                        num_test=100, extract="auto"),
        template="chat",
        steps=16,
        prompts_per_step=8,
        group_size=8,
        max_new_tokens=96,
        temperature=0.7,
        lr=2e-5,
        eval_every=8,
        save_every=0,
        seed=1,
        # 2,048-token micro-batches: on this CPU the update is as fast as with 4,096 (7.0 vs
        # 8.0 s measured) and its activations peak 2.7 GiB lower (docs/benchmarks.md, Memory).
        micro_batch_tokens=2048,
    )


def _preset_code_cpu() -> TrainConfig:
    """The code task on a 2-core CPU, every response's unit tests run in the sandbox: the
    packaged SmolLM2-135M-Instruct writes one-line Python functions (generated: add k,
    count k in a list, ...; tasks/code_generated.py), rewarded by the fraction of their
    three asserts passed, Dr. GRPO. A demo of the whole loop with real executions, not of
    learning to code: the 4-bit 135M model rarely passes (docs/envs.md says what a run
    shows). Train on MBPP instead with --task.train-path PATH/mbpp.jsonl."""
    return TrainConfig(
        task=TaskConfig(name="code", train_path="generated", test_path="generated", num_train=72,
                        num_test=16),
        template="chat",
        steps=8,
        prompts_per_step=8,
        group_size=8,
        max_new_tokens=96,
        temperature=0.7,
        lr=2e-5,
        eval_every=4,
        save_every=0,
        micro_batch_tokens=2048,
    )


def _gpu_recipe(**fields: Any) -> TrainConfig:
    """The reference recipe's update, as oat runs it (understand-r1-zero, oat 0.1.3): Dr.
    GRPO, G = 8, T = 1.0, top-p 1, one PPO epoch, no KL; optimizer steps of 128 responses
    (8 per rollout of 128 x 8); AdamW lr 1e-6 constant, betas (0.9, 0.95), eps 1e-8, no
    weight decay, grad-norm clip 1.0. Task-specific fields as given; meant for a GPU with
    vLLM. Remaining departures: docs/algorithms.md."""
    return TrainConfig(steps=200, group_size=8, lr=1e-6, lr_schedule="constant",
                       adam_betas=(0.9, 0.95), adam_eps=1e-8, weight_decay=0.0,
                       max_grad_norm=1.0, train_batch_size=128, eval_every=16, **fields)


def _preset_countdown() -> TrainConfig:
    """Countdown (TinyZero), r1 template, 0 / 0.1 / 1 reward; GPU, ~1.5B+ model.

    TinyZero / pilot-study Countdown with the r1 template and the 0 / 0.1 / 1 reward.
    Realistic with a ~1.5B+ model."""
    return _gpu_recipe(
        task=TaskConfig(name="countdown", num_numbers=(3, 4), num_train=20000, num_test=200),
        template="r1", prompts_per_step=64, max_new_tokens=1024,
    )


def _preset_gsm8k() -> TrainConfig:
    """GSM8K word problems, qwen_math template (needs --task.train-path, --task.test-path)."""
    return _gpu_recipe(task=TaskConfig(name="gsm8k"), template="qwen_math",
                       prompts_per_step=64, max_new_tokens=1024)


def _preset_math() -> TrainConfig:
    """The paper's Oat-Zero recipe on MATH problems (needs --task.train-path); GPU.

    MATH-level problems, qwen_math template, Dr. GRPO, 128 prompts x 8 samples, 3000
    tokens, lr 1e-6; --task.test-path names the held-out set (MATH500 in the paper)."""
    return _gpu_recipe(task=TaskConfig(name="math"), template="qwen_math",
                       prompts_per_step=128, max_new_tokens=3000)


PRESETS: dict[str, typing.Callable[[], TrainConfig]] = {
    "arith": _preset_arith,
    "code-cpu": _preset_code_cpu,
    "countdown": _preset_countdown,
    "gsm8k": _preset_gsm8k,
    "math": _preset_math,
}


def preset_summary(name: str) -> str:
    """The one-line summary of a preset: the first line of its factory's docstring."""
    return (PRESETS[name].__doc__ or "").strip().splitlines()[0]
