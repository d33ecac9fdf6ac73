"""The learner checks of the one-shot device check (`scripts/gpu_check.py`), one function
each, and what the checks build with (the model, the rollout, the learner rank).

Each builds what it checks through the functions a training run uses (the cluster's
learner rank `LearnerRankImpl`, its FSDP2 sharding, the learner's update and save), on
CUDA, or with ``--dry-run`` on CPU with gloo and tiny sizes. A check returns the figures it
measured, raises `NeedsCuda` for a part only a GPU can run, and raises on a wrong result.
"""

from __future__ import annotations

import math
import random
import socket
import time
from dataclasses import replace
from pathlib import Path

import torch

from gpu_check import Ctx, NeedsCuda
from r1zero.config import TrainConfig, resolve_algorithm
from r1zero.learner.batching import TrainSequence

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- builders
def model_dir(ctx: Ctx) -> str:
    """A random-init model with the packaged SmolLM2 tokenizer, saved once per process
    (what the cluster's ranks load by path)."""
    path = ctx.work / "model"
    if not (path / "config.json").is_file():
        from r1zero.testing import tiny_model

        s = ctx.sizes
        model, tok = tiny_model(seed=0, hidden_size=s.hidden, num_layers=s.layers, num_heads=s.heads,
                                num_kv_heads=s.kv_heads, intermediate_size=s.ffn)
        model.save_pretrained(path)
        tok.save_pretrained(path)
    return str(path)


def sequences(ctx: Ctx, seed: int = 0, vocab: int = 2000) -> list[TrainSequence]:
    """``prompts x group`` responses of random tokens, advantages in {±0.5, ±1} (none is
    skipped as zero)."""
    s, rng = ctx.sizes, random.Random(seed)
    out = []
    for _ in range(s.prompts):
        prompt = [rng.randrange(5, vocab) for _ in range(rng.randint(*s.prompt_len))]
        for _ in range(s.group):
            response = [rng.randrange(5, vocab) for _ in range(rng.randint(*s.response_len))]
            out.append(TrainSequence(prompt, response, rng.choice([-1.0, -0.5, 0.5, 1.0])))
    return out


def train_config(ctx: Ctx, **fields) -> TrainConfig:
    """The run's config for a check: bf16 compute with fp32 master weights (the cluster's
    GPU setting; on CPU too, so the dry run takes the same code), Dr. GRPO, one optimizer
    step. ``adam_eps`` 1e-2 makes the first Adam step proportional to the gradient (with
    1e-8 it is ~lr·sign(g), which turns rounding noise into whole steps), so comparing
    weights after one update compares gradients."""
    base = dict(device=ctx.device.type, precision="bf16", seed=0, lr=1e-2, adam_eps=1e-2,
                max_new_tokens=ctx.sizes.response_len[1],
                micro_batch_tokens=ctx.sizes.micro_batch_tokens)
    return resolve_algorithm(TrainConfig(**{**base, **fields}))


def with_cluster(cfg: TrainConfig, **fields) -> TrainConfig:
    return replace(cfg, cluster=replace(cfg.cluster, **fields))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def learner_rank(cfg: TrainConfig, model_path: str, resume_from: str | None = None):
    """The cluster's learner rank (the body of its Ray actor), world 1, without Ray: it
    initialises the process group (NCCL on CUDA, gloo on CPU), loads, shards and wraps the
    model exactly as in a cluster run. A previous rank's group is closed first."""
    import torch.distributed as dist

    from r1zero.cluster.learner_group import LearnerRankImpl

    if dist.is_initialized():
        dist.destroy_process_group()
    rank = LearnerRankImpl(0, 1)
    rank.setup(("127.0.0.1", free_port()), cfg, model_path, cfg.precision, 1.0, resume_from, "policy", 0)
    return rank


def plain_learner(cfg: TrainConfig, model_path: str, device: torch.device):
    """The reference: the same model in one process, fp32, no FSDP, with the dense segment
    kernel (exact attention that compiles nothing; FlexAttention against it is check b)."""
    from r1zero.learner import segment_attention
    from r1zero.learner.build import build_learner

    cfg = replace(cfg, precision="fp32", attn_implementation=segment_attention.NAME)
    return build_learner(cfg, model_path=model_path, device=device, precision="fp32")


def full_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of every weight as a full fp32 CPU tensor (a collective for a sharded model).
    Copied: on CPU at world 1 `full_state_dict` hands back the live parameters themselves."""
    from r1zero.cluster.fsdp import full_state_dict

    return {n: t.clone() for n, t in full_state_dict(model).items()}


def rel_err(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> float:
    """||got - want|| / ||want|| over every tensor of ``want`` (names must match)."""
    num = sum(float((got[n].double() - w.double()).norm()) ** 2 for n, w in want.items())
    den = sum(float(w.double().norm()) ** 2 for w in want.values())
    return math.sqrt(num / max(den, 1e-30))


def delta(after: dict, before: dict) -> dict[str, torch.Tensor]:
    return {n: after[n] - before[n] for n in before if before[n].is_floating_point()}


def peak_gib(ctx: Ctx) -> float | None:
    return torch.cuda.max_memory_allocated(ctx.device) / 2**30 if ctx.cuda else None


def reset_peak(ctx: Ctx) -> None:
    if ctx.cuda:
        torch.cuda.synchronize(ctx.device)
        torch.cuda.reset_peak_memory_stats(ctx.device)


def timed_update(ctx: Ctx, rank, seqs: list[TrainSequence]) -> tuple[dict, float, dict]:
    """One update of a learner rank: ``(its run_update result, seconds, new weights)``."""
    reset_peak(ctx)
    start = time.perf_counter()
    part = rank.update(seqs, 0)  # LearnerRankImpl.update -> run_update
    if ctx.cuda:
        torch.cuda.synchronize(ctx.device)
    return part, time.perf_counter() - start, full_weights(rank.learner.policy)


def expect(ok: bool, what: str) -> None:
    """Fail the check with ``what`` (a plain raise: ``python -O`` must not skip it)."""
    if not ok:
        raise AssertionError(what)


# ----------------------------------------------------------------------------- checks
def check_env(ctx: Ctx) -> dict:
    """Versions, the device, and the offline model cache (the bundle's tokenizer)."""
    import sys

    import transformers

    from r1zero.testing import tiny_tokenizer

    out = {"python": sys.version.split()[0], "torch": torch.__version__,
           "transformers": transformers.__version__, "device": str(ctx.device),
           "tokenizer_vocab": len(tiny_tokenizer())}
    if ctx.cuda:
        props = torch.cuda.get_device_properties(ctx.device)
        out.update(gpu=props.name, capability=f"{props.major}.{props.minor}",
                   memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   nccl=str(torch.cuda.nccl.version()),
                   bf16=torch.cuda.is_bf16_supported())
    return out


def check_fsdp_learner(ctx: Ctx) -> dict:
    """(a) One update of the cluster's FSDP2 learner rank (world 1, NCCL on CUDA, bf16 with
    fp32 master weights, the kernel ``auto`` picks) against the same update in one process
    without FSDP (fp32, dense kernel): grad-norm and weight change."""
    from torch.distributed.tensor import DTensor

    from r1zero.learner.attention import packed_kernel

    cfg, path, seqs = train_config(ctx), model_dir(ctx), sequences(ctx)
    rank = learner_rank(cfg, path)
    policy = rank.learner.policy
    kernel, auto = policy.config._attn_implementation, packed_kernel(ctx.device)
    expect(kernel == auto, f"the rank runs {kernel}; auto picks {auto} here")
    sharded = [p for p in policy.parameters() if isinstance(p, DTensor)]
    expect(len(sharded) == len(list(policy.parameters())), "not every parameter is an FSDP2 DTensor")
    expect(all(p.device.type == ctx.device.type for p in sharded), "parameters off the device")
    before = full_weights(policy)
    part, seconds, after = timed_update(ctx, rank, seqs)
    ref = plain_learner(cfg, path, ctx.device)
    ref_part = ref.update(seqs, 0)
    ref_delta = delta(full_weights(ref.policy), before)
    norm, ref_norm = part["grad_norms"][0], ref_part["optim/grad_norm"]
    err = rel_err(delta(after, before), ref_delta)
    expect(math.isfinite(norm) and norm > 0, f"grad-norm {norm}")
    expect(abs(norm - ref_norm) < 0.03 * ref_norm, f"grad-norm {norm} vs one process {ref_norm}")
    expect(err < 0.05, f"weight change differs from one process by {err:.3g} (relative)")
    return {"backend": torch.distributed.get_backend(), "kernel": kernel, "precision": cfg.precision,
            "tokens": part["train_tokens"], "s_update": seconds, "grad_norm": norm,
            "grad_norm_one_process_fp32": ref_norm, "rel_update_err": err, "peak_gib": peak_gib(ctx)}


def check_activation_checkpointing(ctx: Ctx) -> dict:
    """(c) The rank with ``--cluster.activation-checkpointing`` gives the update without it;
    on CUDA its peak memory is lower."""
    cfg, path, seqs = train_config(ctx), model_dir(ctx), sequences(ctx)
    runs = {}
    for on in (False, True):
        rank = learner_rank(with_cluster(cfg, activation_checkpointing=on), path)
        decoder = rank.learner.policy.get_decoder()
        expect(getattr(decoder, "gradient_checkpointing", False) == on, f"checkpointing not {on}")
        before = full_weights(rank.learner.policy)
        part, seconds, after = timed_update(ctx, rank, seqs)
        runs[on] = (part["grad_norms"][0], delta(after, before), seconds, peak_gib(ctx))
    (n_off, d_off, s_off, p_off), (n_on, d_on, s_on, p_on) = runs[False], runs[True]
    err = rel_err(d_on, d_off)
    expect(abs(n_on - n_off) < 1e-2 * n_off, f"grad-norm {n_on} with checkpointing vs {n_off}")
    expect(err < 1e-2, f"weight change with checkpointing differs by {err:.3g} (relative)")
    if ctx.cuda:
        expect(p_on < p_off, f"peak {p_on:.2f} GiB with checkpointing, {p_off:.2f} without")
    return {"grad_norm": n_off, "grad_norm_ckpt": n_on, "rel_update_err": err, "s_update": s_off,
            "s_update_ckpt": s_on, "peak_gib": p_off, "peak_gib_ckpt": p_on}


def _optimizer_state(rank) -> dict[str, torch.Tensor]:
    """The rank's AdamW moments as full CPU tensors, by parameter name (a collective)."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    sd = get_optimizer_state_dict(rank.learner.policy, rank.learner.optimizer)
    out = {}
    for name, state in sd["state"].items():
        for key in ("exp_avg", "exp_avg_sq"):
            t = state[key]
            out[f"{name}.{key}"] = (t.full_tensor() if hasattr(t, "full_tensor") else t).float().cpu()
    return out


def check_dcp_save_load(ctx: Ctx) -> dict:
    """(d) After one update, the rank's save (DCP's Hugging Face writer from the sharded
    weights, consolidated by rank 0; the optimizer as DCP shards) loads back: into
    transformers exactly, and as a resumed rank with the same weights and AdamW moments."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    cfg, path, seqs = train_config(ctx), model_dir(ctx), sequences(ctx)
    rank = learner_rank(cfg, path)
    rank.update(seqs, 0)
    want, want_opt = full_weights(rank.learner.policy), _optimizer_state(rank)
    ckpt = ctx.work / "checkpoint"
    ckpt.mkdir()
    start = time.perf_counter()
    rank.save(str(ckpt))
    save_s = time.perf_counter() - start
    AutoTokenizer.from_pretrained(path).save_pretrained(ckpt)  # as the checkpoint protocol does
    files = sorted(p.name for p in ckpt.iterdir())
    expect(any(f.endswith(".safetensors") for f in files), f"no safetensors in {files}")
    expect("sharded" not in files and "optim_dcp" in files, f"checkpoint holds {files}")
    hf = AutoModelForCausalLM.from_pretrained(ckpt, dtype=torch.float32).state_dict()
    hf_err = max(float((hf[n].float() - w).abs().max()) for n, w in want.items())
    expect(hf_err == 0.0, f"transformers reads back weights off by {hf_err}")
    resumed = learner_rank(cfg, path, resume_from=str(ckpt))
    got, got_opt = full_weights(resumed.learner.policy), _optimizer_state(resumed)
    w_err = max(float((got[n] - w).abs().max()) for n, w in want.items())
    o_err = max(float((got_opt[n] - w).abs().max()) for n, w in want_opt.items())
    expect(w_err == 0.0 and o_err == 0.0, f"resumed rank: weights off by {w_err}, AdamW by {o_err}")
    return {"files": files, "save_s": save_s, "weights": len(want), "adam_moments": len(want_opt)}


def check_cpu_offload(ctx: Ctx) -> dict:
    """(e) ``--cluster.cpu-offload``: the rank keeps its shards on the CPU and clips the
    gradient there (a clip small enough to act); its update equals the one without
    offload. On CUDA this needs a CPU backend beside NCCL (``cuda:nccl,cpu:gloo``)."""
    cfg = train_config(ctx, max_grad_norm=1e-3)  # every step clipped: the clip must act
    path, seqs = model_dir(ctx), sequences(ctx)
    runs = {}
    for offload in (False, True):
        if offload and not ctx.cuda:
            n, _, s, _ = runs[False]
            raise NeedsCuda("FSDP2 CPU offload (torch offloads only from an accelerator; the "
                            "clipped update without offload ran)", {"grad_norm": n, "s_update": s})
        rank = learner_rank(with_cluster(cfg, cpu_offload=offload), path)
        local = {p.to_local().device.type for p in rank.learner.policy.parameters()}
        expect(local == {"cpu" if offload else ctx.device.type}, f"offload={offload}: shards on {local}")
        before = full_weights(rank.learner.policy)
        part, seconds, after = timed_update(ctx, rank, seqs)
        runs[offload] = (part["grad_norms"][0], delta(after, before), seconds, peak_gib(ctx))
    (n_dev, d_dev, s_dev, p_dev), (n_cpu, d_cpu, s_cpu, p_cpu) = runs[False], runs[True]
    err = rel_err(d_cpu, d_dev)
    expect(n_dev > 10 * cfg.max_grad_norm, f"grad-norm {n_dev}: the clip would not act")
    expect(abs(n_cpu - n_dev) < 1e-2 * n_dev, f"grad-norm {n_cpu} offloaded vs {n_dev}")
    expect(err < 1e-2, f"offloaded update differs by {err:.3g} (relative)")
    if ctx.cuda:
        expect(p_cpu < p_dev, f"peak {p_cpu:.2f} GiB offloaded, {p_dev:.2f} without")
    return {"backend": torch.distributed.get_backend(), "grad_norm": n_dev, "grad_norm_offload": n_cpu,
            "rel_update_err": err, "s_update": s_dev, "s_update_offload": s_cpu,
            "peak_gib": p_dev, "peak_gib_offload": p_cpu}


def check_learner_1p5b(ctx: Ctx) -> dict:
    """(g) bench/bench_learner_gpu.py: the random-init Qwen2.5-Math-1.5B rank at ~3,000-token
    responses, FlexAttention vs the dense segment path (``--tiny`` on CPU); its rows are
    appended to OUT/bench_learner_gpu.jsonl as they are measured."""
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("bench_learner_gpu",
                                                  ROOT / "bench" / "bench_learner_gpu.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows_path = ctx.out / "bench_learner_gpu.jsonl"
    args = ["--device", str(ctx.device), "--jsonl", str(rows_path)] + ([] if ctx.cuda else ["--tiny"])
    bench.main(args)
    rows = [json.loads(line) for line in rows_path.read_text().splitlines()]
    keep = ("tokens_per_s", "mfu", "peak_gib", "s_per_update", "warmup_s", "max_abs_dlogp",
            "grad_norm", "skipped")
    out = {r["path"]: {k: r[k] for k in keep if k in r} for r in rows if r["row"] == "summary"}
    errors = {r["path"]: r["error"] for r in rows if r["row"] == "error"}
    expect(set(out) == set(bench.PATHS), f"summaries for {sorted(out)} only; errors: {errors}")
    if ctx.cuda:
        expect(not any("skipped" in r for r in out.values()), "a path did not train on CUDA")
    return out
