"""`r1zero train --cluster.*`: learner ranks and rollout engines as Ray actors.

    driver (the loop of train/trainer.py, unchanged)
      ├── LearnerGroup: N `LearnerRank` actors = one torch.distributed group (gloo on CPU,
      │   NCCL on GPU), FSDP2-sharded (cluster/fsdp.py); the Learner seam
      └── RayEnginePool: M `EngineActor`s, each a RolloutBackend; the RolloutBackend seam

Imported only when a ``--cluster.*`` flag asks for it: single-process runs never import
Ray. Weight sync takes one of three paths (cluster/weight_sync.py): vLLM's NCCL transfer
(engines on GPUs of their own), CUDA IPC (engines collocated with the learners), or Ray's
object store (CPU, transformers engines). ``--cluster.colocate`` puts engine e in the
placement-group bundle of learner rank e (half a GPU each), and the engines sleep during
the update.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from r1zero.cluster.weight_sync import open_transfer, torch_dtype
from r1zero.config import ConfigError, TrainConfig
from r1zero.rollout.base import Completion, SamplingParams, check_prompt_seeds
from r1zero.rollout.pool import shard_bounds
from r1zero.learner import checkpoint as ckpt

RAY_INSTALL_HINT = "the cluster needs Ray: pip install 'r1zero[ray]' (or pip install 'ray[default]>=2.40')"


def _ray():
    try:
        import ray
    except ImportError as e:
        raise ConfigError(RAY_INSTALL_HINT) from e
    return ray


def start_ray(cfg: TrainConfig) -> None:
    """Join ``--cluster.address`` or start a local Ray (no dashboard) sized for the job.
    Actor output (stdout/stderr) is forwarded to the driver, prefixed with the actor."""
    ray = _ray()
    if ray.is_initialized():
        return
    if cfg.cluster.address:
        ray.init(address=cfg.cluster.address, log_to_driver=True)
    else:
        ray.init(num_cpus=cfg.cluster.num_cpus, include_dashboard=False, log_to_driver=True)


PLACEMENT_WAIT_S = 60.0
"""How long to wait for free resources that the cluster has in total but another job holds."""


def actor_cpus(cfg: TrainConfig, total_cpus: float, gpu: bool) -> float:
    """CPUs Ray reserves per actor: ``--cluster.cpus-per-actor`` when given; else 1 on a
    GPU cluster, and on CPU the cores shared out, at most 1 each, so that every learner
    rank, critic rank and engine fits (2 ranks + 2 engines on 2 cores: 0.5 each)."""
    if cfg.cluster.cpus_per_actor is not None:
        return cfg.cluster.cpus_per_actor
    if gpu:
        return 1.0
    return min(1.0, total_cpus / max(1, actor_slots(cfg)))


def actor_slots(cfg: TrainConfig) -> int:
    """Actors that hold CPUs: learner ranks, PPO's critic ranks, and the engines (a
    collocated engine shares its rank's bundle, which then holds two shares)."""
    c = cfg.cluster
    critic = c.learners if cfg.algo.needs_critic else 0
    engines = 0 if (c.colocate and c.learners) else c.engines
    return c.learners * (2 if c.colocate and c.engines else 1) + critic + engines


def cluster_demand(cfg: TrainConfig, cpus: float, gpu: bool, engine_kind: str) -> dict[str, float]:
    """Total CPUs and GPUs the run's actors reserve (`actor_slots` x ``cpus``; a GPU per
    learner and critic rank, ``engine_tp`` per vLLM engine that is not collocated)."""
    c = cfg.cluster
    gpus = 0.0
    if gpu:
        gpus += c.learners * (2 if cfg.algo.needs_critic else 1)
        if engine_kind == "vllm" and not (c.colocate and c.learners):
            gpus += c.engines * c.engine_tp
    demand = {"CPU": actor_slots(cfg) * cpus}
    if gpus:
        demand["GPU"] = gpus
    return demand


def check_fits(demand: dict[str, float], total: dict[str, float]) -> None:
    """Raise a ConfigError naming what the actors need, what the Ray cluster has and the
    flags to change, when the cluster can never hold them (Ray would wait forever)."""
    short = {k: v for k, v in demand.items() if v > total.get(k, 0.0) + 1e-9}
    if short:
        need = ", ".join(f"{v:g} {k}" for k, v in demand.items())
        has = ", ".join(f"{total.get(k, 0.0):g} {k}" for k in demand)
        raise ConfigError(
            f"the cluster cannot place the run's actors: they need {need}, the Ray cluster has "
            f"{has}. Lower --cluster.learners / --cluster.engines / --cluster.engine-tp or "
            "--cluster.cpus-per-actor, or add nodes (--cluster.address)")


def wait_placed(pg, what: str) -> None:
    """Wait for a placement group; after `PLACEMENT_WAIT_S` say what it waits for and
    stop (its resources exist in the cluster but another job holds them)."""
    ray = _ray()
    done, _ = ray.wait([pg.ready()], timeout=PLACEMENT_WAIT_S)
    if not done:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(pg)
        raise ConfigError(
            f"the {what} could not be placed within {PLACEMENT_WAIT_S:.0f} s: they need "
            f"{pg.bundle_specs} and the Ray cluster has {ray.available_resources()} free of "
            f"{ray.cluster_resources()}; free those resources or lower --cluster.* sizes")


def plan_cluster(cfg: TrainConfig, engine_kind: str) -> tuple[TrainConfig, dict[str, float]]:
    """Start or join Ray, size the actors (`actor_cpus`) and check that the cluster can
    hold them (`check_fits`), before any actor is created; returns the config with the
    CPUs per actor in force and what was chosen (for config.json's resolved block)."""
    ray = _ray()
    start_ray(cfg)
    total = ray.cluster_resources()
    gpu = on_gpu(cfg)
    cpus = actor_cpus(cfg, total.get("CPU", 0.0), gpu)
    check_fits(cluster_demand(cfg, cpus, gpu, engine_kind), total)
    cfg = dataclasses.replace(cfg, cluster=dataclasses.replace(cfg.cluster, cpus_per_actor=cpus))
    return cfg, {"cpus_per_actor": cpus, "ray_cpus": total.get("CPU", 0.0), "ray_gpus": total.get("GPU", 0.0)}


def on_gpu(cfg: TrainConfig) -> bool:
    """Whether the actors get GPUs (the driver's view: CUDA visible and not --device cpu)."""
    return cfg.device != "cpu" and torch.cuda.is_available()


class ActorFailed(RuntimeError):
    """A learner rank or engine actor died; the message names it and the last checkpoint."""


def _get(refs, what: str, run_dir: Path | None):
    """``ray.get`` that turns a dead actor into an error naming it and where to resume."""
    ray = _ray()
    try:
        return ray.get(refs)
    except (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError) as e:
        last = ckpt.latest_checkpoint(run_dir) if run_dir else None
        raise ActorFailed(
            f"{what} died ({type(e).__name__}); the last checkpoint is {last or 'none'}; "
            f"continue with `r1zero train --resume {run_dir}`" if run_dir else f"{what} died") from e


# ----------------------------------------------------------------------------- learners
def _free_port() -> int:
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
    """One learner rank (the body of the `LearnerRank` actor; plain class for tests)."""

    def __init__(self, rank: int, world: int) -> None:
        self.rank, self.world = rank, world

    def endpoint(self) -> tuple[str, int]:
        """This node's address and a port free on it: the group's rendezvous (rank 0)."""
        import ray

        return ray.util.get_node_ip_address(), _free_port()

    def setup(self, master: tuple[str, int], cfg: TrainConfig, model_path: str,
              resume_from: str | None, role: str = "policy") -> bool:
        """Join the torch.distributed group at ``master`` and build this rank's share of
        the policy (or PPO's critic)."""
        import torch.distributed as dist

        from r1zero.cluster.fsdp import shard
        from r1zero.models import load_model
        from r1zero.learner.attention import check_output_layer, packed_rows, set_attention
        from r1zero.learner.local import LocalLearner, adamw

        rank, world = self.rank, self.world
        os.environ.update(MASTER_ADDR=master[0], MASTER_PORT=str(master[1]))
        cuda = torch.cuda.is_available() and cfg.device != "cpu"
        device = actor_device(cuda)
        if cuda:
            torch.cuda.set_device(device)
        else:
            torch.set_num_threads(max(1, int(cfg.cluster.cpus_per_actor)))
        dist.init_process_group(group_backend(cuda, cfg.cluster.cpu_offload), rank=rank, world_size=world)
        torch.manual_seed(cfg.seed)
        if role == "critic":
            self._init_critic(cfg, model_path, world, device, resume_from)
            return True
        model, tok = load_model(resume_from or model_path, device=str(device))
        check_output_layer(model)
        packed = packed_rows(cfg.packed, cfg.attn_implementation, model)
        set_attention(model, cfg.attn_implementation, device, packed)
        shard(model, world, device.type, bf16=cfg.precision != "fp32",
              activation_checkpointing=cfg.cluster.activation_checkpointing,
              cpu_offload=cfg.cluster.cpu_offload)
        ref = None
        if cfg.algo.needs_reference:
            ref, _ = load_model(model_path, device=str(device))
            set_attention(ref, cfg.attn_implementation, device, packed)
            shard(ref, world, device.type, bf16=cfg.precision != "fp32")
            ref.requires_grad_(False).eval()
        opt = adamw(model.parameters(), cfg)
        self.state = ckpt.TrainState(step=0)
        self.learner = LocalLearner(cfg, cfg.algo, model, model, opt, ref, packed,
                                    tok.pad_token_id, self.state, rank, world)
        if resume_from is not None:
            ckpt.load_optimizer(model, opt, Path(resume_from))
        return True

    def _init_critic(self, cfg: TrainConfig, model_path: str, world: int, device: torch.device,
                     resume_from: str | None) -> None:
        """PPO's critic rank: the value model (`r1zero.learner.critic`), FSDP2-sharded like
        the policy, with the critic's optimizer, learning rate and warm-up."""
        from r1zero.cluster.fsdp import shard
        from r1zero.models import load_tokenizer
        from r1zero.learner.critic import CRITIC_DIR, critic_config, load_value_model
        from r1zero.learner.attention import packed_rows, set_attention
        from r1zero.learner.local import LocalLearner, adamw

        state_dir = Path(resume_from) / CRITIC_DIR if resume_from is not None else None
        model = load_value_model(cfg.critic.model or model_path, str(device), state_dir)
        packed = packed_rows(cfg.packed, cfg.attn_implementation, model.backbone)
        set_attention(model.backbone, cfg.attn_implementation, device, packed)
        shard(model, world, device.type, bf16=cfg.precision != "fp32",
              activation_checkpointing=False, cpu_offload=cfg.cluster.cpu_offload)
        ccfg = critic_config(cfg)
        opt = adamw(model.parameters(), ccfg)
        if state_dir is not None:
            ckpt.load_optimizer(model, opt, state_dir)
        self.state = ckpt.TrainState(step=0)
        pad = load_tokenizer(model_path).pad_token_id
        self.learner = LocalLearner(ccfg, cfg.algo, model, model, opt, None, packed, pad,
                                    self.state, self.rank, world, role="critic")

    def values(self, seqs) -> dict:
        """Collective: V(s_t) of this rank's share (by position in ``seqs``)."""
        return self.learner.values(seqs)

    def update(self, seqs, step: int, optim_steps: int) -> dict:
        from r1zero.learner.local import run_update

        self.state.optim_steps = optim_steps
        return run_update(self.learner, seqs, step)

    def full_weights(self) -> dict | None:
        """Collective: every rank gathers; rank 0 returns the full state dict."""
        from r1zero.cluster.fsdp import full_state_dict

        return full_state_dict(self.learner.policy, keep=self.rank == 0)

    def open_transfer(self, path: str, engines: list, tp: int, dtype: str,
                      endpoint: tuple[str, int] | None) -> bool:
        """Collective (every rank): the learner side of the "nccl" / "ipc" sync path."""
        self.transfer = open_transfer(path, self.learner.policy, self.rank, engines, tp,
                                      torch_dtype(dtype), endpoint)
        return True

    def send_weights(self) -> bool:
        """Collective (every rank gathers; rank 0 sends): one sync over the open transfer."""
        self.transfer.send_weights()
        return True

    def save(self, path: str) -> bool:
        """Collective, sharded: every rank writes its own shards of the weights and of the
        optimizer state with torch.distributed.checkpoint. The weights go through DCP's
        Hugging Face writer, which rank 0 then consolidates into HF safetensors (+ index),
        readable by transformers and vLLM, without gathering the model into one rank's
        memory; the optimizer stays in DCP's format (`optim_dcp/`, FQN keys)."""
        import shutil

        import torch.distributed as dist
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint import HuggingFaceStorageWriter

        model = self.learner.policy
        sd = model.state_dict()
        if getattr(model.config, "tie_word_embeddings", False):
            sd.pop("lm_head.weight", None)  # safetensors refuses shared storage; HF re-ties on load
        dcp.save(sd, storage_writer=HuggingFaceStorageWriter(
            path=path, save_distributed=True, enable_consolidation=True))
        ckpt.save_optimizer(model, self.learner.optimizer, Path(path))
        dist.barrier()  # consolidation (rank 0) has read every rank's shards
        if self.rank == 0:
            shutil.rmtree(Path(path) / "sharded", ignore_errors=True)
        if self.rank == 0 and self.learner.role == "policy":
            model.config.save_pretrained(path)
            if getattr(model, "generation_config", None) is not None:
                model.generation_config.save_pretrained(path)
        return True

    def ping(self) -> int:
        return self.rank


class LearnerGroup:
    """The Learner seam over N Ray actors forming one torch.distributed group."""

    def __init__(self, cfg: TrainConfig, model_path: str, state: ckpt.TrainState,
                 run_dir: Path, resume_from: Path | None, role: str = "policy") -> None:
        ray = _ray()
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        n = cfg.cluster.learners
        gpus = 1 if on_gpu(cfg) else 0
        cpus = cfg.cluster.cpus_per_actor
        share = 2 if cfg.cluster.colocate and role == "policy" else 1  # a collocated engine: the other half
        self.pg = placement_group([{"CPU": cpus * share, **({"GPU": gpus} if gpus else {})}] * n,
                                  strategy="PACK")
        wait_placed(self.pg, f"{n} {role} ranks")
        actor = ray.remote(num_cpus=cpus, num_gpus=gpus / share)(LearnerRankImpl)
        self.ranks = [
            actor.options(scheduling_strategy=PlacementGroupSchedulingStrategy(
                placement_group=self.pg, placement_group_bundle_index=r)).remote(r, n)
            for r in range(n)
        ]
        self.state, self.run_dir, self.role = state, run_dir, role
        self.path = "object_store"
        self.master = start_ranks(self.ranks, lambda refs: _get(refs, f"a {role} rank", run_dir),
                                  cfg, model_path, None if resume_from is None else str(resume_from), role)

    def values(self, seqs) -> dict[int, list[float]]:
        """Critic group: V(s_t) of every sequence (each rank scores its share)."""
        ray = _ray()
        ref = ray.put(seqs)
        out: dict[int, list[float]] = {}
        for part in _get([a.values.remote(ref) for a in self.ranks], "a critic rank", self.run_dir):
            out.update(part)
        return out

    def connect(self, pool: "RayEnginePool", path: str, dtype: str) -> None:
        """Open the "nccl" or "ipc" weight transfer to ``pool``'s engines (on every rank)."""
        endpoint = _get(self.ranks[0].endpoint.remote(), "learner rank 0", self.run_dir)
        _get([a.open_transfer.remote(path, pool.engines, pool.tp, dtype, endpoint) for a in self.ranks],
             "a learner rank", self.run_dir)
        self.path = path

    def sync_to(self, backend) -> None:
        """Every engine gets the new weights: over the open transfer, or (object store)
        gathered by all ranks and put in the store once."""
        if self.path == "object_store":
            backend.update_weights(self.weights())
        else:
            _get([a.send_weights.remote() for a in self.ranks], "a learner rank", self.run_dir)

    def update(self, seqs, step: int) -> dict[str, float]:
        from r1zero.learner.local import update_metrics

        ray = _ray()
        ref = ray.put(seqs)  # one copy in the object store, read by every rank
        parts = _get([a.update.remote(ref, step, self.state.optim_steps) for a in self.ranks],
                     "a learner rank", self.run_dir)
        self.state.optim_steps += len(parts[0]["grad_norms"])
        return update_metrics(parts)

    def weights(self) -> Iterable[tuple[str, torch.Tensor]]:
        sds = _get([a.full_weights.remote() for a in self.ranks], "a learner rank", self.run_dir)
        return sds[0].items()

    def save(self, run_dir: Path, tokenizer, state: ckpt.TrainState, keep: int) -> Path:
        return ckpt.save_with(run_dir, tokenizer, state, keep, self.write)

    def write(self, path: Path) -> None:
        """Collective: every rank writes its shards of weights and optimizer into ``path``."""
        Path(path).mkdir(parents=True, exist_ok=True)
        _get([a.save.remote(str(path)) for a in self.ranks], f"a {self.role} rank", self.run_dir)

    def close(self) -> None:
        ray = _ray()
        for a in self.ranks:
            ray.kill(a)
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(self.pg)


# ----------------------------------------------------------------------------- engines
class EngineImpl:
    """One rollout engine (the body of an `EngineActor`): the transformers backend, or
    vLLM (GPU, or vLLM-CPU inside the actor). On GPUs vLLM is built with the weight-transfer
    backend of the run's sync path, sleep mode when collocated, and its multiprocessing
    executor when one engine spans ``engine_tp`` GPUs."""

    def __init__(self, cfg: TrainConfig, model_path: str, kind: str, path: str = "object_store") -> None:
        from r1zero.rollout import make_backend

        if not torch.cuda.is_available():
            torch.set_num_threads(max(1, int(cfg.cluster.cpus_per_actor)))
        if kind == "vllm":
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
            extra = {}
            if path != "object_store":
                extra["weight_transfer_config"] = {"backend": path}
            if cfg.cluster.engine_tp > 1:  # the in-process "uni" executor drives one device
                extra["distributed_executor_backend"] = "mp"
            self.backend = make_backend("vllm", model_path=model_path, dtype=cfg.vllm_dtype,
                                        gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                                        max_model_len=cfg.max_model_len,
                                        cpu_kv_cache_gib=cfg.vllm_cpu_kv_cache_gib,
                                        seed=cfg.seed, tensor_parallel_size=cfg.cluster.engine_tp,
                                        enable_sleep_mode=cfg.cluster.colocate, **extra)
        else:
            self.backend = make_backend("hf", model_path=model_path)

    def ping(self) -> bool:
        """Answered once the engine is built (the pool waits for every engine)."""
        return True

    def generate(self, prompts, params, seeds):
        return self.backend.generate(prompts, params, seeds)

    def update_weights(self, state_dict: dict) -> bool:
        self.backend.update_weights(state_dict.items())
        return True

    def weights(self) -> dict:
        return {n: p.detach().clone() for n, p in self.backend.model.state_dict().items()}

    def sleep(self) -> None:
        self.backend.sleep()

    def wake(self) -> None:
        self.backend.wake()

    # vLLM's weight-transfer control plane (weight_sync.EnginesClient calls these).
    def transfer_init(self, init_info: dict) -> None:
        self.backend.llm.init_weight_transfer_engine({"init_info": init_info})

    def transfer_start(self) -> None:
        self.backend.llm.start_weight_update()

    def transfer_update(self, update_info: dict) -> None:
        self.backend.llm.update_weights({"update_info": update_info})

    def transfer_finish(self) -> None:
        self.backend.llm.finish_weight_update()
        self.backend.llm.reset_prefix_cache()  # cached prompt KV came from the old weights


class RayEnginePool:
    """The RolloutBackend seam over M engine actors: prompts sharded as in `EnginePool`,
    the shards generated concurrently, completions prompt-major."""

    def __init__(self, cfg: TrainConfig, model_path: str, kind: str, run_dir: Path,
                 path: str = "object_store", learners: LearnerGroup | None = None) -> None:
        ray = _ray()
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.tp = cfg.cluster.engine_tp
        gpus = self.tp if kind == "vllm" and on_gpu(cfg) else 0
        actor = ray.remote(EngineImpl)
        self.engines = []
        for e in range(cfg.cluster.engines):
            if cfg.cluster.colocate and learners is not None:  # beside learner rank e
                opts = dict(num_cpus=cfg.cluster.cpus_per_actor, num_gpus=gpus / 2,
                            scheduling_strategy=PlacementGroupSchedulingStrategy(
                                placement_group=learners.pg, placement_group_bundle_index=e))
            else:
                opts = dict(num_cpus=cfg.cluster.cpus_per_actor, num_gpus=gpus)
            self.engines.append(actor.options(**opts).remote(cfg, model_path, kind, path))
        self.run_dir = run_dir
        # Every engine built before anyone uses the pool: the NCCL weight-transfer
        # rendezvous (vLLM's store waits 300 s) must not start while an engine still loads,
        # and an engine that fails to build is named here, not at the first generate.
        _get([e.ping.remote() for e in self.engines], "a rollout engine (while starting)", run_dir)

    def generate(self, prompts: Sequence[str], params: SamplingParams,
                 prompt_seeds: Sequence[int]) -> list[Completion]:
        check_prompt_seeds(prompts, prompt_seeds)
        bounds = shard_bounds(len(prompts), len(self.engines))
        refs = [e.generate.remote(list(prompts[lo:hi]), params, list(prompt_seeds[lo:hi]))
                for e, (lo, hi) in zip(self.engines, bounds)]
        out: list[Completion] = []
        for (lo, _), got in zip(bounds, _get(refs, "a rollout engine", self.run_dir)):
            out += [dataclasses.replace(c, prompt_index=c.prompt_index + lo) for c in got]
        return out

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        ray = _ray()
        ref = ray.put(dict(named_tensors))  # once in the object store, read by every engine
        _get([e.update_weights.remote(ref) for e in self.engines], "a rollout engine", self.run_dir)

    def engine_weights(self) -> list[dict]:
        """Every engine's current weights (for tests and checks)."""
        return _get([e.weights.remote() for e in self.engines], "a rollout engine", self.run_dir)

    def sleep(self) -> None:
        _get([e.sleep.remote() for e in self.engines], "a rollout engine", self.run_dir)

    def wake(self) -> None:
        _get([e.wake.remote() for e in self.engines], "a rollout engine", self.run_dir)

    def close(self) -> None:
        ray = _ray()
        for e in self.engines:
            ray.kill(e)
