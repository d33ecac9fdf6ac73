"""The learner as a group of Ray actors: N ranks forming one torch.distributed group (gloo on
CPU, NCCL on GPU), each an FSDP2-sharded `LocalLearner` built by the same factory as one
process (`r1zero.learner.build.build_learner`). `LearnerGroup` is the `Learner` seam over
them: every call fans out to all ranks (each rank's step is a collective).

The update is the same for any world size: the driver hands every rank the whole rollout,
each rank takes its token-balanced share, the step's loss normaliser covers every rank's
responses, and gradients are summed across ranks, never averaged (cluster/fsdp.py).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from pathlib import Path

import torch

from r1zero.adapters import adapter_tensors, has_adapters, is_adapter_tensor, tensor_bytes, write_adapter
from r1zero.cluster.fsdp import full_state_dict, save_sharded, shard
from r1zero.cluster.placement import ClusterPlan, ray_module, wait_for, wait_placed
from r1zero.cluster.weight_sync import open_sync, torch_dtype
from r1zero.config import TrainConfig
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.build import build_learner
from r1zero.learner.local import run_update, update_metrics
from r1zero.learner.objectives import OBJECTIVES
from r1zero.machine import deterministic_kernels


def free_port() -> int:
    """A TCP port free on this node (all interfaces: other nodes connect to it)."""
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def actor_device(cuda: bool) -> torch.device:
    """A learner rank's or engine's device. Ray gives each GPU actor its own
    ``CUDA_VISIBLE_DEVICES``, so its GPU is always index 0; an inherited ``LOCAL_RANK``
    (a torchrun or Slurm launch of the driver) would name a GPU the actor cannot see."""
    return torch.device("cuda", 0) if cuda else torch.device("cpu")


def group_backend(cuda: bool, cpu_offload: bool) -> str:
    """torch.distributed backend of the learner group: gloo on CPU, NCCL on GPUs, and with
    FSDP2 CPU offload both (``cuda:nccl,cpu:gloo``): the gradient clip's norm reduction
    then runs on CPU-resident DTensor shards, which NCCL cannot reduce."""
    if not cuda:
        return "gloo"
    return "cuda:nccl,cpu:gloo" if cpu_offload else "nccl"


def start_ranks(ranks: list, get, *setup_args) -> tuple[str, int]:
    """Form the learner group: rank 0 names its node's address and a port free there (not
    the driver's: on a multi-node cluster the ranks live elsewhere), then every rank joins
    with it (`LearnerRankImpl.setup`). ``get`` waits for Ray refs."""
    master = tuple(get(ranks[0].endpoint.remote()))
    get([a.setup.remote(master, *setup_args) for a in ranks])
    return master


class LearnerRankImpl:
    """One learner rank (the body of the rank actor; a plain class for tests)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def endpoint(self) -> tuple[str, int]:
        """This node's address and a port free on it: a rendezvous (rank 0)."""
        return ray_module().util.get_node_ip_address(), free_port()

    def setup(self, master: tuple[str, int], cfg: TrainConfig, model_path: str, precision: str,
              cpus: float, resume_from: str | None, role: str, optim_steps: int) -> bool:
        """Join the torch.distributed group at ``master`` and build this rank's learner."""
        import torch.distributed as dist

        os.environ.update(MASTER_ADDR=master[0], MASTER_PORT=str(master[1]))
        cuda = torch.cuda.is_available() and cfg.device != "cpu"
        device = actor_device(cuda)
        if cuda:
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, int(cpus)))
        dist.init_process_group(group_backend(cuda, cfg.cluster.cpu_offload), rank=self.rank,
                                world_size=self.world)
        if cfg.deterministic:
            deterministic_kernels()
        torch.manual_seed(cfg.seed)
        policy = role == "policy"

        def fsdp(module: torch.nn.Module, trainable: bool) -> torch.nn.Module:
            return shard(module, self.world, device.type, bf16=precision != "fp32",
                         activation_checkpointing=trainable and policy and cfg.cluster.activation_checkpointing,
                         cpu_offload=trainable and cfg.cluster.cpu_offload)

        self.learner = build_learner(cfg, model_path=model_path, device=device, precision=precision,
                                     resume_from=None if resume_from is None else Path(resume_from),
                                     role=role, optim_steps=optim_steps, rank=self.rank,
                                     world=self.world, shard=fsdp)
        return True

    def values(self, seqs) -> dict:
        """Collective: V(s_t) of this rank's share (by position in ``seqs``)."""
        return self.learner.values(seqs)

    def update(self, seqs, step: int) -> dict:
        return run_update(self.learner, seqs, step)

    def weights(self) -> dict:
        """Collective: every rank gathers; rank 0 returns the full state dict (with LoRA the
        adapter alone: only its shards are gathered)."""
        policy = self.learner.policy
        if not has_adapters(policy):
            return full_state_dict(policy, keep=self.rank == 0)
        return adapter_tensors(policy, full_state_dict(policy, keep=self.rank == 0, only=is_adapter_tensor))

    def open_sync(self, path: str, engines: list, tp: int, dtype: str,
                  endpoint: tuple[str, int] | None) -> bool:
        """Collective (every rank): the learner side of the "nccl" / "ipc" sync path."""
        self.transfer = open_sync(path, self.learner.policy, self.rank, engines, tp, torch_dtype(dtype),
                                  endpoint)
        self.engine_dtype = dtype
        return True

    def sync(self) -> int:
        """Collective (every rank gathers; rank 0 sends): one sync over the open transfer;
        returns the bytes sent (every parameter in the engines' dtype)."""
        self.transfer.send_weights()
        wire = torch_dtype(self.engine_dtype).itemsize
        return sum(p.numel() * (wire if p.is_floating_point() else p.element_size())
                   for p in self.learner.policy.parameters())

    def save(self, path: str) -> bool:
        """Collective: this rank's shards of weights and optimizer (`save_sharded`); with
        LoRA the gathered adapter (rank 0 writes it) and the optimizer's shards."""
        policy = self.learner.policy
        if has_adapters(policy):
            adapter = self.weights()
            if self.rank == 0:
                write_adapter(Path(path), policy.peft_config["default"], adapter)
            ckpt.save_optimizer(policy, self.learner.optimizer, Path(path))
            return True
        save_sharded(policy, self.learner.optimizer, Path(path), self.rank,
                     hf_config=self.learner.objective.name == "policy")
        return True


class LearnerGroup:
    """The `Learner` seam (and, for PPO, the `Critic`) over N rank actors."""

    def __init__(self, cfg: TrainConfig, plan: ClusterPlan, *, model_path: str, precision: str,
                 run_dir: Path, resume_from: Path | None, optim_steps: int = 0, role: str = "policy",
                 sync_path: str = "object_store", engine_dtype: str = "bfloat16") -> None:
        ray = ray_module()
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        n, gpus, cpus = cfg.cluster.learners, 1 if plan.gpu else 0, plan.cpus_per_actor
        share = 2 if cfg.cluster.colocate and role == "policy" else 1  # a collocated engine: the other half
        self.pg = placement_group([{"CPU": cpus * share, **({"GPU": gpus} if gpus else {})}] * n,
                                  strategy="PACK")
        wait_placed(self.pg, f"{n} {role} ranks")
        actor = ray.remote(num_cpus=cpus, num_gpus=gpus / share)(LearnerRankImpl)
        self.ranks = [actor.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
            placement_group=self.pg, placement_group_bundle_index=r)).remote(r, n) for r in range(n)]
        self.run_dir, self.role, self.objective = run_dir, role, OBJECTIVES[role]
        self.sync_path, self.engine_dtype, self.connected = sync_path, engine_dtype, False
        self.optim_steps = optim_steps
        self.master = start_ranks(self.ranks, self._wait, cfg, model_path, precision, cpus,
                                  None if resume_from is None else str(resume_from), role, optim_steps)

    def _wait(self, refs):
        return wait_for(refs, f"a {self.role} rank", self.run_dir)

    def values(self, seqs) -> dict[int, list[float]]:
        """Critic group: V(s_t) of every sequence (each rank scores its share)."""
        ref = ray_module().put(seqs)
        out: dict[int, list[float]] = {}
        for part in self._wait([a.values.remote(ref) for a in self.ranks]):
            out.update(part)
        return out

    def update(self, seqs, step: int) -> dict[str, float]:
        ref = ray_module().put(seqs)  # one copy in the object store, read by every rank
        parts = self._wait([a.update.remote(ref, step) for a in self.ranks])
        self.optim_steps = parts[0]["optim_steps"]  # the ranks' counter (one clock, theirs)
        return update_metrics(self.objective, parts)

    def sync(self, engines) -> int:
        """Every engine gets the new weights: gathered by all ranks and put in the object
        store once (always with LoRA: the adapter), or over vLLM's NCCL / CUDA-IPC transfer,
        opened on the first sync. Returns the bytes sent."""
        if self.sync_path == "object_store":
            tensors = list(self.weights())
            engines.load_weights(tensors)
            return tensor_bytes(tensors)
        if not self.connected:
            endpoint = self._wait(self.ranks[0].endpoint.remote())
            self._wait([a.open_sync.remote(self.sync_path, engines.engines, engines.tp, self.engine_dtype,
                                           endpoint) for a in self.ranks])
            self.connected = True
        return self._wait([a.sync.remote() for a in self.ranks])[0]

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        return self._wait([a.weights.remote() for a in self.ranks])[0].items()

    def save(self, run_dir: Path, tokenizer, state: ckpt.TrainState, keep: int) -> Path:
        return ckpt.save_with(run_dir, tokenizer, state, keep, self.write)

    def write(self, path: Path) -> None:
        """Collective: every rank writes its shards of weights and optimizer into ``path``."""
        Path(path).mkdir(parents=True, exist_ok=True)
        self._wait([a.save.remote(str(path)) for a in self.ranks])

    def close(self) -> None:
        ray = ray_module()
        from ray.util.placement_group import remove_placement_group

        for a in self.ranks:
            ray.kill(a)
        remove_placement_group(self.pg)
