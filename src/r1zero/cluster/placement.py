"""Ray for the cluster: start or join it, size the actors to what it has, check that they
fit before any starts, wait for placement with a message instead of forever, and call
actors so that a dead one is named with the run's last checkpoint.

Ray is imported only here and in the modules of this package (an optional dependency:
``pip install 'r1zero[ray]'``); single-process runs never import it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from r1zero.config import ConfigError, TrainConfig
from r1zero.learner import checkpoint as ckpt

RAY_INSTALL_HINT = "the cluster needs Ray: pip install 'r1zero[ray]' (or pip install 'ray[default]>=2.40')"


def ray_module():
    """``import ray`` (optional dependency), or a ConfigError saying how to install it."""
    try:
        import ray  # optional: the cluster extra
    except ImportError as e:
        raise ConfigError(RAY_INSTALL_HINT) from e
    return ray


def start_ray(cfg: TrainConfig) -> None:
    """Join ``--cluster.address`` or start a local Ray (no dashboard) sized for the job.
    Actor output (stdout/stderr) is forwarded to the driver, prefixed with the actor."""
    ray = ray_module()
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
    ray = ray_module()
    done, _ = ray.wait([pg.ready()], timeout=PLACEMENT_WAIT_S)
    if not done:
        from ray.util.placement_group import remove_placement_group

        remove_placement_group(pg)
        raise ConfigError(
            f"the {what} could not be placed within {PLACEMENT_WAIT_S:.0f} s: they need "
            f"{pg.bundle_specs} and the Ray cluster has {ray.available_resources()} free of "
            f"{ray.cluster_resources()}; free those resources or lower --cluster.* sizes")


@dataclass(frozen=True)
class ClusterPlan:
    """What the Ray cluster holds and how the run's actors are sized on it."""

    cpus_per_actor: float
    gpu: bool
    """Actors get GPUs (the driver sees CUDA and --device is not cpu)."""
    ray_cpus: float
    ray_gpus: float

    def record(self) -> dict[str, float | bool]:
        return dataclasses.asdict(self)


def plan_cluster(cfg: TrainConfig, engine_kind: str) -> ClusterPlan:
    """Start or join Ray, size the actors (`actor_cpus`) and check that the cluster can
    hold them (`check_fits`), before any actor is created."""
    ray = ray_module()
    start_ray(cfg)
    total = ray.cluster_resources()
    gpu = on_gpu(cfg)
    cpus = actor_cpus(cfg, total.get("CPU", 0.0), gpu)
    check_fits(cluster_demand(cfg, cpus, gpu, engine_kind), total)
    return ClusterPlan(cpus, gpu, total.get("CPU", 0.0), total.get("GPU", 0.0))


def on_gpu(cfg: TrainConfig) -> bool:
    """Whether the actors get GPUs (the driver's view: CUDA visible and not --device cpu)."""
    return cfg.device != "cpu" and torch.cuda.is_available()


class ActorFailed(RuntimeError):
    """A learner rank or engine actor died; the message names it and the last checkpoint."""


def wait_for(refs, what: str, run_dir: Path | None):
    """``ray.get`` that turns a dead actor into an error naming it and where to resume."""
    ray = ray_module()
    try:
        return ray.get(refs)
    except (ray.exceptions.RayActorError, ray.exceptions.ActorDiedError) as e:
        last = ckpt.latest_checkpoint(run_dir) if run_dir else None
        raise ActorFailed(
            f"{what} died ({type(e).__name__}); the last checkpoint is {last or 'none'}; "
            f"continue with `r1zero train --resume {run_dir}`" if run_dir else f"{what} died") from e
