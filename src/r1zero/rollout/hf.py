"""Transformers rollout backend: a hand-written KV-cache decoding loop with per-sample seeds.

The dependency-light fallback for a CPU or a single GPU. In training it samples from the
learner's own module (the bf16 compute copy under ``--precision bf16``), which every
optimizer step refreshes in place, so a weight sync has nothing to copy.

Why not ``model.generate``: it draws every row from one global RNG, so a sample depends on
which other rows share its batch. Here row (i, j) owns a ``torch.Generator`` seeded with
``derive_seed(prompt_seeds[i], j)`` and draws one uniform number per token from it, so the
same (prompt, seed) gives the same sample alone or in any batch. The loop is also faster
than ``generate`` on CPU (bench/bench_rollout.py, docs/bench-notes/rollout.md): it prefills
each prompt once for its n samples, computes logits only for the last position, and drops
finished rows from the batch and the cache.

Partial rollouts: with an ``update_hook`` (rollout/base.py `UpdateHook`) new weights may
arrive between two tokens; the unfinished rows are then prefilled again with them (prompt +
tokens so far), so every token's log-prob is that of the version recorded for it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from r1zero.adapters import has_adapters, load_adapter_tensors
from r1zero.models import eos_token_ids
from r1zero.rollout.base import Completion, Prompt, SamplingParams, UpdateHook, check_prompt_seeds
from r1zero.utils import derive_seed


def encode_prompts(tokenizer, prompts: Sequence[Prompt]) -> list[list[int]]:
    """Token ids of each (already templated) prompt, identical for every backend; a prompt
    given as token ids is returned as it is (an episode's growing context, r1zero.envs).

    Special tokens are added as the tokenizer defines them (e.g. Llama's BOS), but a BOS
    that the template already wrote is not doubled.
    """
    texts = [p for p in prompts if isinstance(p, str)]
    encoded = iter(tokenizer(texts, add_special_tokens=True)["input_ids"] if texts else [])
    out = []
    bos = tokenizer.bos_token_id
    for prompt in prompts:
        if not isinstance(prompt, str):
            out.append(list(prompt))
            continue
        ids = next(encoded)
        if bos is not None and len(ids) > 1 and ids[0] == ids[1] == bos:
            ids = ids[1:]
        out.append(list(ids))
    return out


def sample_next_token(
    logits: torch.Tensor, temperature: float, top_p: float, generators: Sequence[torch.Generator]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw one token per row; returns ``(tokens [B], logprobs [B])``.

    The log-prob is that of the distribution actually sampled from: log_softmax(logits / T),
    restricted to the top-p nucleus and renormalised when ``top_p < 1`` (vLLM's
    ``processed_logprobs``). With top_p = 1 it is exactly what the learner recomputes.
    Greedy (T = 0) returns the argmax and log_softmax(logits), i.e. T taken as 1.
    """
    logp = F.log_softmax(logits.float() / (temperature or 1.0), dim=-1)  # [B, V]
    if temperature == 0:
        tokens = logp.argmax(dim=-1)
    else:
        if top_p < 1.0:
            logp = _top_p_renormalise(logp, top_p)
        # Inverse-CDF sampling with one uniform per row from that row's own generator.
        # fp64 cumsum so the CDF ends within 1e-12 of 1; scaling u by the CDF's end keeps the
        # index in range, and right=True never lands on a zero-probability token.
        cdf = logp.double().exp().cumsum(dim=-1)  # [B, V]
        u = torch.stack([torch.rand((), generator=g, dtype=torch.float64) for g in generators])
        u = u.to(cdf.device)  # drawn on the CPU so streams match across devices
        tokens = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
        tokens = tokens.clamp_(max=logits.shape[-1] - 1)
    return tokens, logp.gather(1, tokens.unsqueeze(1)).squeeze(1)


def _top_p_renormalise(logp: torch.Tensor, top_p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose mass reaches ``top_p`` (at least
    one token), set the rest to -inf and renormalise."""
    sorted_logp, order = logp.sort(dim=-1, descending=True)
    mass_before = sorted_logp.exp().cumsum(dim=-1) - sorted_logp.exp()  # mass of better tokens
    drop_sorted = mass_before >= top_p
    drop = torch.zeros_like(drop_sorted).scatter_(1, order, drop_sorted)
    return F.log_softmax(logp.masked_fill(drop, float("-inf")), dim=-1)


@dataclass
class _Row:
    """Decoding state of one sample."""

    prompt_index: int
    sample_index: int
    prompt_ids: list[int]
    generator: torch.Generator
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    versions: list[int] = field(default_factory=list)
    """The weight version of each token (with an update hook only)."""
    finish_reason: str | None = None


class HFBackend:
    """`RolloutBackend` over a transformers causal LM.

    ``batch_size`` bounds the rows decoded together: a chunk holds
    ``max(1, batch_size // n)`` prompts with all n samples each (a prompt's samples stay
    together so its prefill is computed once and shared).
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 64):
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.eos_ids = eos_token_ids(model, tokenizer)
        self.update_hook: UpdateHook | None = None
        """In-flight weight updates between two tokens (rollout/base.py `UpdateHook`)."""

    # ------------------------------------------------------------------ generation
    def generate(
        self, prompts: Sequence[Prompt], params: SamplingParams, prompt_seeds: Sequence[int]
    ) -> list[Completion]:
        check_prompt_seeds(prompts, prompt_seeds)
        prompt_ids = encode_prompts(self.tokenizer, prompts)
        per_chunk = max(1, self.batch_size // params.n)
        was_training = self.model.training
        self.model.eval()  # the policy may be shared with the trainer; restored below
        try:
            rows: list[_Row] = []
            for start in range(0, len(prompts), per_chunk):
                chunk = range(start, min(start + per_chunk, len(prompts)))
                chunk_rows = [
                    _Row(i, j, prompt_ids[i], _generator(derive_seed(prompt_seeds[i], j)))
                    for i in chunk
                    for j in range(params.n)
                ]
                with torch.inference_mode():
                    self._decode(chunk_rows, params)
                rows.extend(chunk_rows)
        finally:
            self.model.train(was_training)
        return [self._to_completion(r, params) for r in rows]

    def _decode(self, rows: list[_Row], params: SamplingParams) -> None:
        """Decode one chunk in place: prefill each distinct prompt once, repeat its cache
        for the n samples, then sample token by token until every row has finished. With an
        `UpdateHook`, new weights may arrive between two tokens: the unfinished rows'
        prompts and tokens so far are then prefilled again with them (exact per-version
        log-probs; the rows' random streams go on unchanged)."""
        device = self.model.device
        version = self._held_version()
        cache, logits, mask, next_pos = self._prefill_prompts(rows, params.n)  # logits [B, V]
        active = list(range(len(rows)))  # rows still decoding, in batch order
        for step in range(params.max_new_tokens):
            now = self._held_version()
            if now != version:  # new weights: the cache and logits are the old version's
                cache, logits, mask, next_pos = self._prefill(
                    [rows[a].prompt_ids + rows[a].token_ids for a in active])
                version = now
            gens = [rows[a].generator for a in active]
            tokens, logps = sample_next_token(logits, params.temperature, params.top_p, gens)
            for a, tok, lp in zip(active, tokens.tolist(), logps.tolist()):
                self._append(rows[a], tok, lp, version, params, last_step=step == params.max_new_tokens - 1)
            keep = [k for k, a in enumerate(active) if rows[a].finish_reason is None]
            if not keep:
                break
            if len(keep) < len(active):  # drop finished rows: no compute wasted on them
                idx = torch.tensor(keep, device=device)
                cache.batch_select_indices(idx)
                tokens, mask, next_pos = tokens[idx], mask[idx], next_pos[idx]
                active = [active[k] for k in keep]
            mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
            out = self.model(
                input_ids=tokens.unsqueeze(1),
                attention_mask=mask,
                position_ids=next_pos,
                past_key_values=cache,
                use_cache=True,
            )
            cache, logits = out.past_key_values, out.logits[:, -1]
            next_pos = next_pos + 1

    def _held_version(self) -> int | None:
        """The weight version the engine holds (None without an update hook); the hook may
        load newer weights first."""
        return self.update_hook() if self.update_hook is not None else None

    def _prefill(self, seqs: list[list[int]]):
        """One forward over left-padded ``seqs``: ``(cache, logits of each last token
        [B, V], attention mask [B, L], position of the next token [B, 1])``."""
        input_ids, mask = self._left_pad(seqs, self.model.device)
        position = mask.cumsum(-1) - 1  # left padding: real tokens at positions 0..len-1
        out = self.model(
            input_ids=input_ids,
            attention_mask=mask,
            position_ids=position.clamp(min=0),
            use_cache=True,
            logits_to_keep=1,  # the prompt's other logits are never used
        )
        return out.past_key_values, out.logits[:, -1], mask, mask.sum(-1, keepdim=True)

    def _prefill_prompts(self, rows: list[_Row], n: int):
        """`_prefill` of each distinct prompt once, its cache repeated for its n samples."""
        cache, logits, mask, next_pos = self._prefill([r.prompt_ids for r in rows[::n]])  # [P, V]
        if n > 1:
            cache.batch_repeat_interleave(n)
            logits = logits.repeat_interleave(n, dim=0)  # [P*n, V]
            mask = mask.repeat_interleave(n, dim=0)
            next_pos = next_pos.repeat_interleave(n, dim=0)
        return cache, logits, mask, next_pos

    def _append(self, row: _Row, token: int, logprob: float, version: int | None, params, *,
                last_step: bool) -> None:
        row.token_ids.append(token)
        row.logprobs.append(logprob)
        if version is not None:
            row.versions.append(version)
        if token in self.eos_ids or self._hit_stop_string(row.token_ids, params.stop):
            row.finish_reason = "stop"
        elif last_step:
            row.finish_reason = "length"

    def _hit_stop_string(self, token_ids: list[int], stops: tuple[str, ...]) -> bool:
        """Whether the newest token completed a stop string. Only the tail is decoded: a
        stop string of c characters spans at most c tokens, and earlier ones were checked
        on earlier steps."""
        if not stops:
            return False
        span = max(len(s) for s in stops) + 1
        tail = self.tokenizer.decode(token_ids[-span:], skip_special_tokens=True)
        return any(s in tail for s in stops)

    def _left_pad(self, seqs: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in seqs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(seqs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for k, s in enumerate(seqs):
            ids[k, width - len(s) :] = torch.tensor(s)
            mask[k, width - len(s) :] = 1
        return ids.to(device), mask.to(device)

    def _to_completion(self, row: _Row, params: SamplingParams) -> Completion:
        text = self.tokenizer.decode(row.token_ids, skip_special_tokens=True)
        text = truncate_after_stop(text, params.stop)
        return Completion(
            prompt_index=row.prompt_index,
            sample_index=row.sample_index,
            prompt_token_ids=list(row.prompt_ids),
            token_ids=row.token_ids,
            text=text,
            finish_reason=row.finish_reason or "length",
            logprobs=row.logprobs if params.logprobs else None,
            token_versions=list(row.versions) if self.update_hook is not None else None,
        )

    # ------------------------------------------------------------------ weights / memory
    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        """Copy new weights into the backend's model. When the backend shares the trainer's
        module the tensors are the very same storage: nothing is copied. A model with LoRA
        adapters receives the adapter's tensors (peft's names) and keeps its base."""
        if has_adapters(self.model):
            with torch.no_grad():
                load_adapter_tensors(self.model, dict(named_tensors))
            return
        targets = dict(self.model.named_parameters(remove_duplicate=False))
        targets.update(self.model.named_buffers())
        with torch.no_grad():
            for name, tensor in named_tensors:
                if name not in targets:
                    raise KeyError(f"load_weights: the rollout model has no tensor {name!r}")
                target = targets[name]
                if target.data_ptr() != tensor.data_ptr():
                    target.copy_(tensor)

    def sleep(self) -> None:
        """Nothing to release: the KV cache lives only inside `generate`, and the weights
        are (by default) the trainer's own."""

    def wake(self) -> None:
        """Nothing to restore (see `sleep`)."""

    def close(self) -> None:
        """Drop the references; the model itself belongs to the caller."""
        self.model = None
        self.tokenizer = None


def truncate_after_stop(text: str, stops: Sequence[str]) -> str:
    """Cut ``text`` just after the earliest stop string (kept). The token that completed a
    stop string may carry a few more characters; the token ids keep them, the text does not
    (as vLLM's ``include_stop_str_in_output``)."""
    ends = [text.find(s) + len(s) for s in stops if s and s in text]
    return text[: min(ends)] if ends else text


def _generator(seed: int) -> torch.Generator:
    g = torch.Generator()  # CPU generator: identical streams whatever the model's device
    g.manual_seed(seed)
    return g
