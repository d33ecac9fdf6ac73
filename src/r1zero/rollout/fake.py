"""A scripted `RolloutBackend` for tests: known responses, real tokenisation, no model."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch

from r1zero.rollout.base import Completion, Prompt, SamplingParams
from r1zero.rollout.hf import encode_prompts, truncate_after_stop
from r1zero.utils import derive_seed

Responder = Callable[[str, int, int], str]
"""``(prompt, sample_index, sample_seed) -> response text``."""


class FakeBackend:
    """Returns scripted responses, tokenised with a real tokenizer.

    ``responses`` is a callable ``(prompt, sample_index, sample_seed) -> str`` or a list
    used in order (cycled) over the prompt-major completions of each call. Stop strings
    and ``max_new_tokens`` truncate like a real engine; a response that ends on its own gets
    the tokenizer's EOS appended (finish_reason "stop"). Every token's log-prob is
    ``logprob``. Calls and weight updates are recorded for assertions.
    """

    def __init__(self, tokenizer, responses: Responder | Sequence[str], *, logprob: float = -1.0):
        self.tokenizer = tokenizer
        self.responses = responses
        self.logprob = logprob
        self.calls: list[tuple[list[str], SamplingParams, list[int]]] = []
        self.weight_updates: list[dict[str, torch.Tensor]] = []
        self.asleep = False
        self.closed = False

    def _response(self, prompt: str, k: int, j: int, seed: int) -> str:
        if callable(self.responses):
            return self.responses(prompt, j, seed)
        return self.responses[k % len(self.responses)]

    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams, prompt_seeds: Sequence[int]
    ) -> list[Completion]:
        if self.closed or self.asleep:
            raise RuntimeError("FakeBackend.generate called while closed or asleep")
        self.calls.append((list(prompts), params, list(prompt_seeds)))
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        # A responder reads text: a token-id prompt (an episode's context) is decoded for it.
        texts = [p if isinstance(p, str) else self.tokenizer.decode(p) for p in prompts]
        out = []
        for i, prompt in enumerate(texts):
            for j in range(params.n):
                seed = derive_seed(prompt_seeds[i], j)
                text = self._response(prompt, i * params.n + j, j, seed)
                out.append(self._complete(i, j, prompt_ids[i], text, params))
        return out

    def _complete(self, i: int, j: int, prompt_ids, text: str, params: SamplingParams) -> Completion:
        stopped = truncate_after_stop(text, params.stop)
        ids = self.tokenizer(stopped, add_special_tokens=False)["input_ids"]
        finish = "stop"
        hit_stop = any(stop and stop in text for stop in params.stop)
        if not hit_stop and self.tokenizer.eos_token_id is not None:
            ids = ids + [self.tokenizer.eos_token_id]  # ended on its own: EOS, as a model would
        if len(ids) > params.max_new_tokens:
            ids, finish = ids[: params.max_new_tokens], "length"
        return Completion(
            prompt_index=i,
            sample_index=j,
            prompt_token_ids=list(prompt_ids),
            token_ids=ids,
            text=self.tokenizer.decode(ids, skip_special_tokens=True),
            finish_reason=finish,
            logprobs=[self.logprob] * len(ids) if params.logprobs else None,
        )

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        self.weight_updates.append({k: v.detach().clone() for k, v in named_tensors})

    def sleep(self) -> None:
        self.asleep = True

    def wake(self) -> None:
        self.asleep = False

    def close(self) -> None:
        self.closed = True
