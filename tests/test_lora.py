"""LoRA (--lora.*): only adapters train, checkpoints and syncs hold the adapter alone, an
engine that received it samples exactly what the learner computes, export merges it, and
FSDP2 ranks update it as one process does."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest
import torch

pytest.importorskip("peft")

from r1zero.adapters import PREFIX, adapter_tensors, is_adapter_tensor  # noqa: E402
from r1zero.config import LoraConfig, TrainConfig  # noqa: E402
from r1zero.learner.batching import TrainSequence, make_micro_batches  # noqa: E402
from r1zero.learner.build import build_learner  # noqa: E402
from r1zero.learner.logprobs import response_logprobs  # noqa: E402
from r1zero.models import load_model  # noqa: E402
from r1zero.rollout import EngineSpec, SamplingParams, build_backend  # noqa: E402
from tests.test_cluster_fsdp import _free_port, _sequences  # noqa: E402
from tests.test_train_loop import _cfg, tiny_dir  # noqa: E402, F401  (fixture)

LORA = LoraConfig(rank=4, alpha=8.0)
# tiny_model: hidden 64, intermediate 128, 4 heads of 16, 2 KV heads, 2 layers. Adapter
# parameters per layer, r (d_in + d_out) for each target: q 4(64+64)=512, k 4(64+32)=384,
# v 384, o 512, gate 4(64+128)=768, up 768, down 768 -> 4096; 2 layers -> 8192 (fp32: 32 KiB).
ADAPTER_PARAMS = 8192


def _learner(model_dir, lora=LORA, precision="fp32", **kw):
    cfg = TrainConfig(model=model_dir, lora=lora, lr=1e-2, precision=precision, max_new_tokens=8, **kw)
    return build_learner(cfg, model_path=model_dir, device=torch.device("cpu"), precision=precision)


def _perturb(learner, seed=1):
    """Give the adapter a clearly non-zero update (B = 0 at the start: the base model)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in learner.policy.named_parameters():
            if is_adapter_tensor(name):
                value = torch.randn(p.shape, generator=g) * 0.3
                if hasattr(p, "device_mesh"):  # an FSDP2 shard: this rank's part of the same value
                    from torch.distributed.tensor import distribute_tensor

                    value = distribute_tensor(value, p.device_mesh, p.placements)
                p.copy_(value)


@torch.no_grad()
def _scores(model, seqs, packed=False):
    """Each sequence's response-token log-probs under ``model`` (the learner's pass, fp32)."""
    out = [None] * len(seqs)
    for mb in make_micro_batches(seqs, 4096, 0, packed):
        lp, _ = response_logprobs(model, mb)
        for row, i in enumerate(mb.index):
            out[i] = lp[row][mb.response_mask[row].bool()]
    return out


def test_only_adapters_train_and_sync(tiny_dir):  # noqa: F811
    lrn = _learner(tiny_dir)
    trainable = [n for n, p in lrn.policy.named_parameters() if p.requires_grad]
    assert trainable and all(is_adapter_tensor(n) for n in trainable)
    in_optimizer = sum(p.numel() for g in lrn.optimizer.param_groups for p in g["params"])
    assert in_optimizer == ADAPTER_PARAMS
    sent = dict(lrn.weights())
    assert all(k.startswith(PREFIX) and (".lora_A." in k or ".lora_B." in k) for k in sent)
    assert sum(t.numel() for t in sent.values()) == ADAPTER_PARAMS
    base = {n: p.detach().clone() for n, p in lrn.policy.named_parameters() if not p.requires_grad}
    seqs = _sequences(load_model(tiny_dir)[1])
    lrn.update(seqs, step=0)
    moved = {n: p for n, p in lrn.policy.named_parameters() if p.requires_grad}
    assert any(float(p.detach().abs().max()) > 0 for n, p in moved.items() if ".lora_B." in n)  # B left 0
    assert all(torch.equal(p, base[n]) for n, p in lrn.policy.named_parameters() if n in base)


def test_separate_hf_engine_after_sync_samples_the_learners_policy(tiny_dir):  # noqa: F811
    """An hf engine with its own copy of the weights: after a sync its sampler log-probs
    equal the learner's on the tokens it drew (fp32), and differ from the base model's."""
    lrn = _learner(tiny_dir)
    _perturb(lrn)
    engine = build_backend(EngineSpec(kind="hf", model_path=tiny_dir, lora=LORA))
    sent = lrn.sync(engine)
    assert sent == ADAPTER_PARAMS * 4  # bytes: the fp32 adapter, not the model
    prompts = ["What is 3 + 4?", "Name a prime:"]
    out = engine.generate(prompts, SamplingParams(n=2, temperature=1.0, max_new_tokens=6), [3, 4])
    seqs = [TrainSequence(c.prompt_token_ids, c.token_ids, 0.0) for c in out]
    learner_lp = _scores(lrn.compute, seqs)
    base_lp = _scores(load_model(tiny_dir)[0], seqs)
    for c, lp, b in zip(out, learner_lp, base_lp):
        assert torch.tensor(c.logprobs) == pytest.approx(lp, abs=1e-5)
        assert (torch.tensor(c.logprobs) - b).abs().max() > 1e-2  # not the base model


def test_checkpoint_holds_the_adapter_and_export_merges_it(tiny_dir, tmp_path):  # noqa: F811
    from r1zero.learner.checkpoint import TrainState
    from r1zero.learner.export import export_checkpoint, run_checkpoint

    lrn = _learner(tiny_dir)
    _perturb(lrn)
    tok = load_model(tiny_dir)[1]
    path = lrn.save(tmp_path / "run", tok, TrainState(step=1), keep=1)
    files = sorted(p.name for p in path.iterdir())
    assert "adapter_model.safetensors" in files and "model.safetensors" not in files
    assert os.path.getsize(path / "adapter_model.safetensors") < ADAPTER_PARAMS * 4 + 4096
    out = export_checkpoint(run_checkpoint(tmp_path / "run"), tmp_path / "merged")
    merged, _ = load_model(str(out))
    seqs = _sequences(tok)
    for a, b in zip(_scores(merged, seqs), _scores(lrn.compute, seqs)):
        assert a == pytest.approx(b, abs=1e-4)  # W0 + (alpha/r) B A, merged
    resumed = build_learner(TrainConfig(model=tiny_dir, lora=LORA, precision="fp32"), model_path=tiny_dir,
                            device=torch.device("cpu"), precision="fp32", resume_from=path)
    assert all(torch.equal(a, b) for a, b in zip(adapter_tensors(resumed.policy).values(),
                                                  adapter_tensors(lrn.policy).values()))


def test_bf16_lora_keeps_one_base_copy(tiny_dir):  # noqa: F811
    """Under bf16 the frozen base is cast once and runs as is; the adapters stay fp32 and
    are their own master weights (no second copy of the model)."""
    lrn = _learner(tiny_dir, precision="bf16")
    assert lrn.compute is lrn.policy
    dtypes = {p.dtype for n, p in lrn.policy.named_parameters() if not is_adapter_tensor(n)}
    assert dtypes == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for n, p in lrn.policy.named_parameters() if is_adapter_tensor(n))
    metrics = lrn.update(_sequences(load_model(tiny_dir)[1]), step=0)
    assert metrics["optim/grad_norm"] > 0


def test_lora_demo_loop_syncs_adapter_bytes(tiny_dir, tmp_path):  # noqa: F811
    """The loop with an engine of its own (--max-staleness 1): every sync sends the adapter
    (perf/sync_bytes); with the shared module (0) nothing is sent. A resume continues."""
    from r1zero.train.trainer import train

    for stale, expect in ((1, ADAPTER_PARAMS * 4), (0, 0)):
        run = tmp_path / f"run{stale}"
        train(_cfg(tiny_dir, run, lora=LORA, max_staleness=stale))
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        assert [r["perf/sync_bytes"] for r in records if "perf/sync_bytes" in r] == [expect, expect]
    train(_cfg(tiny_dir, tmp_path / "run0", lora=LORA, steps=3, resume=str(tmp_path / "run0")))
    assert (tmp_path / "run0" / "checkpoints" / "step_000003" / "adapter_config.json").is_file()


def _rank_main(rank, world, port, model_dir, out):
    """One FSDP2 rank of a LoRA learner (build_learner with shard=), one update."""
    import torch.distributed as dist

    from r1zero.cluster.fsdp import shard
    from r1zero.cluster.learner_group import LearnerRankImpl
    from r1zero.learner.local import run_update

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    cfg = TrainConfig(model=model_dir, lora=LORA, lr=1e-2, adam_eps=1e-2, precision="fp32", max_new_tokens=8,
                      micro_batch_tokens=64)
    impl = LearnerRankImpl(rank, world)
    impl.learner = build_learner(cfg, model_path=model_dir, device=torch.device("cpu"), precision="fp32",
                                 rank=rank, world=world, shard=lambda m, trainable: shard(m, world, "cpu"))
    _perturb(impl.learner)
    run_update(impl.learner, _sequences(load_model(model_dir)[1]), step=0)
    sent = impl.weights()  # collective: only the adapter's shards are gathered
    impl.save(str(out.parent / "ckpt"))
    if rank == 0:
        torch.save(sent, out)
    dist.barrier()
    dist.destroy_process_group()


def test_two_fsdp_ranks_update_the_adapter_as_one_process(tiny_dir, tmp_path):  # noqa: F811
    import torch.multiprocessing as mp

    from r1zero.adapters import read_adapter

    out = tmp_path / "ranks.pt"
    mp.spawn(_rank_main, args=(2, _free_port(), tiny_dir, out), nprocs=2, join=True)
    ranks = torch.load(out)
    lrn = _learner(tiny_dir, adam_eps=1e-2, micro_batch_tokens=64)
    _perturb(lrn)
    before = {k: v.clone() for k, v in lrn.weights()}
    lrn.update(_sequences(load_model(tiny_dir)[1]), step=0)
    single = dict(lrn.weights())
    assert set(ranks) == set(single)
    moved = max(float((single[k] - before[k]).abs().max()) for k in single)
    differ = max(float((single[k] - ranks[k]).abs().max()) for k in single)
    assert moved > 1e-3 and differ < 1e-3 * moved, (moved, differ)
    saved = read_adapter(tmp_path / "ckpt")
    assert all(torch.equal(saved[k], ranks[k]) for k in saved)


def test_bad_targets_name_the_model_layers(tiny_dir):  # noqa: F811
    from r1zero.config import ConfigError

    with pytest.raises(ConfigError, match="linear layers are .*q_proj"):
        _learner(tiny_dir, lora=replace(LORA, targets=("qkv",)))
    with pytest.raises(ConfigError, match="lora.rank"):
        LoraConfig(rank=-1).check()


def test_memory_formula_matches_the_learners_tensors(tiny_dir):  # noqa: F811
    """bench/lora_memory.py: the formula (full 16P fp32 / 18P bf16; LoRA 4P + 16A fp32,
    2P + 16A bf16) equals the bytes the learner really holds before an optimizer step, and
    the Qwen2.5-Math architectures have their published sizes."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "bench" / "lora_memory.py"
    spec = importlib.util.spec_from_file_location("lora_memory", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for case, formula, measured in bench.small_check(tiny_dir, rank=4):
        assert formula == measured, case
    # 1.5B: embeddings 151936 x 1536 = 233.4 M (tied) + 28 layers x 46.8 M = 1.543 B;
    # 7B: 2 x 152064 x 3584 = 1.090 B (untied) + 28 x 233.1 M = 7.615 B.
    p, a = bench.counts(bench.qwen("Qwen2.5-Math-1.5B"), 16)
    assert p == pytest.approx(1.5437e9, rel=1e-3)
    # rank 16 per layer: q 16(1536+1536) + k, v 16(1536+256) + o + 3 x 16(1536+8960) = 659,456
    assert a == 28 * 659_456
    assert bench.counts(bench.qwen("Qwen2.5-Math-7B"), 16)[0] == pytest.approx(7.6156e9, rel=1e-3)
