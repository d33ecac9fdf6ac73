"""Weight sync, learner ranks -> every rollout engine, after each optimizer step.

Which path a run takes (`sync_path`) depends only on where the engines run:

    "nccl"          vLLM engines on GPUs of their own. vLLM's weight-transfer API: learner
                    rank 0 and every engine worker form one NCCL group (rank 0 + M x tp
                    workers); rank 0 broadcasts the weights in packed buckets (vLLM's
                    ``packed_tensor`` double buffers, not one call per tensor), and each
                    worker loads them with vLLM's layerwise reload.
    "ipc"           vLLM engines collocated with the learners (``--cluster.colocate``):
                    each learner rank gathers the full tensors on its own GPU, the CUDA
                    IPC handles are all-gathered over the learner group, rank 0 ships them,
                    and each engine opens the one on its GPU: no copy at all.
    "object_store"  everything else (CPU, transformers engines): rank 0's gathered
                    state dict goes into Ray's object store once and every engine loads it.

In all three, *every* learner rank takes part in gathering full tensors from FSDP2
(``DTensor.full_tensor`` is a collective: one rank gathering alone waits forever).

Why vLLM's API rather than our own NCCL group: it is the engine's own contract for this
(the worker side, layerwise reload of fused layers, packed buffers, the concurrent
broadcast/receive handshake), maintained with the engine; r1zero adds only what is
specific to it: several engine actors behind one client (`EnginesClient`, each engine's
workers at their own ranks) and a source that sends the engine's dtype
(`cast_source`). vLLM is imported only on these two GPU paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

SYNC_PATHS = ("nccl", "ipc", "object_store")


def torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of an engine dtype name (bfloat16, float16, float32). ``auto`` must
    have been resolved (r1zero/machine.py) before weights are cast for the engines."""
    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "half": torch.float16,
              "float32": torch.float32, "float": torch.float32}
    if name not in dtypes:
        raise ValueError(f"engine dtype {name!r}: expected one of {sorted(dtypes)} "
                         "(resolve 'auto' with r1zero.machine.resolve_dtype first)")
    return dtypes[name]


def sync_path(engine_kind: str, on_gpu: bool, colocate: bool, adapters: bool = False) -> str:
    """The weight-sync path for engines of ``engine_kind`` ("vllm" or "hf"). LoRA
    (``adapters``) always takes the object store: an adapter is megabytes, and vLLM
    receives it through its LoRA API, not the weight-transfer engine."""
    if engine_kind != "vllm" or not on_gpu or adapters:
        return "object_store"
    return "ipc" if colocate else "nccl"


def engine_init_infos(init_info: dict[str, Any], num_engines: int, tp: int) -> list[dict[str, Any]]:
    """One worker init payload per engine. NCCL: the group is rank 0 (learner rank 0) plus
    every engine's ``tp`` workers; vLLM adds a worker's own rank to ``rank_offset``, so
    engine ``e`` gets ``1 + e * tp``. Payloads without a rank offset (IPC) go out as they are."""
    if "rank_offset" not in init_info:
        return [dict(init_info) for _ in range(num_engines)]
    return [{**init_info, "rank_offset": 1 + e * tp} for e in range(num_engines)]


class EnginesClient:
    """vLLM's ``VLLMWeightSyncClient`` protocol over M engine actors (`r1zero.cluster.engine_pool.EngineImpl`):
    every call fans out to all engines and waits for all of them, so the learner-side
    transfer engine drives the M engines as one."""

    def __init__(self, engines: Sequence, tp: int) -> None:
        self.engines, self.tp = list(engines), tp

    def _all(self, method: str, payloads: Sequence | None = None) -> None:
        import ray

        calls = [getattr(e, method) for e in self.engines]
        ray.get([c.remote() if payloads is None else c.remote(p)
                 for c, p in zip(calls, payloads or [None] * len(calls))])

    def init_weight_transfer_engine(self, init_info: dict[str, Any]) -> None:
        self._all("transfer_init", engine_init_infos(init_info, len(self.engines), self.tp))

    def start_weight_update(self) -> None:
        self._all("transfer_start")

    def update_weights(self, update_info) -> None:
        self._all("transfer_update", [update_info] * len(self.engines))

    def finish_weight_update(self, weight_version: str | None = None) -> None:
        self._all("transfer_finish")


def cast_source(module: torch.nn.Module, dtype: torch.dtype):
    """vLLM ``WeightSource`` over ``module.named_parameters()`` (HF names; a tied output
    layer appears once, as the embedding) in the engines' ``dtype``. Each FSDP2 shard is
    cast *before* its all-gather, so the gather moves 2 bytes per bf16 parameter, not 4.

    The class is built here, not at module level, so that importing r1zero.cluster never
    imports vLLM (it subclasses vLLM's source to keep its default group/order helpers)."""
    from vllm.distributed.weight_transfer.base import (
        ModuleSource,
        ParamMeta,
        materialize_full_tensor,
    )

    class CastModuleSource(ModuleSource):
        def _wire(self, p: torch.Tensor) -> torch.dtype:
            return dtype if p.is_floating_point() else p.dtype

        def metadata(self) -> list:
            return [ParamMeta(n, self._wire(p), tuple(p.shape)) for n, p in self._module.named_parameters()]

        def __iter__(self):
            for name, p in self._module.named_parameters():
                yield name, materialize_full_tensor(p.detach().to(self._wire(p)))

    return CastModuleSource(module)


def open_sync(path: str, module: torch.nn.Module, rank: int, engines: Sequence, tp: int,
                  dtype: torch.dtype, endpoint: tuple[str, int] | None):
    """The learner side of the "nccl" or "ipc" path, opened on every learner rank (rank 0
    is the sender; the others only take part in the gathers). Returns vLLM's trainer
    transfer engine; ``send_weights()`` on all ranks then performs one sync. NCCL needs
    rank 0's ``endpoint`` (address, free port) for the rendezvous."""
    source = cast_source(module, dtype)
    client = EnginesClient(engines, tp)
    if path == "nccl":
        from vllm.distributed.weight_transfer.nccl_engine import (
            NCCLTrainerInitInfo,
            NCCLTrainerWeightTransferEngine,
        )

        assert endpoint is not None
        info = NCCLTrainerInitInfo(master_address=endpoint[0], master_port=endpoint[1],
                                   world_size=1 + len(engines) * tp, rank=rank, packed=True)
        return NCCLTrainerWeightTransferEngine.trainer_init(info, client=client, source=source)
    if path == "ipc":
        from vllm.distributed.weight_transfer.ipc_engine import (
            IPCTrainerInitInfo,
            IPCTrainerWeightTransferEngine,
        )

        info = IPCTrainerInitInfo(rank=rank, packed=True)
        return IPCTrainerWeightTransferEngine.trainer_init(info, client=client, source=source)
    raise ValueError(f"no learner-side transfer for sync path {path!r}")
