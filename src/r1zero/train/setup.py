"""Assemble a run from its config, in small named steps (torchtune's recipe style): the run
directory, the data and the environment, what the machine decides (`Resolved`), the
cluster, the resume state, the learner, the rollout engines, the logger and the reward
workers. Everything
heavy happens here, after the config was derived and validated (`r1zero.config.derive`).

One factory per seam: learners come from `r1zero.learner.build.build_learner` (here, and in
every cluster rank), engines from `r1zero.rollout.build_backend` (here, in every engine
actor, and in `r1zero eval`).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from r1zero.cluster.engine_pool import RayEnginePool
from r1zero.cluster.learner_group import LearnerGroup
from r1zero.cluster.placement import ClusterPlan, plan_cluster
from r1zero.cluster.weight_sync import sync_path
from r1zero.config import ConfigError, TrainConfig
from r1zero.envs import Environment, OneTurn, build_env, check_sandbox, needs_sandbox
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.actor_critic import WithCritic
from r1zero.learner.base import Learner
from r1zero.learner.build import build_learner
from r1zero.learner.export import starting_model
from r1zero.learner.local import LocalLearner
from r1zero.learner.teacher import Teacher, build_teacher
from r1zero.logging import MetricsLogger, truncate_run_after, write_run_info
from r1zero.machine import Choice, deterministic_kernels, resolve_dtype, resolve_precision, thread_count
from r1zero.models import load_tokenizer, resolve_model_path
from r1zero.rollout import EngineSpec, RolloutBackend, build_backend, pick_engine
from r1zero.rollout.vllm import CPU_MAX_SEQS
from r1zero.tasks import Problem, Task, get_task
from r1zero.templates import Template, get_template
from r1zero.train.source import RolloutSource
from r1zero.train.verifier_pool import VerifierPool


@dataclass(frozen=True)
class Resolved:
    """What this machine decided for the run's ``auto`` settings, with the reasons; written
    beside the config (config.json's ``resolved`` block). The config keeps what the user
    asked for, so a resume on another machine decides again."""

    device: str
    backend: str
    """hf or vllm (``--backend auto``: vllm when importable)."""
    precision: Choice
    vllm_dtype: Choice
    threads: Choice | None
    """torch threads of this process on CPU (`r1zero.machine.thread_count`); None on GPU."""
    cluster: ClusterPlan | None = None
    vllm_cpu_kv_cache_gib: float | None = None
    """The KV budget of a vLLM-CPU engine (`cpu_kv_cache_gib`); None elsewhere."""
    packed: bool | None = None
    attn_implementation: str | None = None
    """The learner's micro-batch layout and attention kernel, as chosen for its model
    (learner/attention.py); None when learner ranks choose them on their own machines."""

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "backend": self.backend, "device": self.device,
            "precision": self.precision.value, "precision_reason": self.precision.reason,
            "vllm_dtype": self.vllm_dtype.value, "vllm_dtype_reason": self.vllm_dtype.reason}
        if self.threads is not None:
            out.update(threads=int(self.threads.value), threads_reason=self.threads.reason)
        if self.cluster is not None:
            out.update(self.cluster.record())
        if self.vllm_cpu_kv_cache_gib is not None:
            out["vllm_cpu_kv_cache_gib"] = self.vllm_cpu_kv_cache_gib
        if self.packed is not None:
            out.update(packed=self.packed, attn_implementation=self.attn_implementation)
        return out


@dataclass
class Trainer:
    """Everything one run holds; built by `build_trainer`, driven by train/trainer.py."""

    cfg: TrainConfig
    resolved: Resolved
    run_dir: Path
    task: Task
    template: Template
    train_problems: list[Problem]
    test_problems: list[Problem]
    tokenizer: Any
    """The policy's tokenizer (transformers)."""
    learner: Learner
    """The update (r1zero/learner): in this process, a group of ranks, or PPO's pair."""
    backend: RolloutBackend
    """The rollout engine(s): one here, or a pool of engine actors."""
    logger: MetricsLogger
    state: ckpt.TrainState
    shares_weights: bool = False
    """The engine samples from the learner's own module (transformers): syncs copy nothing."""
    verifiers: VerifierPool | None = None
    """Reward worker processes (``--reward-workers N``); None = verify in this process."""
    source: RolloutSource | None = None
    """Where each step's rollout comes from (train/source.py); wired in by the loop."""
    env: Environment = dataclasses.field(default_factory=OneTurn)
    """The other side of each episode (r1zero.envs): one turn, a tool, a user's environment."""
    threads_before: int = 0
    """torch's thread count before the run set its own (restored when it closes)."""
    teacher: Teacher | None = None
    """On-policy distillation's teacher (``--algorithm opd``); None otherwise."""
    sync_bytes: int = 0
    """Bytes the last weight sync sent (``perf/sync_bytes``; 0 when the engine shares the
    learner's module)."""


# ----------------------------------------------------------------------------- the steps
def build_trainer(cfg: TrainConfig) -> Trainer:
    """Load everything a run needs; resume from the latest checkpoint if asked."""
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task, template, train_problems, test_problems = setup_data(cfg)
    env = setup_env(cfg, task)
    resolved = resolve_machine(cfg)
    if cfg.deterministic:  # before any kernel runs (and before vLLM is imported)
        deterministic_kernels()
    threads_before = torch.get_num_threads()
    if resolved.threads is not None:  # before any engine starts (vLLM-CPU freezes the count)
        torch.set_num_threads(int(resolved.threads.value))
    if cfg.cluster.learners or cfg.cluster.engines:  # sized and checked before any actor starts
        resolved = dataclasses.replace(resolved, cluster=plan_cluster(cfg, resolved.backend))
    torch.manual_seed(cfg.seed)
    resume_from, state = setup_state(cfg, run_dir)
    model_path = starting_model(cfg.init_from, run_dir) if cfg.init_from else resolve_model_path(cfg.model)
    start = str(resume_from or model_path)
    tokenizer = load_tokenizer(start)
    learner, policy = setup_learner(cfg, resolved, model_path, resume_from, state, run_dir)
    if isinstance(policy, LocalLearner):
        resolved = dataclasses.replace(resolved, packed=policy.packed,
                                       attn_implementation=policy.compute.config._attn_implementation)
    if resolved.backend == "vllm" and resolved.device == "cpu":
        kv = cfg.vllm_cpu_kv_cache_gib or cpu_kv_cache_gib(
            cfg, resolved.vllm_dtype.value, model_path, longest_prompt(template, tokenizer, train_problems + test_problems),
            len(test_problems))
        resolved = dataclasses.replace(resolved, vllm_cpu_kv_cache_gib=kv)
    # With LoRA a checkpoint holds the adapter: engines load the base (and get it below).
    backend, shares = setup_backend(cfg, resolved, model_path if cfg.lora.enabled else start, policy,
                                    tokenizer, run_dir)
    if cfg.lora.enabled and resume_from is not None and not shares:
        learner.sync(backend)
    teacher = build_teacher(cfg, torch.device(resolved.device), resolved.precision.value, tokenizer)
    logger = setup_logger(cfg, run_dir, resolved)
    # Reward workers start now; their imports overlap the first rollout (nothing waits).
    verifiers = VerifierPool(cfg.task, template, cfg.reward_workers, cfg.judge) if cfg.reward_workers > 0 else None
    return Trainer(cfg, resolved, run_dir, task, template, train_problems, test_problems, tokenizer,
                   learner, backend, logger, state, shares, verifiers, threads_before=threads_before,
                   env=env, teacher=teacher)


def setup_data(cfg: TrainConfig) -> tuple[Task, Template, list[Problem], list[Problem]]:
    """The task, its template and its train / held-out problems."""
    task = get_task(cfg.task, cfg.judge, cfg.sandbox)
    template = get_template(cfg.template or task.default_template)
    train_problems, test_problems = task.problems("train"), task.problems("test")
    if not train_problems:
        raise ConfigError(f"task {cfg.task.name!r} has no training problems")
    return task, template, train_problems, test_problems


def setup_env(cfg: TrainConfig, task: Task) -> Environment:
    """The episodes' environment (``--tools``, ``--env.*``). When the run will execute model
    code, a sandbox must start here first (before any model loads), or the run is refused
    (`check_sandbox`; ``--sandbox none`` opts out, with a warning)."""
    if needs_sandbox(cfg.task.name, cfg.tools):
        check_sandbox(cfg.sandbox)
    return build_env(task, cfg.tools, cfg.env, cfg.sandbox)


def resolve_machine(cfg: TrainConfig) -> Resolved:
    """Resolve the device, ``--precision auto``, ``--vllm-dtype auto``, the engine and the
    thread count; print each choice and any warning about an explicit slow setting. On a
    cluster the actors get GPUs exactly when the driver's device is CUDA, so the same
    device kind decides for them."""
    device = pick_device(cfg.device)
    backend = pick_engine(cfg.backend)
    precision = resolve_precision(cfg.precision, device.type)
    dtype = resolve_dtype(cfg.vllm_dtype, device.type) if backend == "vllm" else \
        Choice(cfg.vllm_dtype, "unused: no vLLM engine")
    threads = None
    if device.type == "cpu":
        threads = thread_count(cfg.threads, os.cpu_count() or 1, overlapped=cfg.max_staleness > 0)
    print(f"precision: {precision.value} ({precision.reason})", file=sys.stderr)
    if backend == "vllm":
        print(f"vllm dtype: {dtype.value} ({dtype.reason})", file=sys.stderr)
    if threads is not None:
        print(f"threads: {threads.value} ({threads.reason})", file=sys.stderr)
    for choice in (precision, dtype):
        if choice.warning:
            print(f"warning: {choice.warning}", file=sys.stderr)
    return Resolved(str(device), backend, precision, dtype, threads)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible; use --device cpu")
    return torch.device(name)


def setup_state(cfg: TrainConfig, run_dir: Path) -> tuple[Path | None, ckpt.TrainState]:
    """The checkpoint to resume from (None for a new run) and the loop's state; RNG streams
    restored, and what the run logged after that checkpoint forgotten (it runs again)."""
    if not cfg.resume:
        return None, ckpt.TrainState(step=0)
    resume_from = ckpt.resume_point(run_dir)  # the newest checkpoint that passes its manifest
    state = ckpt.TrainState(step=0) if resume_from is None else ckpt.load_trainer_state(resume_from)
    truncate_run_after(run_dir, state.step)  # killed before a checkpoint: everything runs again
    return resume_from, state


def setup_learner(cfg: TrainConfig, resolved: Resolved, model_path: str, resume_from: Path | None,
                  state: ckpt.TrainState, run_dir: Path) -> tuple[Learner, LocalLearner | LearnerGroup]:
    """The learner (and PPO's critic behind it): in this process, or groups of ranks.
    Returns it and the policy's own learner (a `LocalLearner`, whose module a transformers
    engine may share, or the `LearnerGroup`, beside whose ranks collocated engines go)."""
    precision = resolved.precision.value
    kw = dict(model_path=model_path, precision=precision, resume_from=resume_from, optim_steps=state.optim_steps)
    if cfg.cluster.learners > 0:
        plan = resolved.cluster
        path = sync_path(resolved.backend, plan.gpu, cfg.cluster.colocate, cfg.lora.enabled) \
            if cfg.cluster.engines else "object_store"
        policy: Learner = LearnerGroup(cfg, plan, run_dir=run_dir, sync_path=path,
                                       engine_dtype=resolved.vllm_dtype.value, **kw)
        critic = LearnerGroup(cfg, plan, run_dir=run_dir, role="critic", **kw) if cfg.algo.needs_critic else None
    else:
        device = torch.device(resolved.device)
        policy = build_learner(cfg, device=device, **kw)
        critic = build_learner(cfg, device=device, role="critic", **kw) if cfg.algo.needs_critic else None
    if critic is not None:
        return WithCritic(policy, critic, cfg.algo.gae_gamma, cfg.algo.gae_lambda), policy
    return policy, policy


def engine_spec(cfg: TrainConfig, resolved: Resolved, model_path: str, weight_transfer: str | None = None) -> EngineSpec:
    """The rollout engines' `EngineSpec` (the same for the in-process engine and actors)."""
    # A transformers engine with weights of its own samples in fp32 (its weights are the
    # learner's fp32 master weights); one that shares the learner's module samples in the
    # learner's precision.
    dtype = resolved.vllm_dtype.value if resolved.backend == "vllm" else "float32"
    return EngineSpec(kind=resolved.backend, model_path=model_path, dtype=dtype, device=resolved.device,
                      seed=cfg.seed, gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                      max_model_len=cfg.max_model_len, cpu_kv_cache_gib=resolved.vllm_cpu_kv_cache_gib,
                      enable_sleep_mode=cfg.cluster.colocate, tensor_parallel_size=cfg.cluster.engine_tp,
                      weight_transfer=weight_transfer, lora=cfg.lora if cfg.lora.enabled else None)


def setup_backend(cfg: TrainConfig, resolved: Resolved, model_path: str,
                  policy: LocalLearner | LearnerGroup, tokenizer, run_dir: Path) -> tuple[RolloutBackend, bool]:
    """The rollout engine(s) and whether they share the learner's module. Three cases:
    engine actors (``--cluster.engines``); the transformers engine in this process beside a
    local learner (it samples from the learner's compute module, or, when generation
    overlaps the update, from a copy of it); any other engine with weights of its own,
    loaded from ``model_path`` (the checkpoint on a resume)."""
    if cfg.cluster.engines > 0:
        path = sync_path(resolved.backend, resolved.cluster.gpu, cfg.cluster.colocate, cfg.lora.enabled)
        placement = policy.pg if cfg.cluster.colocate and isinstance(policy, LearnerGroup) else None
        spec = engine_spec(cfg, resolved, model_path, None if path == "object_store" else path)
        return RayEnginePool(spec, cfg.cluster.engines, resolved.cluster, run_dir, placement), False
    spec = engine_spec(cfg, resolved, model_path)
    if resolved.backend == "hf" and isinstance(policy, LocalLearner):
        shares = cfg.max_staleness == 0  # generating while the learner updates needs a copy
        module = policy.compute if shares else copy.deepcopy(policy.compute).eval()
        return build_backend(spec, model=module, tokenizer=tokenizer), shares
    return build_backend(spec), False


def setup_logger(cfg: TrainConfig, run_dir: Path, resolved: Resolved) -> MetricsLogger:
    """config.json (the config as asked, plus what this machine resolved), run_info.json,
    and the metrics logger."""
    saved = {**dataclasses.asdict(cfg), "resolved": resolved.record()}
    write_run_info(run_dir, saved)
    return MetricsLogger(run_dir, tensorboard=cfg.tensorboard, wandb=cfg.wandb,
                         wandb_project=cfg.wandb_project, config=saved)


# ----------------------------------------------------------------------------- KV budget
def longest_prompt(template, tokenizer, problems) -> int:
    """Tokens of the longest rendered prompt, measured on the 64 longest questions (by
    characters) so that a large problem set costs no full tokenisation pass."""
    longest = sorted(problems, key=lambda p: len(p.question), reverse=True)[:64]
    return max((len(tokenizer(template.render(p.question, tokenizer), add_special_tokens=False)["input_ids"])
                for p in longest), default=0)


def cpu_kv_cache_gib(cfg: TrainConfig, dtype: str, model_path: str, longest: int, num_test: int) -> float:
    """The vLLM-CPU KV budget a run needs, in GiB: the sequences one request chunk holds
    (`CPU_MAX_SEQS`, or fewer if a step and the held-out set of ``num_test`` problems have
    fewer; a run without held-out evaluation, ``--eval-every 0``, only a step's) x
    (longest prompt + the peak generation budget + one 128-token block of slack) x KV bytes
    per token
    (2 x layers x KV heads x head dim x dtype bytes), +25 %, at least 0.25 GiB. A fixed
    2 GiB, the previous default, was ~10x what the CPU demo uses."""
    from transformers import AutoConfig

    mc = AutoConfig.from_pretrained(model_path)
    mc = getattr(mc, "text_config", mc)
    head_dim = getattr(mc, "head_dim", None) or mc.hidden_size // mc.num_attention_heads
    kv_heads = getattr(mc, "num_key_value_heads", None) or mc.num_attention_heads
    dtype_bytes = 4 if dtype in ("float32", "float") else 2
    per_token = 2 * mc.num_hidden_layers * kv_heads * head_dim * dtype_bytes
    seqs = min(CPU_MAX_SEQS, max(cfg.prompts_per_step * cfg.group_size, num_test if cfg.eval_every else 0))
    tokens = seqs * (longest + cfg.max_new_tokens_peak + 128)
    return round(max(0.25, 1.25 * tokens * per_token / 2**30), 3)
