"""`OpenAIBackend`: generation through any OpenAI-compatible HTTP endpoint (vLLM, SGLang,
TGI, llama.cpp server, OpenAI itself).

For evaluation and analysis only: a remote server cannot receive the learner's new weights,
so `load_weights` raises. It also scores given token ids (`prompt_logprobs`: a teacher of
on-policy distillation). Two endpoints are supported:

* ``"completions"`` (``/v1/completions``): the prompt is sent verbatim, so r1zero's
  templates apply exactly as with the local backends. Use this to reproduce the paper.
* ``"chat"`` (``/v1/chat/completions``): the prompt is sent as one user message and the
  *server* applies the model's chat template; r1zero's templates do not apply (callers
  should pass the bare question).

HTTP client: the standard library (`urllib`) in a thread pool. The project declares no
async HTTP dependency (aiohttp / httpx are not installed by default), and generation
requests are few and long (seconds each), so threads cost nothing measurable here.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from r1zero.rollout.base import Completion, SamplingParams, check_prompt_seeds
from r1zero.utils import derive_seed

ENDPOINTS = {"completions": "/completions", "chat": "/chat/completions"}
RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIBackendError(RuntimeError):
    """A request failed for good (non-retryable status, or retries exhausted)."""


@dataclass
class OpenAIBackend:
    """`RolloutBackend` over an OpenAI-compatible server; one HTTP request per sample.

    One request per sample (``n=1``) rather than one per prompt (``n=k``) because each sample
    carries its own seed ``derive_seed(prompt_seed, j)``: results then do not depend on how
    prompts are batched, exactly as with the local backends. Servers with prefix caching
    (vLLM, SGLang) make the repeated prompt nearly free.
    """

    base_url: str
    """Server root including the API version, e.g. ``http://localhost:8000/v1``."""
    model: str
    """Model name as the server knows it (the ``model`` field of each request)."""
    endpoint: str = "completions"
    """``completions`` (raw prompt, templates apply) or ``chat`` (server chat template)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key; unset -> no Authorization header."""
    concurrency: int = 16
    """Requests in flight at once."""
    timeout_s: float = 600.0
    """Per-request timeout (connect + read), seconds."""
    max_retries: int = 5
    """Retries after the first attempt, on 429 / 5xx / connection errors / timeouts."""
    backoff_s: float = 1.0
    """First retry delay; doubles each retry (with jitter), capped at ``max_backoff_s``."""
    max_backoff_s: float = 60.0
    extra_body: dict[str, Any] = field(default_factory=dict)
    """Extra JSON fields merged into every request (e.g. ``{"top_k": 20}`` for vLLM)."""

    def __post_init__(self) -> None:
        if self.endpoint not in ENDPOINTS:
            raise ValueError(f"endpoint must be one of {sorted(ENDPOINTS)}, got {self.endpoint!r}")
        self._url = self.base_url.rstrip("/") + ENDPOINTS[self.endpoint]
        self._pool = ThreadPoolExecutor(max_workers=max(1, self.concurrency))
        self._closed = threading.Event()

    # ------------------------------------------------------------------ protocol
    def generate(
        self, prompts: Sequence[str], params: SamplingParams, prompt_seeds: Sequence[int]
    ) -> list[Completion]:
        """Return ``len(prompts) * params.n`` completions, prompt-major. ``logprobs`` is
        always None (remote log-probs are not the learner's and are not needed for eval)."""
        if self._closed.is_set():
            raise OpenAIBackendError("OpenAIBackend is closed")
        check_prompt_seeds(prompts, prompt_seeds)
        if not all(isinstance(p, str) for p in prompts):
            raise ValueError("the openai backend takes text prompts only; a multi-turn episode "
                             "(token-id prompts) needs a local engine (hf or vllm)")
        jobs = [(i, j) for i in range(len(prompts)) for j in range(params.n)]
        futures = [
            self._pool.submit(self._one, prompts[i], params, derive_seed(prompt_seeds[i], j))
            for i, j in jobs
        ]
        try:
            results = [f.result() for f in futures]
        except BaseException:
            # Ctrl-C or a failed request: drop queued requests (running ones finish).
            for f in futures:
                f.cancel()
            raise
        return [
            Completion(
                prompt_index=i, sample_index=j, prompt_token_ids=[], token_ids=[],
                text=text, finish_reason=finish, logprobs=None, extra=extra,
            )
            for (i, j), (text, finish, extra) in zip(jobs, results)
        ]

    def prompt_logprobs(self, token_ids: Sequence[Sequence[int]]) -> list[list[float | None]]:
        """The server's log p(x_k | x_<k) of every token of each id sequence (None for the
        first, which has no context), one request each: the completions API with ``echo``
        and no new tokens, which vLLM answers with its prompt log-probs (``prompt_logprobs``,
        keyed by token id) and OpenAI-style servers with ``logprobs.token_logprobs``. Raw
        log-probs: no temperature."""
        if self.endpoint != "completions":
            raise OpenAIBackendError("prompt_logprobs needs the completions endpoint (echo of token ids)")
        futures = [self._pool.submit(self._score, list(ids)) for ids in token_ids]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def _score(self, ids: list[int]) -> list[float | None]:
        body = {"model": self.model, "prompt": ids, "max_tokens": 0, "echo": True, "logprobs": 0,
                "prompt_logprobs": 0, "temperature": 1.0, **self.extra_body}
        return parse_prompt_logprobs(self._post_with_retries(body), ids)

    def load_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> None:
        raise NotImplementedError(
            "OpenAIBackend talks to a remote server whose weights r1zero cannot update; "
            "it is for evaluation and analysis only. Train with --backend hf or vllm."
        )

    def sleep(self) -> None:
        """No-op: the remote server manages its own memory."""

    def wake(self) -> None:
        """No-op (see `sleep`)."""

    def close(self) -> None:
        """Stop accepting work; queued requests are cancelled."""
        self._closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ one request
    def request_body(self, prompt: str, params: SamplingParams, seed: int) -> dict[str, Any]:
        """The JSON body for one sample (public so tests and users can inspect it)."""
        body: dict[str, Any] = {
            "model": self.model,
            "n": 1,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_new_tokens,
            "seed": seed,
        }
        if params.stop:
            body["stop"] = list(params.stop)
        if self.endpoint == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
        else:
            body["prompt"] = prompt
        return {**body, **self.extra_body}

    def _one(self, prompt: str, params: SamplingParams, seed: int) -> tuple[str, str, dict]:
        reply = self._post_with_retries(self.request_body(prompt, params, seed))
        return parse_choice(reply, self.endpoint, params.stop)

    def _post_with_retries(self, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        last_error = ""
        for attempt in range(self.max_retries + 1):
            if self._closed.is_set():
                raise OpenAIBackendError("OpenAIBackend closed while a request was pending")
            retry_after = None
            try:
                return self._post(data)
            except urllib.error.HTTPError as e:
                detail = _read_error_body(e)
                if e.code not in RETRYABLE_STATUS:
                    # 400/401/404...: retrying cannot help; say what the server said.
                    raise OpenAIBackendError(f"{self._url}: HTTP {e.code}: {detail}") from e
                last_error = f"HTTP {e.code}: {detail}"
                retry_after = _retry_after_s(e.headers.get("Retry-After") if e.headers else None)
            except (urllib.error.URLError, ConnectionError, TimeoutError, socket.timeout) as e:
                reason = getattr(e, "reason", e)
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    last_error = f"timeout (no reply within {self.timeout_s:g} s)"
                else:
                    last_error = f"connection error: {reason}"
            if attempt < self.max_retries:
                time.sleep(self._delay(attempt, retry_after))
        hint = ""
        if last_error.startswith("connection error"):
            hint = (f". Nothing answers at {self.base_url}: start the server there, or correct "
                    "the base URL (--base-url; --judge.base-url for a judge)")
        raise OpenAIBackendError(
            f"{self._url}: giving up after {self.max_retries + 1} attempts; last error: "
            f"{last_error}{hint}")

    def _post(self, data: bytes) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self._url, data=data, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
            raw = resp.read()
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise OpenAIBackendError(f"{self._url}: reply is not JSON: {raw[:200]!r}") from e

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with full jitter in [0.5, 1.5)x, so that many clients that
        failed together do not retry together; a server's Retry-After is a lower bound."""
        delay = min(self.max_backoff_s, self.backoff_s * 2**attempt) * (0.5 + random.random())
        return max(delay, retry_after or 0.0)


# ---------------------------------------------------------------------- parsing helpers
def parse_choice(
    reply: dict[str, Any], endpoint: str, stop: Sequence[str]
) -> tuple[str, str, dict[str, Any]]:
    """``(text, finish_reason, extra)`` from a one-choice reply.

    * finish_reason: "length" stays "length" (truncated); everything else ("stop", "eos",
      None, "content_filter", ...) becomes "stop".
    * Stop strings: OpenAI-style servers strip the matched stop string, but r1zero keeps it
      (the r1 grader needs ``</answer>``). vLLM reports it as ``stop_reason`` and SGLang as
      ``matched_stop``; we restore it from those. A server that reports nothing, given a
      single stop string, is assumed to have stopped on it (recorded as
      ``extra["stop_inferred"]``): with several we cannot tell which, so none is added.
    * Length: ``usage.completion_tokens`` (token ids are not returned) -> ``extra["num_tokens"]``.
    """
    try:
        choice = reply["choices"][0]
    except (KeyError, IndexError, TypeError) as e:
        raise OpenAIBackendError(f"reply has no choices: {str(reply)[:200]}") from e
    if endpoint == "chat":
        text = (choice.get("message") or {}).get("content") or ""
    else:
        text = choice.get("text") or ""
    raw_finish = choice.get("finish_reason")
    finish = "length" if raw_finish == "length" else "stop"
    extra: dict[str, Any] = {"raw_finish_reason": raw_finish}
    if finish == "stop" and stop and not any(text.endswith(s) for s in stop):
        matched = choice.get("stop_reason", choice.get("matched_stop"))
        if isinstance(matched, str) and matched in stop:
            text += matched
        elif matched is None and "stop_reason" not in choice and len(stop) == 1:
            text += stop[0]
            extra["stop_inferred"] = True
    usage = reply.get("usage") or {}
    tokens = usage.get("completion_tokens")
    extra["num_tokens"] = int(tokens) if isinstance(tokens, int) else None
    return text, finish, extra


def parse_prompt_logprobs(reply: dict[str, Any], ids: Sequence[int]) -> list[float | None]:
    """Per-token log-probs of ``ids`` from an echo reply: vLLM's ``prompt_logprobs`` (one
    ``{token id: {"logprob": x, ...}}`` or None per token; the sampled token's own entry is
    always there) or else the OpenAI-style ``logprobs.token_logprobs``; exactly one per
    token, or OpenAIBackendError naming what came back."""
    try:
        choice = reply["choices"][0]
    except (KeyError, IndexError, TypeError) as e:
        raise OpenAIBackendError(f"reply has no choices: {str(reply)[:200]}") from e
    if choice.get("prompt_logprobs") is not None:
        rows = choice["prompt_logprobs"]
        out = [None if row is None else float(row[str(tok)]["logprob"]) if str(tok) in row else float("nan")
               for row, tok in zip(rows, ids)]
    else:
        out = list((choice.get("logprobs") or {}).get("token_logprobs") or [])
    if len(out) < len(ids) or any(x is not None and x != x for x in out[1 : len(ids)]):
        raise OpenAIBackendError(f"the server scored {len(out)} of {len(ids)} tokens (or not the tokens "
                                 "sent); it must support echo with prompt log-probs (vLLM does)")
    return out[: len(ids)]


def _read_error_body(e: urllib.error.HTTPError) -> str:
    try:
        return e.read().decode("utf-8", "replace")[:300]
    except Exception:  # the body is only for the message; never mask the HTTP error
        return e.reason if isinstance(e.reason, str) else ""


def _retry_after_s(value: str | None) -> float | None:
    try:
        return min(float(value), 300.0) if value else None
    except ValueError:  # an HTTP date; rare, fall back to our own backoff
        return None
