"""Data-parallel FSDP2 learners on gloo (2 processes, CPU, a tiny model): for every named
algorithm, one rollout's update on 2 ranks gives the same weights and grad-norm as the
same update in one process. The rule that makes it so (DESIGN.md, "Cluster"): the step's
normaliser covers every rank's responses, and gradients are summed, never averaged."""

from __future__ import annotations

import os
import socket
from dataclasses import replace

import pytest
import torch

from r1zero.config import TrainConfig
from r1zero.core.algorithms import ALGORITHMS
from r1zero.learner.batching import TrainSequence
from tests.test_train_loop import tiny_dir  # noqa: F401  (fixture)

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cfg(name: str, **kw) -> TrainConfig:
    # adam_eps large: the first Adam step is then proportional to the gradient, so weights
    # compare gradients (with a tiny eps it is ~lr * sign(g), which amplifies float noise).
    return TrainConfig(algorithm=name, algo=ALGORITHMS[name], precision="fp32", lr=0.3,
                       adam_eps=1e-2, max_new_tokens=8, micro_batch_tokens=64, seed=0, **kw)


def _sequences(tokenizer, dpo: bool = False) -> list[TrainSequence]:
    """Seven responses with mixed advantages; with ``dpo`` four (chosen, rejected) pairs."""
    g = torch.Generator().manual_seed(0)
    prompts = [tokenizer(t)["input_ids"] for t in ("What is 1 + 2?", "Hi", "Name a prime:")]
    advs = [1.0, -0.5, 0.75, -1.0, 0.0, 2.0, -0.25]  # one zero: skipped, still in the norm
    if dpo:
        advs = [1.0, -1.0] * 4
    return [TrainSequence(prompts[(i // 2 if dpo else i) % 3],
                          torch.randint(5, 200, (2 + i % 4,), generator=g).tolist(), a, None,
                          pair=i // 2 if dpo else -1) for i, a in enumerate(advs)]


def _learner(model, tok, cfg, rank=0, world=1):
    from tests.helpers import local_learner

    return local_learner(cfg, model, pad=tok.pad_token_id, rank=rank, world=world)


def _single(model_dir, cfg):
    from r1zero.learner.local import run_update
    from r1zero.models import load_model

    model, tok = load_model(model_dir)
    lrn = _learner(model, tok, cfg)
    part = run_update(lrn, _sequences(tok, cfg.algo.objective == "dpo"), step=0)
    return {n: t.detach().clone() for n, t in model.state_dict().items()}, part["grad_norms"]


def _rank_main(rank, world, port, model_dir, configs, out):
    """One learner rank: the same update on its share, FSDP2-sharded, gloo."""
    import torch.distributed as dist

    from r1zero.cluster.fsdp import full_state_dict, shard
    from r1zero.learner.local import run_update
    from r1zero.models import load_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    results = {}
    for key, cfg in configs.items():
        model, tok = load_model(model_dir)
        shard(model, world, "cpu", activation_checkpointing=key.endswith("_ckpt"))
        lrn = _learner(model, tok, cfg, rank, world)
        part = run_update(lrn, _sequences(tok, cfg.algo.objective == "dpo"), step=0)
        sd = full_state_dict(model)  # every rank takes part in the gather
        results[key] = (sd, part["grad_norms"])
    if rank == 0:
        torch.save(results, out)
    dist.barrier()
    dist.destroy_process_group()


def test_two_gloo_ranks_equal_one_process_for_every_algorithm(tiny_dir, tmp_path):  # noqa: F811
    import torch.multiprocessing as mp

    configs = {name: _cfg(name) for name in sorted(ALGORITHMS)}
    # Two optimizer steps per rollout (pi_old, the clip) and two epochs, on Dr. GRPO.
    configs["dr_grpo_2x2"] = replace(_cfg("dr_grpo"), train_batch_size=4, epochs=2)
    configs["grpo_ckpt"] = _cfg("grpo")  # activation checkpointing: same numbers
    # Online DPO (KL-free here: no reference model is loaded) with pairs split over steps.
    configs["online_dpo_2x2"] = replace(_cfg("online_dpo"), train_batch_size=4, epochs=2)
    out = tmp_path / "ranks.pt"
    mp.spawn(_rank_main, args=(WORLD, _free_port(), tiny_dir, configs, str(out)),
             nprocs=WORLD, join=True)
    ranks = torch.load(out, weights_only=False)
    from r1zero.testing import tiny_model

    start = tiny_model(seed=0)[0].state_dict()
    for key, cfg in configs.items():
        single_sd, single_norms = _single(tiny_dir, cfg)
        dist_sd, dist_norms = ranks[key]
        assert dist_norms == pytest.approx(single_norms, rel=1e-4), key
        moved = max(float((single_sd[n] - start[n]).abs().max()) for n in single_sd)
        differ = max(float((single_sd[n] - dist_sd[n]).abs().max()) for n in single_sd)
        assert moved > 1e-3, key
        assert differ < 1e-3 * moved, (key, differ, moved)
