"""Reference-guided LLM verifier: a judge model reads the question, the gold answer and the
end of a response, and says whether the response's final answer is equivalent to the gold.

As in Yeo et al. 2025 ("Demystifying Long CoT"), the judge supplements the rule grader; it
never overrides it. It is asked only where the rules cannot decide (`needs_judge`), its
verdicts are cached on disk, an unclear reply is never guessed (not correct,
``judge_unclear``), and `ReferenceVerifier.audit` measures its agreement with the rule
grader on answers the rules did decide. Policy and cost: docs/grading.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1zero.config import JudgeConfig
from r1zero.grading.extract import extract_gold, is_text_answer
from r1zero.grading.grader import Verdict
from r1zero.grading.verdicts import agreement, parse_verdict
from r1zero.rollout.base import RolloutBackend, SamplingParams
from r1zero.rollout.openai import OpenAIBackend, OpenAIBackendError
from r1zero.utils import derive_seed

try:  # POSIX advisory locks make appends from concurrent reward workers whole lines
    import fcntl
except ImportError:  # Windows: one writer per cache directory, please
    fcntl = None

MAX_RESPONSE_CHARS = 4_000
"""Only the response's last characters are shown: the final answer is at the end, and a
3000-token derivation would multiply the judge's cost for nothing it needs."""
MAX_QUESTION_CHARS = 6_000
MAX_GOLD_CHARS = 1_000
CACHED_REPLY_CHARS = 2_000
CACHE_FILE = "judge_cache.jsonl"
REQUESTS_PER_CHUNK = 8
"""Judge requests per generate call, in multiples of the concurrency: each chunk's verdicts
are appended to the cache as soon as it returns, so an interruption loses one chunk."""

UNDECIDED_REASONS = frozenset({"no_answer", "timeout"})
"""Rule reasons that mean "the rules could not decide": nothing was extracted (or an empty
box), or the equivalence check ran out of time. ``format_error`` (the r1 template's answer
tags missing), ``too_long`` (a runaway box) and ``bad_input`` are decisions: the judge
must not undo the format contract or the anti-hacking bounds."""

JUDGE_PROMPT = """You are checking a student's final answer to a math problem against the \
reference answer.

Problem:
{question}

Reference answer:
{reference}

Student's response (its final part):
<<<
{response}
>>>

Compare only the student's final answer with the reference answer. They are equivalent when \
they state the same value, set or object, however it is written ("1/2" and "0.5", "five" \
and "5", "x = 3" and "3", "Monday" and "monday"). They are NOT equivalent when the final \
answer differs, lists several candidate answers, only approximates an exact reference, or \
when the response gives no final answer. Do not solve the problem yourself and do not judge \
the reasoning.

Give a one-sentence reason, then end with exactly "Verdict: YES" (equivalent) or \
"Verdict: NO"."""


# ----------------------------------------------------------------------------- the policy
def gold_list(gold: Any) -> list[str]:
    """Gold as strings, each reduced to its final answer (a worked solution to its box)."""
    items = gold if isinstance(gold, (list, tuple)) else [gold]
    return [extract_gold(str(g)) for g in items]


def needs_judge(rule: Verdict, gold: Any) -> bool:
    """True only when the rule grader could not decide ``rule`` (its verdict on a response
    against ``gold``), i.e. exactly one of:

    * ``rule.reason`` is ``no_answer`` (nothing extracted, or an empty box) or ``timeout``;
    * ``rule.reason`` is ``wrong_answer`` and the gold or the extracted answer is *text*:
      words rather than mathematics by `is_text_answer` (``Monday``, ``\\text{the second}``,
      ``12 apples``, ``五``; not ``x = 5 cm``, ``3 \\text{ or } 5``, ``B``, ``yes``). A
      list gold counts as text when any of its answers is.

    A rule *accept* is never sent (the rules are strict, so an accept is reliable), nor a
    wrong mathematical answer (the rules compare mathematics exactly), nor ``format_error``,
    ``too_long`` or ``bad_input`` (see `UNDECIDED_REASONS`).
    """
    if rule.correct:
        return False
    if rule.reason in UNDECIDED_REASONS:
        return True
    if rule.reason != "wrong_answer":
        return False
    answers = gold_list(gold) + ([rule.extracted] if rule.extracted else [])
    return any(is_text_answer(a) for a in answers)


def judge_prompt(question: str, gold: Any, response: str) -> str:
    """The judge's message for one (question, reference, response): the question and gold
    bounded, the response cut to its final `MAX_RESPONSE_CHARS`."""
    if len(response) > MAX_RESPONSE_CHARS:
        response = "[... earlier part omitted ...]\n" + response[-MAX_RESPONSE_CHARS:]
    if len(question) > MAX_QUESTION_CHARS:
        question = question[:MAX_QUESTION_CHARS] + "\n[... rest omitted ...]"
    golds = [g[:MAX_GOLD_CHARS] for g in gold_list(gold)]
    reference = golds[0] if len(golds) == 1 else "any one of: " + " | ".join(golds)
    return (JUDGE_PROMPT.replace("{question}", question).replace("{reference}", reference)
            .replace("{response}", response))


# ----------------------------------------------------------------------------- the cache
class JudgeCache:
    """Append-only JSONL of judge replies, ``{"key", "model", "verdict", "reply"}`` a line.

    Crash-safe: a torn last line (a crash mid-write) is skipped when read, and the next
    writer first ends it with a newline so that it cannot swallow a new record. Shared by
    concurrent processes (reward workers): each append is one ``write`` under an exclusive
    ``flock``, and `refresh` reads what the others appended since (complete lines only).
    """

    def __init__(self, cache_dir: str | os.PathLike) -> None:
        self.path = Path(cache_dir).expanduser() / CACHE_FILE
        self._entries: dict[str, dict[str, Any]] = {}
        self._offset = 0
        self._lock = threading.Lock()
        self.refresh()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def refresh(self) -> None:
        """Load the lines appended since the last read (a trailing partial line waits)."""
        if not self.path.exists():
            return
        with self._lock, open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
            end = data.rfind(b"\n") + 1
            self._offset += end
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a torn line from a crash, ended by a later writer's newline
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                self._entries.setdefault(rec["key"], rec)

    def put_many(self, records: Sequence[dict[str, Any]]) -> None:
        """Append ``records`` (each with a ``key``) as whole lines, and remember them."""
        if not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # end a torn line first (only a crash leaves one: we lock)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)  # closing releases the lock
        with self._lock:
            for r in records:
                self._entries.setdefault(r["key"], r)


# ----------------------------------------------------------------------------- the verifier
@dataclass(frozen=True)
class JudgeItem:
    """One response to verify: what the judge reads, and the rule grader's verdict."""

    question: str
    response: str
    gold: Any
    rule: Verdict


@dataclass(frozen=True)
class JudgeAnswer:
    """The judge's reading of one item: ``verdict`` True (equivalent), False, None
    (unclear reply), or ``error`` set when the request failed for good."""

    verdict: bool | None
    cached: bool = False
    reply: str = ""
    error: str | None = None

    @property
    def label(self) -> str:
        """``equivalent``, ``not_equivalent``, ``unclear`` or ``error``."""
        if self.error is not None:
            return "error"
        return {True: "equivalent", False: "not_equivalent", None: "unclear"}[self.verdict]


@dataclass(frozen=True)
class Decision:
    """The final verdict on one item and who reached it.

    ``decided_by`` is ``rule`` or ``judge``; ``reason`` is the rule's reason when the rule
    decided, else ``judge_equivalent``, ``judge_not_equivalent``, ``judge_unclear`` or
    ``judge_error`` (the request failed: the rule's verdict stands, and nothing is cached,
    so a rerun asks again). ``judge`` holds the judge's answer when it was asked."""

    correct: bool
    decided_by: str
    reason: str
    judge: JudgeAnswer | None = None


class ReferenceVerifier:
    """The judge model behind an OpenAI-compatible server, with the on-disk cache.

    Built from a `JudgeConfig` alone (pickles as its config: a reward worker rebuilds it,
    with its own HTTP client, and shares the cache file). ``backend`` may be injected (any
    `RolloutBackend`, e.g. a scripted one in tests); otherwise an `OpenAIBackend` is made on
    the first request.
    """

    def __init__(self, cfg: JudgeConfig, *, backend: RolloutBackend | None = None) -> None:
        if not cfg.enabled:
            raise ValueError("ReferenceVerifier needs a judge model (JudgeConfig.model)")
        self.cfg = cfg
        self._backend = backend
        self._owns_backend = backend is None
        self.cache = JudgeCache(cfg.cache_dir)

    def __reduce__(self):
        return (ReferenceVerifier, (self.cfg,))

    @property
    def backend(self) -> RolloutBackend:
        if self._backend is None:
            self._backend = OpenAIBackend(
                self.cfg.base_url or "", self.cfg.model or "", endpoint=self.cfg.endpoint,
                api_key_env=self.cfg.api_key_env, concurrency=self.cfg.concurrency,
                timeout_s=self.cfg.request_timeout_s)
        return self._backend

    def close(self) -> None:
        if self._owns_backend and self._backend is not None:
            self._backend.close()
            self._backend = None

    def key(self, prompt: str) -> str:
        """Cache key: a hash of everything that determines the (greedy) reply."""
        material = "\x1f".join((self.cfg.model or "", self.cfg.endpoint,
                                str(self.cfg.max_new_tokens), prompt))
        return hashlib.sha256(material.encode()).hexdigest()

    # ------------------------------------------------------------------ asking
    def verify_many(self, items: Sequence[JudgeItem]) -> list[Decision]:
        """One `Decision` per item, in order: the rule's where it decided, else the judge's
        (all undecided items in batched, concurrent requests; cache hits cost nothing)."""
        todo = [i for i, it in enumerate(items) if needs_judge(it.rule, it.gold)]
        answers = dict(zip(todo, self.ask([items[i] for i in todo])))
        out = []
        for i, it in enumerate(items):
            a = answers.get(i)
            if a is None:
                out.append(Decision(it.rule.correct, "rule", it.rule.reason))
            elif a.error is not None:
                out.append(Decision(it.rule.correct, "judge", "judge_error", a))
            else:
                out.append(Decision(a.verdict is True, "judge", f"judge_{a.label}", a))
        return out

    def ask(self, items: Sequence[JudgeItem]) -> list[JudgeAnswer]:
        """The judge's answer for every item (whatever the rule said), from the cache where
        possible. A failed request marks its chunk and every later one as ``error`` (the
        backend has already retried; waiting again per chunk would only multiply the wait)."""
        prompts = [judge_prompt(it.question, it.gold, it.response) for it in items]
        keys = [self.key(p) for p in prompts]
        self.cache.refresh()  # what other processes judged meanwhile
        hits = {k for k in keys if self.cache.get(k) is not None}
        missing = list(dict.fromkeys(k for k in keys if k not in hits))  # each prompt once
        prompt_of = dict(zip(keys, prompts))
        errors: dict[str, str] = {}
        chunk = REQUESTS_PER_CHUNK * max(1, self.cfg.concurrency)
        for start in range(0, len(missing), chunk):
            part = missing[start : start + chunk]
            try:
                replies = self._generate([prompt_of[k] for k in part])
            except (OpenAIBackendError, OSError) as e:
                # The judge's transport failed for good (the backend has retried): the
                # rule's verdict stands, loudly. A bug elsewhere still raises.
                warnings.warn(f"LLM judge request failed ({e}); the rule grader's verdict "
                              f"stands for {len(missing) - start} undecided answers", stacklevel=2)
                errors.update({k: str(e)[:300] for k in missing[start:]})
                break
            self.cache.put_many([
                {"key": k, "model": self.cfg.model, "verdict": parse_verdict(text),
                 "reply": text[:CACHED_REPLY_CHARS]} for k, text in zip(part, replies)])
        out = []
        for k in keys:
            if k in errors:
                out.append(JudgeAnswer(None, error=errors[k]))
                continue
            rec = self.cache.get(k) or {}
            verdict = rec.get("verdict")  # a hand-edited line holding anything else is unclear
            out.append(JudgeAnswer(verdict if isinstance(verdict, bool) else None, k in hits,
                                   str(rec.get("reply", ""))))
        return out

    def _generate(self, prompts: list[str]) -> list[str]:
        params = SamplingParams(n=1, temperature=0.0, top_p=1.0,
                                max_new_tokens=self.cfg.max_new_tokens, logprobs=False)
        seeds = [derive_seed("judge", self.key(p)) for p in prompts]
        completions = self.backend.generate(prompts, params, seeds)
        return [c.text for c in sorted(completions, key=lambda c: c.prompt_index)]

    # ------------------------------------------------------------------ agreement
    def audit(self, items: Sequence[JudgeItem], n: int, seed: int = 0) -> dict[str, Any]:
        """Agreement of the judge with the rule grader on a seeded uniform sample of at most
        ``n`` items the rules *did* decide (`needs_judge` False; not bad input).

        Uniform, so the rates estimate agreement over everything the rules decide. Returns
        ``n_sampled``, ``n_compared`` (clear judge replies), ``unclear``, ``errors``,
        ``agree``, ``rate`` (agree / compared), Cohen's ``kappa`` and the confusion counts
        ``rule_correct_judge_yes``, ``rule_correct_judge_no``, ``rule_wrong_judge_yes``,
        ``rule_wrong_judge_no``. Audited answers never change a decision.
        """
        decided = [i for i, it in enumerate(items)
                   if it.rule.reason != "bad_input" and not needs_judge(it.rule, it.gold)]
        chosen = sorted(random.Random(seed).sample(decided, min(max(n, 0), len(decided))))
        answers = self.ask([items[i] for i in chosen])
        clear = [(items[i].rule.correct, a.verdict) for i, a in zip(chosen, answers)
                 if a.error is None and a.verdict is not None]
        table = agreement([r for r, _ in clear], [j for _, j in clear])
        return {
            "n_sampled": len(chosen), "n_compared": len(clear),
            "unclear": sum(a.error is None and a.verdict is None for a in answers),
            "errors": sum(a.error is not None for a in answers),
            "agree": table["both"] + table["neither"], "rate": table["observed"],
            "kappa": table["kappa"],
            "rule_correct_judge_yes": table["both"], "rule_correct_judge_no": table["only_a"],
            "rule_wrong_judge_yes": table["only_b"], "rule_wrong_judge_no": table["neither"],
        }


# ----------------------------------------------------------------------------- records
def decision_counts(decisions: Sequence[Decision]) -> dict[str, int]:
    """``asked`` (undecided items the judge answered, cache hits included), ``cache_hits``,
    ``judged_correct``, ``judged_wrong``, ``unclear``, ``errors``."""
    judged = [d for d in decisions if d.judge is not None]
    return {
        "asked": len(judged),
        "cache_hits": sum(d.judge.cached for d in judged),
        "judged_correct": sum(d.reason == "judge_equivalent" for d in judged),
        "judged_wrong": sum(d.reason == "judge_not_equivalent" for d in judged),
        "unclear": sum(d.reason == "judge_unclear" for d in judged),
        "errors": sum(d.reason == "judge_error" for d in judged),
    }


JUDGE_FIELDS = ("rule_correct", "decided_by", "judge_verdict", "judge_cached", "judge_reply")


def rule_view(rec: dict[str, Any]) -> Verdict:
    """The rule grader's verdict held by a graded record (before or after `judge_records`)."""
    return Verdict(bool(rec.get("rule_correct", rec["correct"])), rec.get("extracted"),
                   rec.get("reason", "wrong_answer"))


def without_judge(rec: dict[str, Any]) -> dict[str, Any]:
    """A graded record as the rule grader left it (judge fields dropped)."""
    out = {k: v for k, v in rec.items() if k not in JUDGE_FIELDS}
    out["correct"] = rule_view(rec).correct
    return out


def judge_records(verifier: ReferenceVerifier, records: Sequence[dict[str, Any]],
                  questions: Sequence[str]) -> tuple[list[dict[str, Any]], list[Decision]]:
    """Apply the judge to graded records (``response``, ``gold``, ``correct``,
    ``extracted``, ``reason``: `grade_file` / `r1zero eval` records) whose questions are
    ``questions``. Returns new records (``correct`` final, plus ``rule_correct``,
    ``decided_by`` and, where the judge was asked, ``judge_verdict``, ``judge_cached``,
    ``judge_reply``) and the decisions. Idempotent: the rule's verdict is kept."""
    items = [JudgeItem(q, r["response"], r["gold"], rule_view(r)) for r, q in zip(records, questions)]
    decisions = verifier.verify_many(items)
    out = []
    for rec, it, d in zip(records, items, decisions):
        new = without_judge(rec) | {"correct": d.correct, "rule_correct": it.rule.correct,
                                    "decided_by": d.decided_by}
        if d.judge is not None:
            new |= {"judge_verdict": d.judge.label, "judge_cached": d.judge.cached,
                    "judge_reply": (d.judge.error or d.judge.reply)[:500]}
        out.append(new)
    return out, decisions
