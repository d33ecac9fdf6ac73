"""`SFTConfig`: the flags of `r1zero sft`, and the `TrainConfig` its learner is built from
(the same factory, micro-batches, precision, LoRA and cluster ranks as `r1zero train`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from r1zero.config.sections import ClusterConfig, ConfigError, LoraConfig
from r1zero.config.train_config import TrainConfig
from r1zero.core.algorithms import RAFT

PROMPT_FIELDS = ("prompt", "question", "problem", "input")
RESPONSE_FIELDS = ("response", "completion", "output", "solution")


@dataclass
class SFTConfig:
    """`r1zero sft`: supervised fine-tuning on (prompt, response) pairs, e.g. reasoning traces
    before RL (`r1zero train --init-from RUN_DIR`). Each prompt is rendered with the
    template, as `train` renders it; the loss is −log π of the response tokens only (the
    prompt's tokens carry weight 0), averaged over the step's response tokens."""

    data: str
    """(prompt, response) records: JSONL, JSON, Parquet, an Arrow directory or a hub name."""
    model: str = "smollm2-135m-instruct"
    """Hub id, local HF directory, or a packaged model name."""
    prompt_field: str | None = None
    """Field holding the question (auto: prompt, question, problem, input)."""
    response_field: str | None = None
    """Field holding the target response (auto: response, completion, output, solution)."""
    split: str | None = None
    """Split of a hub dataset or DatasetDict directory (None: train, else the only one)."""
    template: str = "chat"
    """Prompt template, as in `r1zero train`: r1, qwen_math, no, chat, or a string with
    {question}. Use the one the RL run will use."""
    steps: int = 100
    """Optimizer steps (examples are read in seeded epochs, as `train` reads problems)."""
    batch_size: int = 32
    """Examples per optimizer step."""
    max_response_tokens: int = 2048
    """Longer responses are cut to this many tokens (their end-of-turn token then missing)."""
    aggregation: Literal["token-mean", "seq-mean-token-mean"] = "token-mean"
    """token-mean: every response token of the step weighs the same (the usual SFT mean);
    seq-mean-token-mean: every response weighs the same."""
    lr: float = 1e-5
    """AdamW learning rate."""
    lr_schedule: Literal["constant", "linear", "cosine"] = "constant"
    """Learning-rate schedule after warm-up."""
    lr_warmup_steps: int = 0
    """Optimizer steps of linear warm-up."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this (<= 0 disables)."""
    micro_batch_tokens: int = 4096
    """Token budget of one micro-batch; gradient accumulation covers the rest of the step."""
    packed: bool = True
    """Packed micro-batches (as `train`: one flat row, no padding)."""
    attn_implementation: str = "auto"
    """The learner's attention kernel (see `r1zero train --help`)."""
    precision: str = "auto"
    """Learner precision: auto, bf16, bf16-autocast or fp32 (as `train`)."""
    lora: LoraConfig = field(default_factory=LoraConfig)
    """Train LoRA adapters instead of every weight (see `r1zero train --help`)."""
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    """--cluster.learners N: N FSDP2 learner ranks (no engines: SFT generates nothing)."""
    save_every: int = 0
    """Checkpoint every N steps (and at the end); 0 = only at the end."""
    keep_checkpoints: int = 1
    """How many recent checkpoints to keep."""
    run_dir: str | None = None
    """Output directory (default runs/sft-<time>)."""
    resume: str | None = None
    """Continue this SFT run from its latest checkpoint (give the same flags)."""
    seed: int = 0
    """Example order and init."""
    device: str = "auto"
    """cuda, cpu or auto."""
    threads: int = 0
    """torch threads on CPU (0: all cores)."""
    progress: bool = True
    """Show a progress bar."""
    tensorboard: bool = False
    """Also log to TensorBoard."""
    wandb: bool = False
    """Also log to Weights & Biases."""

    def learner_config(self, stamp: str = "run") -> TrainConfig:
        """The `TrainConfig` the learner is built from: RAFT's policy term −A log π with A = 1
        on every example is the SFT loss (no sampling, temperature 1, one optimizer step per
        update), with this config's optimizer, precision, LoRA and ranks. Validated."""
        if self.cluster.engines:
            raise ConfigError("r1zero sft generates nothing: drop --cluster.engines (use --cluster.learners)")
        if self.max_response_tokens < 1:
            raise ConfigError("--max-response-tokens must be >= 1")
        algo = dataclasses.replace(RAFT, sample_filter="none", aggregation=self.aggregation)
        cfg = TrainConfig(
            model=self.model, template=self.template, algorithm="raft", algo=algo, steps=self.steps,
            prompts_per_step=self.batch_size, group_size=1, temperature=1.0, max_new_tokens=self.max_response_tokens,
            lr=self.lr, lr_schedule=self.lr_schedule, lr_warmup_steps=self.lr_warmup_steps,
            weight_decay=self.weight_decay, max_grad_norm=self.max_grad_norm,
            micro_batch_tokens=self.micro_batch_tokens, packed=self.packed,
            attn_implementation=self.attn_implementation, precision=self.precision, lora=self.lora,
            cluster=self.cluster, backend="hf", eval_every=0, save_every=self.save_every,
            keep_checkpoints=self.keep_checkpoints, run_dir=self.resume or self.run_dir or f"runs/sft-{stamp}",
            resume=self.resume, seed=self.seed, device=self.device, threads=self.threads,
            progress=self.progress, tensorboard=self.tensorboard, wandb=self.wandb)
        cfg.validate()
        return cfg
