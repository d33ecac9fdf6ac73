"""The seam between the trainer / evaluator and text generation: `RolloutBackend`.

Every backend (transformers, vLLM, OpenAI-compatible HTTP, fake) returns the same
`Completion` records, so the training loop never knows which one it talks to. A prompt is
text (a rendered template, tokenised by `r1zero.rollout.hf.encode_prompts`) or a list of
token ids, used as they are: an episode's later turns continue from the exact tokens the
sampler produced and the environment's tokens (r1zero.envs), never a re-tokenised transcript.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

Prompt = str | Sequence[int]
"""Text to tokenise, or token ids to feed as they are."""


@dataclass(frozen=True)
class SamplingParams:
    """How to sample. ``temperature == 0`` means greedy."""

    n: int = 1
    """Samples per prompt (G in GRPO)."""
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 256
    stop: tuple[str, ...] = ()
    """Stop strings (besides the tokenizer's EOS). The stop string is kept in the text and
    token ids (the r1 template stops at and keeps ``</answer>``)."""
    logprobs: bool = True
    """Return the sampler's log-prob of each generated token (after temperature)."""


@dataclass
class Completion:
    """One sampled response."""

    prompt_index: int
    """Index of the prompt in the `generate` call's ``prompts``."""
    sample_index: int
    """0..n-1 within that prompt's group."""
    prompt_token_ids: list[int]
    token_ids: list[int]
    """Generated token ids, including the EOS / stop-string tokens that ended generation."""
    text: str
    """Decoded generated text (special tokens skipped)."""
    finish_reason: str
    """"stop" (EOS or stop string) or "length" (hit max_new_tokens: truncated)."""
    logprobs: list[float] | None = None
    """Sampler's log-prob of each token in ``token_ids`` (temperature applied), or None."""
    extra: dict = field(default_factory=dict)
    weight_version: int = 0
    """The policy version that sampled it (rollout steps trained before its weights; the
    training loop stamps it, train/source.py): with in-flight weight updates, the version
    of its first token."""
    token_versions: list[int] | None = None
    """The weight version that sampled each token of ``token_ids`` (an engine with an
    update hook fills it, see `UpdateHook`; the loop fills it otherwise)."""
    seed: int | None = None
    """The sample's seed, ``derive_seed(prompt_seed, sample_index)`` (the loop records it)."""
    loss_mask: list[int] | None = None
    """Per token of ``token_ids``: 1 = sampled by the policy (trained on), 0 = written by an
    environment (attended to, never trained on; r1zero.envs); None = every token sampled."""

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


UpdateHook = Callable[[], int]
"""In-flight weight updates (``--rollout.partial``): an engine that has an ``update_hook``
attribute calls it between two tokens of a `generate` call, from the generating thread.
The hook may load new weights into the engine (through its ``load_weights``) before it
returns; it returns the weight version the engine then holds. When that version changed,
the engine recomputes what it cached of every unfinished sample (prompt + tokens so far)
with the new weights before it samples the next token, so each token's log-prob is exactly
that of the version recorded for it (`Completion.token_versions`)."""


def check_prompt_seeds(prompts: Sequence[Prompt], prompt_seeds: Sequence[int]) -> None:
    """Every backend's argument check: exactly one seed per prompt."""
    if len(prompt_seeds) != len(prompts):
        raise ValueError(f"{len(prompts)} prompts but {len(prompt_seeds)} prompt_seeds")


@runtime_checkable
class RolloutBackend(Protocol):
    """Generation engine used by training and evaluation.

    ``prompt_seeds[i]`` seeds prompt i; sample j of it uses ``derive_seed(prompt_seeds[i], j)``
    so results do not depend on batch composition.
    """

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams, prompt_seeds: Sequence[int]
    ) -> list[Completion]:
        """Return ``len(prompts) * params.n`` completions, prompt-major
        (prompt 0 samples 0..n-1, then prompt 1, ...). A prompt is text or token ids."""
        ...

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Load new policy weights (HF parameter names) into the engine."""
        ...

    def sleep(self) -> None:
        """Release generation memory (KV cache, weights on GPU) while the learner trains."""
        ...

    def wake(self) -> None:
        """Undo `sleep`."""
        ...

    def close(self) -> None:
        """Free every resource; the backend is unusable afterwards."""
        ...
