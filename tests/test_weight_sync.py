"""Weight sync (cluster/weight_sync.py): which path a run takes, the NCCL ranks of each
engine's workers, the client that drives M engine actors as one, and the vLLM source
that gathers FSDP2 shards in the engines' dtype (checked with vLLM's own order check)."""

from __future__ import annotations

import socket

import pytest
import torch

from r1zero.cluster.weight_sync import engine_init_infos, sync_path
from r1zero.config import ClusterConfig, ConfigError, TrainConfig
from tests.test_train_loop import tiny_dir  # noqa: F401  (fixture)


@pytest.mark.parametrize("kind, gpu, colocate, path", [
    ("vllm", True, False, "nccl"),
    ("vllm", True, True, "ipc"),
    ("vllm", False, False, "object_store"),  # vLLM-CPU
    ("vllm", False, True, "object_store"),
    ("hf", True, False, "object_store"),
    ("hf", False, True, "object_store"),
])
def test_sync_path(kind, gpu, colocate, path):
    assert sync_path(kind, gpu, colocate) == path


def test_engine_ranks_follow_learner_rank_zero_without_overlap():
    base = {"master_address": "10.0.0.1", "master_port": 1234, "rank_offset": 1, "world_size": 9}
    infos = engine_init_infos(base, num_engines=4, tp=2)
    assert [i["rank_offset"] for i in infos] == [1, 3, 5, 7]
    workers = [i["rank_offset"] + w for i in infos for w in range(2)]
    assert sorted(workers) == list(range(1, base["world_size"]))  # every rank once, 0 = learner
    assert all(i["master_port"] == 1234 for i in infos) and base["rank_offset"] == 1
    ipc = engine_init_infos({"packed": True}, num_engines=3, tp=1)
    assert ipc == [{"packed": True}] * 3


@pytest.mark.parametrize("cluster, ok", [
    (ClusterConfig(learners=2, engines=2, colocate=True), True),
    (ClusterConfig(learners=2, engines=1, colocate=True), False),
    (ClusterConfig(learners=2, engines=2, engine_tp=2, colocate=True), False),
    (ClusterConfig(colocate=True), False),  # CPU, one process: nothing to share
])
def test_colocate_rules(cluster, ok):
    cfg = TrainConfig(device="cpu", cluster=cluster)
    if ok:
        cfg.validate()
    else:
        with pytest.raises(ConfigError, match="colocate"):
            cfg.validate()


def test_engines_client_fans_out_with_each_engines_ranks():
    ray = pytest.importorskip("ray")
    from r1zero.cluster.weight_sync import EnginesClient

    @ray.remote(num_cpus=0)
    class Recorder:
        def __init__(self):
            self.calls = []

        def transfer_init(self, info):
            self.calls.append(("init", info["rank_offset"]))

        def transfer_start(self):
            self.calls.append(("start",))

        def transfer_update(self, info):
            self.calls.append(("update", info["names"]))

        def transfer_finish(self):
            self.calls.append(("finish",))

        def log(self):
            return self.calls

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        engines = [Recorder.remote() for _ in range(3)]
        client = EnginesClient(engines, tp=2)
        client.init_weight_transfer_engine({"rank_offset": 1, "world_size": 7})
        client.start_weight_update()
        client.update_weights({"names": ["a", "b"]})
        client.finish_weight_update()
        logs = ray.get([e.log.remote() for e in engines])
    finally:
        if started:
            ray.shutdown()
    for e, calls in enumerate(logs):
        assert calls == [("init", 1 + 2 * e), ("start",), ("update", ["a", "b"]), ("finish",)]


# ------------------------------------------------------------ the vLLM source on FSDP2
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _source_rank(rank, world, port, model_dir, out):
    import os

    import torch.distributed as dist
    from vllm.distributed.weight_transfer.nccl_engine import (
        NCCLTrainerWeightTransferEngine,
    )

    from r1zero.cluster.fsdp import shard
    from r1zero.cluster.weight_sync import cast_source
    from r1zero.models import load_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        model, _ = load_model(model_dir)
        shard(model, world, "cpu")
        source = cast_source(model, torch.bfloat16)
        meta = source.metadata()
        # vLLM's own check that iteration agrees with metadata (what the worker sizes its
        # receive buffers from); every rank iterates, as the gathers are collectives.
        got = dict(NCCLTrainerWeightTransferEngine._checked_iter(source, meta))
        if rank == 0:
            torch.save({"meta": [(m.name, str(m.dtype), m.shape) for m in meta], "got": got}, out)
    finally:
        dist.destroy_process_group()


@pytest.mark.vllm
def test_cast_source_gathers_full_bf16_tensors_on_two_gloo_ranks(tiny_dir, tmp_path):  # noqa: F811
    pytest.importorskip("vllm")
    import torch.multiprocessing as mp

    from r1zero.models import load_model

    out = tmp_path / "source.pt"
    mp.spawn(_source_rank, args=(2, _free_port(), tiny_dir, str(out)), nprocs=2, join=True)
    saved = torch.load(out)
    model, _ = load_model(tiny_dir)
    params = dict(model.named_parameters())
    assert [m[0] for m in saved["meta"]] == list(params)  # HF names, tied output layer once
    assert "lm_head.weight" not in params
    for name, p in params.items():
        sent = saved["got"][name]
        assert sent.dtype == torch.bfloat16 and not hasattr(sent, "full_tensor")
        assert torch.equal(sent, p.detach().to(torch.bfloat16)), name
