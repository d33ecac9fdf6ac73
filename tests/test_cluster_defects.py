"""Defects of the GPU/cluster paths found by reading them against torch and vLLM (issue 17),
each pinned by a CPU test: the rendezvous address, the actor's device, the process-group
backend under CPU offload, an engine that fails to start, the collocated allocator
release, the engine dtype, the host copy of a sync, the CUDA RNG and the sleep level."""

from __future__ import annotations

import pytest
import torch

from r1zero.config import ClusterConfig, ConfigError, TrainConfig, resolve_algorithm


# ----------------------------------------------------------------------------- rendezvous
class _Remote:
    def __init__(self, fn):
        self.remote = fn


class _FakeRank:
    """A rank handle whose calls run at once (``remote`` returns the value, get = identity)."""

    def __init__(self, node_ip: str, port: int):
        self.joined = None
        self.endpoint = _Remote(lambda: (node_ip, port))
        self.setup = _Remote(lambda master, *args: setattr(self, "joined", (master, args)))


def test_group_rendezvous_is_rank_zeros_node_not_the_driver():
    """Defect 3: MASTER_ADDR was the driver's 127.0.0.1, so ranks on another node dialled
    their own loopback. Now rank 0 names its node's address and a port free there."""
    from r1zero.cluster.learner_group import start_ranks

    ranks = [_FakeRank("10.0.0.7", 29511), _FakeRank("10.0.0.8", 29999)]
    master = start_ranks(ranks, lambda refs: refs, "cfg", "model")
    assert master == ("10.0.0.7", 29511)
    assert all(r.joined == (("10.0.0.7", 29511), ("cfg", "model")) for r in ranks)


def test_actor_device_ignores_an_inherited_local_rank(monkeypatch):
    """Defect 10: Ray gives a GPU actor its own CUDA_VISIBLE_DEVICES; LOCAL_RANK=3 left by
    a torchrun/Slurm driver must not pick cuda:3."""
    from r1zero.cluster.learner_group import actor_device

    monkeypatch.setenv("LOCAL_RANK", "3")
    assert actor_device(True) == torch.device("cuda", 0)
    assert actor_device(False) == torch.device("cpu")


@pytest.mark.parametrize("cuda, offload, backend", [
    (False, False, "gloo"), (False, True, "gloo"), (True, False, "nccl"),
    (True, True, "cuda:nccl,cpu:gloo"),  # defect 4: the clip reduces CPU-offloaded shards
])
def test_process_group_backend(cuda, offload, backend):
    from r1zero.cluster.learner_group import group_backend

    assert group_backend(cuda, offload) == backend


def test_cpu_subgroup_backend_reduces_cpu_tensors(tmp_path):
    """The mixed backend string works in torch: a CPU tensor all-reduces over its gloo part
    (world 1, the CPU-only half of ``cuda:nccl,cpu:gloo``)."""
    import torch.distributed as dist

    dist.init_process_group("cpu:gloo", init_method=f"file://{tmp_path}/store", rank=0, world_size=1)
    try:
        t = torch.ones(3)
        dist.all_reduce(t)
        assert t.tolist() == [1.0, 1.0, 1.0]
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------------------- placement
def _cluster_cfg(**cluster) -> TrainConfig:
    return resolve_algorithm(TrainConfig(cluster=ClusterConfig(**cluster)))


def test_actors_share_the_cores_of_a_small_cpu_cluster():
    """2 ranks + 2 engines on 2 cores: 0.5 CPU each by default (issue 19 item 9)."""
    from r1zero.cluster.placement import actor_cpus, check_fits, cluster_demand

    cfg = _cluster_cfg(learners=2, engines=2)
    cpus = actor_cpus(cfg, total_cpus=2.0, gpu=False)
    assert cpus == 0.5
    check_fits(cluster_demand(cfg, cpus, False, "hf"), {"CPU": 2.0})
    assert actor_cpus(cfg, total_cpus=64.0, gpu=False) == 1.0
    assert actor_cpus(_cluster_cfg(learners=2, engines=2, cpus_per_actor=0.25), 2.0, False) == 0.25


def test_a_cluster_that_cannot_hold_the_actors_says_so():
    from r1zero.cluster.placement import check_fits, cluster_demand

    cfg = _cluster_cfg(learners=2, engines=2, cpus_per_actor=1.0)
    with pytest.raises(ConfigError, match=r"need 4 CPU, the Ray cluster has 2 CPU.*--cluster"):
        check_fits(cluster_demand(cfg, 1.0, False, "hf"), {"CPU": 2.0})
    gpu = _cluster_cfg(learners=4, engines=2, engine_tp=2)
    assert cluster_demand(gpu, 1.0, True, "vllm") == {"CPU": 6.0, "GPU": 8.0}
    with pytest.raises(ConfigError, match="8 GPU"):
        check_fits(cluster_demand(gpu, 1.0, True, "vllm"), {"CPU": 64.0, "GPU": 4.0})
    colocated = _cluster_cfg(learners=2, engines=2, colocate=True)
    assert cluster_demand(colocated, 1.0, True, "vllm") == {"CPU": 4.0, "GPU": 2.0}


# ----------------------------------------------------------------------------- engines
def test_an_engine_that_cannot_start_is_named_when_the_pool_is_built(tmp_path):
    """Defect 5: the pool now waits for every engine before anyone uses it (the NCCL
    rendezvous must not start while an engine loads), so a broken engine fails here."""
    ray = pytest.importorskip("ray")
    from r1zero.cluster.engine_pool import RayEnginePool
    from r1zero.cluster.placement import ActorFailed, ClusterPlan
    from r1zero.rollout import EngineSpec

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        spec = EngineSpec(kind="hf", model_path=str(tmp_path / "no-such-model"))
        with pytest.raises(ActorFailed, match="rollout engine.*while starting"):
            RayEnginePool(spec, 1, ClusterPlan(0.5, False, 2.0, 0.0), tmp_path)
    finally:
        ray.shutdown()


def test_collocated_update_returns_cached_cuda_memory(monkeypatch):
    """Defect 6: the update's peak stayed in the caching allocator while collocated
    engines woke up; now the learner empties the cache at the end of every update."""
    from r1zero.learner import local as learners

    calls = []
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty"))
    learners.release_cached_memory()
    assert calls == ["empty"]


def test_every_collocated_update_releases_the_cache(monkeypatch, tiny_dir):  # noqa: F811
    from r1zero.learner import local as learners
    from r1zero.models import load_model
    from tests.test_cluster_fsdp import _cfg, _learner, _sequences

    calls = []
    monkeypatch.setattr(learners, "release_cached_memory", lambda: calls.append(1))
    model, tok = load_model(tiny_dir)
    for colocate in (False, True):
        cfg = _cfg("dr_grpo", cluster=ClusterConfig(colocate=colocate))
        learners.run_update(_learner(model, tok, cfg), _sequences(tok), step=0)
    assert calls == [1]  # once: only the collocated run


def test_the_engine_dtype_is_resolved_before_the_sync_casts(monkeypatch):
    """Defect 7: ``getattr(torch, "auto")`` failed in the NCCL/IPC sync; the run now
    resolves --vllm-dtype auto first, and the cast names a bad value."""
    from r1zero import machine, rollout
    from r1zero.cluster.weight_sync import torch_dtype
    from r1zero.train import setup

    assert torch_dtype("bfloat16") is torch.bfloat16 and torch_dtype("float32") is torch.float32
    with pytest.raises(ValueError, match="resolve 'auto'"):
        torch_dtype("auto")
    monkeypatch.setattr(machine, "gpu_bf16", lambda: (True, "H200 supports bf16"))
    monkeypatch.setattr(setup, "pick_device", lambda name: torch.device("cuda"))
    monkeypatch.setattr(rollout, "vllm_available", lambda: True)  # a GPU machine with vLLM
    resolved = setup.resolve_machine(TrainConfig(vllm_dtype="auto", backend="vllm"))
    assert torch_dtype(resolved.vllm_dtype.value) is torch.bfloat16


def test_only_the_sending_rank_copies_the_gathered_weights_to_the_host(tiny_dir):  # noqa: F811
    """Defect 8: every rank copied the full model to host memory on each sync."""
    from r1zero.cluster.fsdp import full_state_dict
    from r1zero.models import load_model

    model, _ = load_model(tiny_dir)
    full = full_state_dict(model, keep=True)
    assert set(full) == set(model.state_dict()) and all(t.device.type == "cpu" for t in full.values())
    assert full_state_dict(model, keep=False) == {}


def test_vllm_rng_guard_forks_every_cuda_generator(monkeypatch):
    """Defect 9: ``fork_rng(devices=[])`` left the CUDA generators to vLLM's seeding."""
    from r1zero.rollout import vllm as vllm_backend

    seen = {}

    class _Fork:
        def __init__(self, devices):
            seen["devices"] = devices

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.random, "fork_rng", lambda devices: _Fork(devices))
    with vllm_backend._preserve_global_rng():
        pass
    assert seen["devices"] == [0, 1]


def test_collocated_engines_sleep_at_level_two():
    """Defect 10: level 1 copied the weights to the host and back every step, though the
    sync after the update overwrites them; level 2 discards them."""
    from r1zero.rollout.vllm import VLLMBackend

    calls = []

    class _LLM:
        def sleep(self, level):
            calls.append(("sleep", level))

        def wake_up(self):
            calls.append(("wake",))

        def reset_prefix_cache(self):
            calls.append(("reset",))

    b = VLLMBackend.__new__(VLLMBackend)
    b.llm, b.sleep_enabled, b.lora = _LLM(), True, None  # full weights (LoRA keeps level 1)
    b.sleep()
    b.wake()
    assert calls == [("sleep", 2), ("wake",), ("reset",)]


from tests.test_train_loop import tiny_dir  # noqa: E402,F401  (fixture)
