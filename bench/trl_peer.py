"""TRL peer for the speed comparison: TRL's ``GRPOTrainer`` on the same CPU workload as
r1zero's benchmark, timed per optimizer step.

Setting (everything else is TRL's default): chat prompts "What is A + B? Put your final
answer within \\boxed{}." on two-digit additions; reward 1 if the last ``\\boxed{}`` holds
A + B, else 0 (a deliberately simple check local to this file; r1zero's grader is
stricter); Dr. GRPO (``loss_type="dr_grpo"``, ``scale_rewards="none"``, ``beta=0``);
8 prompts x 8 samples = 64 completions and exactly one optimizer update per step;
at most 96 new tokens; temperature 1, top-p 1; lr 1e-6; CPU.

Usage::

    python bench/trl_peer.py MODEL_DIR [--steps 3] [--bf16] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from typing import Any

QUESTION = "What is {a} + {b}? Put your final answer within \\boxed{{}}."


def addition_dataset(n: int, seed: int) -> Any:
    """``n`` two-digit addition prompts in TRL's conversational format, with the answer
    as an extra column (TRL passes extra columns to reward functions by name)."""
    from datasets import Dataset

    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        rows.append({
            "prompt": [{"role": "user", "content": QUESTION.format(a=a, b=b)}],
            "answer": str(a + b),
        })
    return Dataset.from_list(rows)


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}``, braces matched; None if absent or unclosed."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j].strip()
    return None


class CountingReward:
    """Reward 1.0 if the last boxed answer equals the gold sum, else 0.0. Also records
    how many completions each call scored, to check the batch geometry."""

    __name__ = "boxed_sum"  # TRL names reward metrics after the function

    def __init__(self) -> None:
        self.batch_sizes: list[int] = []

    def __call__(self, completions: list[list[dict]], answer: list[str], **_: Any) -> list[float]:
        self.batch_sizes.append(len(completions))
        texts = [c[-1]["content"] for c in completions]  # conversational: list of messages
        return [float(last_boxed(t) == gold) for t, gold in zip(texts, answer)]


def _step_timer() -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Wall time of each optimizer step: generation, scoring, forward/backward, update."""

        def __init__(self) -> None:
            self.durations: list[float] = []
            self._t0 = 0.0

        def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self._t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201
            self.durations.append(time.perf_counter() - self._t0)

    return StepTimer()


def grpo_config(
    output_dir: str, *, steps: int, num_generations: int, prompts_per_step: int,
    max_new_tokens: int, bf16: bool, seed: int,
) -> Any:
    """The benchmark's GRPOConfig. Batch geometry in TRL 1.16: ``per_device_train_batch_size``
    counts completions, not prompts; with ``gradient_accumulation_steps=1`` TRL derives
    ``steps_per_generation=1`` and ``generation_batch_size = 64``, i.e. one generation
    round of 8 prompts x 8 samples feeds exactly one optimizer update."""
    from trl import GRPOConfig

    completions = prompts_per_step * num_generations
    return GRPOConfig(
        output_dir=output_dir,  # nothing is saved there (save_strategy="no")
        loss_type="dr_grpo",
        scale_rewards="none",  # TRL 1.16 spelling; False is mapped to "none" too
        beta=0.0,
        num_generations=num_generations,
        per_device_train_batch_size=completions,
        gradient_accumulation_steps=1,
        num_iterations=1,
        max_completion_length=max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        learning_rate=1e-6,
        use_cpu=True,
        bf16=bf16,
        report_to="none",
        logging_steps=1,
        save_strategy="no",
        max_steps=steps,
        seed=seed,
    )


def run_trl(
    model_dir: str,
    *,
    steps: int = 3,
    prompts_per_step: int = 8,
    num_generations: int = 8,
    max_new_tokens: int = 96,
    bf16: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Train ``steps`` optimizer steps with TRL on ``model_dir`` and return timings.

    ``s_per_step`` is the median over steps after the first (which pays for lazy
    initialisation and allocator warm-up); ``s_per_step_all`` is the mean over all steps.
    With ``steps=1`` both are that one step. ``peak_rss_gb`` is the peak of the whole
    process: call this in a fresh process (e.g. via ``__main__``) for a clean figure.
    """
    import trl
    from trl import GRPOTrainer

    reward, timer = CountingReward(), _step_timer()
    with tempfile.TemporaryDirectory(prefix="r1zero_trl_peer_") as out_dir:
        args = grpo_config(
            out_dir, steps=steps, num_generations=num_generations,
            prompts_per_step=prompts_per_step, max_new_tokens=max_new_tokens, bf16=bf16,
            seed=seed,
        )
        trainer = GRPOTrainer(
            model=model_dir,
            reward_funcs=reward,
            args=args,
            train_dataset=addition_dataset(max(steps * prompts_per_step, 64), seed),
            callbacks=[timer],
        )
        trainer.train()

    durations = timer.durations
    steady = durations[1:] or durations
    s_per_step = statistics.median(steady)
    completions = prompts_per_step * num_generations
    return {
        "s_per_step": s_per_step,
        "s_per_step_all": statistics.fmean(durations),
        "completions_per_s": completions / s_per_step,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "trl_version": trl.__version__,
        "bf16": bf16,
        # Geometry as observed, not as configured: completions scored per generation
        # round and optimizer updates done. Expect [64] * steps and `steps`.
        "completions_per_reward_call": reward.batch_sizes,
        "optimizer_steps": trainer.state.global_step,
        "step_durations_s": durations,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_dir", help="local Hugging Face model directory")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--prompts-per-step", type=int, default=8)
    parser.add_argument("--num-generations", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the result to this file")
    a = parser.parse_args(argv)
    result = run_trl(
        a.model_dir, steps=a.steps, prompts_per_step=a.prompts_per_step,
        num_generations=a.num_generations, max_new_tokens=a.max_new_tokens,
        bf16=a.bf16, seed=a.seed,
    )
    text = json.dumps(result, indent=2)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
