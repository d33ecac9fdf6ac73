"""The teacher of on-policy distillation (``--algorithm opd``): it scores the student's own
tokens, and each response token's advantage becomes (1 − w) A_i + w (log π_T − log π_S)
(core/distill.py). Two teachers with one method, ``logprobs(seqs)``: a local model run like
the learner's reference model (packed micro-batches, the fused log-prob pass), or an
OpenAI-compatible server's prompt log-probs (vLLM: completions with ``echo``)."""

from __future__ import annotations

import dataclasses
import time
from typing import Protocol

import torch

from r1zero.config import ConfigError, TrainConfig
from r1zero.core.distill import as_tensor, distill_advantages, teacher_rewards
from r1zero.learner.attention import packed_rows, set_attention
from r1zero.learner.batching import TrainSequence, make_micro_batches
from r1zero.learner.logprobs import response_logprobs
from r1zero.models import load_model
from r1zero.rollout.openai import OpenAIBackend


class Teacher(Protocol):
    def logprobs(self, seqs: list[TrainSequence]) -> list[list[float]]:
        """log π_T(o_t | q, o_<t) of every response token of each sequence."""
        ...


class LocalTeacher:
    """A teacher model in this process (frozen; the learner's precision and kernels)."""

    def __init__(self, model: torch.nn.Module, precision: str, packed: bool, pad_token_id: int,
                 micro_batch_tokens: int) -> None:
        self.model, self.precision, self.packed = model.eval().requires_grad_(False), precision, packed
        self.pad, self.budget = pad_token_id, micro_batch_tokens

    @torch.no_grad()
    def logprobs(self, seqs: list[TrainSequence]) -> list[list[float]]:
        out: list[list[float]] = [[] for _ in seqs]
        for mb in make_micro_batches(seqs, self.budget, self.pad, self.packed):
            lp, _ = response_logprobs(self.model, mb, temperature=1.0, precision=self.precision)  # [n, W]
            mask = mb.response_mask.to(lp.device).bool()
            for row, i in enumerate(mb.index):
                out[i] = lp[row][mask[row]].double().cpu().tolist()
        return out


class ServerTeacher:
    """A teacher behind an OpenAI-compatible server: one scoring request per sequence."""

    def __init__(self, client: OpenAIBackend) -> None:
        self.client = client

    def logprobs(self, seqs: list[TrainSequence]) -> list[list[float]]:
        scored = self.client.prompt_logprobs([s.prompt_ids + s.response_ids for s in seqs])
        return [lp[len(s.prompt_ids):] for s, lp in zip(seqs, scored)]


def build_teacher(cfg: TrainConfig, device: torch.device, precision: str, tokenizer) -> Teacher | None:
    """The run's teacher (None without ``--teacher.model``). A local teacher must share the
    student's vocabulary: its log-probs are of the student's token ids."""
    t = cfg.teacher
    if not t.enabled:
        return None
    if t.base_url:
        return ServerTeacher(OpenAIBackend(t.base_url, t.model, api_key_env=t.api_key_env,
                                           concurrency=t.concurrency, timeout_s=t.request_timeout_s))
    model, teacher_tok = load_model(t.model, dtype="bfloat16" if precision == "bf16" else "float32",
                                    device=str(device))
    if teacher_tok.get_vocab() != tokenizer.get_vocab():
        raise ConfigError(f"--teacher.model {t.model}: its tokenizer differs from the student's "
                          f"({cfg.model}); distillation compares log-probs of the same token ids")
    packed = packed_rows(cfg.packed, cfg.attn_implementation, model)
    set_attention(model, cfg.attn_implementation, device, packed)
    return LocalTeacher(model, precision, packed, tokenizer.pad_token_id, t.micro_batch_tokens)


def with_teacher(teacher: Teacher, seqs: list[TrainSequence], weight: float
                 ) -> tuple[list[TrainSequence], dict[str, float]]:
    """The sequences with token advantages A_t = (1 − w) A_i + w (log π_T − log π_S), the
    student's log-probs being the sampler's (the policy that drew the tokens); and the
    metrics ``reward/teacher`` (mean r_t over the step's tokens) and ``perf/teacher_s``."""
    if not seqs:
        return seqs, {}
    if any(s.sampler_logprobs is None for s in seqs):
        raise ValueError("on-policy distillation needs the sampler's log-prob of every token "
                         "(the hf and vllm engines return them)")
    start = time.perf_counter()
    scored = teacher.logprobs(seqs)
    out, total, tokens = [], 0.0, 0
    for s, lp in zip(seqs, scored):
        t_lp, s_lp = as_tensor(lp), as_tensor(s.sampler_logprobs)  # [T] each
        total += float(teacher_rewards(t_lp, s_lp).sum())
        tokens += len(lp)
        adv = distill_advantages(s.advantage, t_lp, s_lp, weight)  # [T]
        out.append(dataclasses.replace(s, token_advantages=adv.tolist()))
    return out, {"reward/teacher": total / max(tokens, 1), "perf/teacher_s": time.perf_counter() - start}
