"""`r1zero eval`: accuracy, pass@k, maj@k and response-length statistics on benchmark sets.

The loop is resumable by construction: every graded sample is appended to
``samples.jsonl`` after each chunk, keyed by (benchmark, problem id, sample index), and the
summary is always recomputed from that file, so an interrupted and resumed run reports
exactly what an uninterrupted one would. Sample j of a problem is seeded with
``derive_seed(derive_seed(seed, benchmark, problem_id), j)``, independent of chunking.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

from r1zero.config import ConfigError, JudgeConfig
from r1zero.machine import SAMPLER_DTYPES, Choice, resolve_dtype
from r1zero.rollout.base import Completion, RolloutBackend, SamplingParams
from r1zero.templates import QUESTION, Template, get_template
from r1zero.utils import append_jsonl, derive_seed, read_jsonl

BACKENDS = ("hf", "vllm", "openai")
OPENAI_ENDPOINTS = ("completions", "chat")


@dataclass(frozen=True)
class Benchmark:
    """One set of a suite: where to find it in the two standard data layouts."""

    key: str
    """Short name used in files and on the command line (e.g. ``math500``)."""
    title: str
    """Column title in reports (the paper's)."""
    split: str
    """Split of ``DATA_DIR/evaluation_suite`` (the paper's own copy; preferred)."""
    jsonl: str
    """Fallback file under ``DATA_DIR/jsonl/`` or ``DATA_DIR/``."""


SUITES: dict[str, tuple[Benchmark, ...]] = {
    "math5": (
        Benchmark("aime24", "AIME24", "aime", "aime24.jsonl"),
        Benchmark("amc", "AMC", "amc", "amc23.jsonl"),
        Benchmark("math500", "MATH500", "math", "math500.jsonl"),
        Benchmark("minerva", "Minerva", "minerva", "minerva_math.jsonl"),
        Benchmark("olympiad", "OlympiadBench", "olympiad_bench", "olympiadbench.jsonl"),
    ),
}
"""Named suites. ``math5`` is the paper's: AIME 2024, AMC, MATH-500, Minerva, OlympiadBench."""


@dataclass
class EvalConfig:
    """`r1zero eval`: evaluate a model on benchmark sets (defaults: the paper's protocol,
    greedy decoding with 3000 new tokens on the five-benchmark math suite)."""

    model: str = "smollm2-135m-instruct"
    """Hub id, local HF directory or packaged model name; with --backend openai, the
    model name the server serves."""
    backend: str = "hf"
    """Generation engine: hf (transformers), vllm, or openai (any OpenAI-compatible server)."""
    base_url: str | None = None
    """openai backend: server root including /v1, e.g. http://localhost:8000/v1."""
    openai_endpoint: str = "completions"
    """openai backend: completions (raw prompt; templates apply, as in the paper) or chat
    (the question is sent as a user message and the server's chat template is used;
    --template is then ignored and answers are read from the last \\boxed{})."""
    api_key_env: str = "OPENAI_API_KEY"
    """openai backend: environment variable holding the API key (optional for local servers)."""
    concurrency: int = 16
    """openai backend: requests in flight at once."""
    request_timeout_s: float = 600.0
    """openai backend: per-request timeout in seconds (retried with exponential backoff)."""
    data: tuple[str, ...] = ()
    """Problem sets to evaluate instead of a suite: files (.jsonl/.json/.parquet), save_to_disk
    directories or hub names; ``name=path`` sets the report name."""
    suite: str = "math5"
    """Named suite used when --data is empty: math5 (AIME24, AMC, MATH500, Minerva,
    OlympiadBench)."""
    benchmarks: tuple[str, ...] = ()
    """Subset of the suite to run, by key (aime24 amc math500 minerva olympiad); empty = all."""
    data_dir: str = "data"
    """Directory holding the suite: evaluation_suite/ (save_to_disk DatasetDict, preferred)
    or jsonl files (aime24.jsonl, amc23.jsonl, math500.jsonl, ...) in it or in jsonl/."""
    question_field: str | None = None
    """Field with the question in --data files (auto-detected when None)."""
    answer_field: str | None = None
    """Field with the gold answer in --data files (auto-detected when None)."""
    template: str = "qwen_math"
    """Prompt template: qwen_math, r1, no, chat (the model's own), or a string with {question}."""
    samples: int = 1
    """Samples per problem (k). 1 = one greedy answer; pass@k is reported for k = 1,2,4..k."""
    temperature: float | None = None
    """Sampling temperature; None = 0 (greedy) for one sample, 1.0 (the paper's rollout
    temperature) for several."""
    top_p: float = 1.0
    """Nucleus sampling (1.0 = off, as in the paper)."""
    max_new_tokens: int = 3000
    """Generation budget per response (the paper evaluates with 3000)."""
    limit: int | None = None
    """Evaluate only the first N problems of each set."""
    seed: int = 0
    """Base seed; each sample's seed derives from (seed, benchmark, problem id, sample index)."""
    extract: Literal["boxed", "r1", "auto"] | None = None
    """Grader: where the answer is read; None = the template's format (the last \\boxed{}, or
    the r1 answer tags: the paper's protocol); auto also reads unboxed answers."""
    grade_timeout_s: float = 5.0
    """Grader: time limit per equivalence check (a timeout counts as incorrect)."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """Reference-guided LLM judge for the answers the rule grader cannot decide (no answer
    found, a time-out, a text answer); off unless --judge.model is given. Changing it never
    regenerates samples: the judge re-reads samples.jsonl (its verdicts are cached)."""
    out_dir: str = "runs/eval"
    """Output directory: results.json, results.md, samples.jsonl."""
    resume: bool = True
    """Keep samples already in OUT_DIR/samples.jsonl (from an interrupted run with the same
    settings) and generate only the missing ones; --no-resume deletes them and starts over."""
    chunk_size: int = 32
    """Problems per generation call; samples are saved after each chunk."""
    device: str = "cpu"
    """hf / vllm backends: device for the model."""
    dtype: str = "auto"
    """hf / vllm backends: weight dtype: auto (bfloat16 where the device computes bf16 fast,
    else float32 on a CPU and float16 on a GPU; r1zero/machine.py), float32, bfloat16 or
    float16."""
    quiet: bool = False
    """No progress bar or messages."""

    # ------------------------------------------------------------------ derived values
    @property
    def sampling_temperature(self) -> float:
        """The temperature actually used (see ``temperature``)."""
        if self.temperature is not None:
            return self.temperature
        return 0.0 if self.samples == 1 else 1.0

    @property
    def uses_server_chat(self) -> bool:
        """True when the server applies the chat template (r1zero's template is ignored)."""
        return self.backend == "openai" and self.openai_endpoint == "chat"

    def validate(self) -> None:
        """Raise `ConfigError` on settings that cannot work (pure: no file or network access)."""
        def bad(msg: str) -> None:
            raise ConfigError(msg)

        if self.backend not in BACKENDS:
            bad(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "openai" and not self.base_url:
            bad("--backend openai needs --base-url (e.g. http://localhost:8000/v1)")
        if self.openai_endpoint not in OPENAI_ENDPOINTS:
            bad(f"--openai-endpoint must be completions or chat, got {self.openai_endpoint!r}")
        if self.backend == "openai" and self.template == "chat" and not self.uses_server_chat:
            bad("the chat template needs the model's tokenizer; with --backend openai use "
                "--openai-endpoint chat so that the server applies it")
        if not self.data:
            if self.suite not in SUITES:
                bad(f"unknown suite {self.suite!r}; choose from {', '.join(SUITES)} or pass --data")
            unknown = set(self.benchmarks) - {b.key for b in SUITES[self.suite]}
            if unknown:
                keys = ", ".join(b.key for b in SUITES[self.suite])
                bad(f"unknown benchmark(s) {', '.join(sorted(unknown))} in suite {self.suite}; choose from {keys}")
        if self.samples < 1:
            bad(f"--samples must be >= 1, got {self.samples}")
        if self.dtype not in SAMPLER_DTYPES:
            bad(f"--dtype must be one of {', '.join(SAMPLER_DTYPES)}, got {self.dtype!r}")
        if self.samples > 1 and self.sampling_temperature == 0:
            bad("--samples > 1 with temperature 0 gives k identical greedy answers; set --temperature > 0")
        if self.sampling_temperature < 0 or not 0 < self.top_p <= 1:
            bad("need --temperature >= 0 and 0 < --top-p <= 1")
        for name in ("max_new_tokens", "chunk_size", "concurrency"):
            if getattr(self, name) < 1:
                bad(f"--{name.replace('_', '-')} must be >= 1")
        if self.limit is not None and self.limit < 1:
            bad(f"--limit must be >= 1 problems, got {self.limit}")
        self.judge.check()
        if not self.uses_server_chat:
            try:
                get_template(self.template)
            except ValueError as e:
                bad(str(e))


# ---------------------------------------------------------------------- problem sets
@dataclass
class BenchmarkSet:
    """Loaded problems of one benchmark."""

    key: str
    title: str
    source: str
    problems: list  # list[r1zero.tasks.Problem]


def resolve_benchmarks(cfg: EvalConfig) -> list[BenchmarkSet]:
    """Load every benchmark the config asks for (first ``limit`` problems of each)."""
    from r1zero.data import load_problems

    sets = []
    for key, title, source, split in _benchmark_sources(cfg):
        problems = load_problems(source, split=split, limit=cfg.limit,
                                 question_field=cfg.question_field if cfg.data else None,
                                 answer_field=cfg.answer_field if cfg.data else None)
        sets.append(BenchmarkSet(key, title, f"{source}" + (f" [{split}]" if split else ""), problems))
    return sets


def _benchmark_sources(cfg: EvalConfig) -> list[tuple[str, str, str, str | None]]:
    """(key, title, source, split) per benchmark: user data, or the suite's standard layout."""
    if cfg.data:
        out = []
        for spec in cfg.data:
            name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
            key = name or Path(path.rstrip("/")).stem or path
            out.append((key, key, path, None))
        return out
    root = Path(cfg.data_dir).expanduser()
    chosen = [b for b in SUITES[cfg.suite] if not cfg.benchmarks or b.key in cfg.benchmarks]
    if (root / "evaluation_suite" / "dataset_dict.json").is_file():
        # The paper's own copy (its AMC is AMC 2022 + 2023): preferred when present.
        return [(b.key, b.title, str(root / "evaluation_suite"), b.split) for b in chosen]
    out = []
    for b in chosen:
        found = [p for p in (root / "jsonl" / b.jsonl, root / b.jsonl) if p.is_file()]
        if not found:
            raise FileNotFoundError(
                f"benchmark {b.key}: neither {root / 'evaluation_suite'} nor {b.jsonl} under "
                f"{root} or {root / 'jsonl'}; point --data-dir at the data directory"
            )
        out.append((b.key, b.title, str(found[0]), None))
    return out


# ---------------------------------------------------------------------- backend
def eval_dtype(cfg: EvalConfig) -> Choice:
    """The weight dtype ``--dtype`` stands for on ``--device`` (auto: r1zero/machine.py)."""
    return resolve_dtype(cfg.dtype, "cuda" if str(cfg.device).startswith("cuda") else "cpu", "--dtype")


def make_eval_backend(cfg: EvalConfig, dtype: Choice | None = None) -> tuple[RolloutBackend, Any]:
    """``(backend, tokenizer or None)`` for the config (models are loaded here, not earlier);
    ``dtype`` is the resolved `eval_dtype` (resolved here when not given)."""
    if cfg.backend != "openai":
        dtype = dtype or eval_dtype(cfg)
        _say(cfg, f"dtype: {dtype.value} ({dtype.reason})")
        if dtype.warning:
            print(f"warning: {dtype.warning}", file=sys.stderr)
    if cfg.backend == "openai":
        from r1zero.rollout.openai import OpenAIBackend

        backend = OpenAIBackend(cfg.base_url or "", cfg.model, endpoint=cfg.openai_endpoint,
                                api_key_env=cfg.api_key_env, concurrency=cfg.concurrency,
                                timeout_s=cfg.request_timeout_s)
        return backend, None
    if cfg.backend == "vllm":
        from r1zero.models import resolve_model_path
        from r1zero.rollout.vllm import VLLMBackend

        # Evaluation owns the device (no learner beside it), hence the larger memory share.
        backend = VLLMBackend(resolve_model_path(cfg.model), dtype=dtype.value,
                              gpu_memory_utilization=0.85, seed=cfg.seed)
        return backend, backend.tokenizer
    from r1zero.models import load_model
    from r1zero.rollout.hf import HFBackend

    model, tokenizer = load_model(cfg.model, dtype=dtype.value, device=cfg.device)
    return HFBackend(model, tokenizer), tokenizer


def effective_template(cfg: EvalConfig) -> Template:
    """The template in force: with the server's chat template, the bare question is sent."""
    if cfg.uses_server_chat:
        return Template("server_chat", QUESTION)
    return get_template(cfg.template)


def response_length(c: Completion) -> int:
    """Generated tokens: the token ids, or the server's count for remote backends."""
    if c.token_ids:
        return len(c.token_ids)
    n = c.extra.get("num_tokens")
    return int(n) if n is not None else len(c.text.split())  # last resort: words


# ---------------------------------------------------------------------- run
def run_eval(cfg: EvalConfig, *, backend: RolloutBackend | None = None,
             tokenizer: Any = None, judge_backend: RolloutBackend | None = None) -> dict[str, Any]:
    """Evaluate and write ``results.json``, ``results.md`` and ``samples.jsonl`` to out_dir.

    ``backend`` (with its ``tokenizer`` for the chat template) may be injected, e.g. a
    FakeBackend in tests or a backend shared across `r1zero analyze` runs; so may the LLM
    judge's ``judge_backend`` (used when ``cfg.judge`` names a judge model; default: its
    OpenAI-compatible server).
    Ctrl-C stops cleanly: what was generated is kept and summarised (``results["complete"]
    is False``), and rerunning the same command resumes.
    """
    cfg.validate()
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sets = resolve_benchmarks(cfg)
    template = effective_template(cfg)
    _check_resume(cfg, out, template)
    owned = backend is None
    dtype = eval_dtype(cfg) if owned and cfg.backend != "openai" else None
    if backend is None:
        backend, tokenizer = make_eval_backend(cfg, dtype)
    started = time.time()
    interrupted = False
    try:
        generate_missing(cfg, sets, template, backend, tokenizer, out / "samples.jsonl")
    except KeyboardInterrupt:
        interrupted = True
        _say(cfg, f"\nInterrupted. Samples so far are saved in {out / 'samples.jsonl'}; "
                  "rerun the same command to resume where it stopped.")
    finally:
        if owned:
            backend.close()
    records, judge_report = read_samples(out / "samples.jsonl"), None
    if not interrupted:
        try:
            records, judge_report = judge_samples(cfg, sets, records, out / "samples.jsonl",
                                                  judge_backend)
        except KeyboardInterrupt:
            interrupted = True  # the judged chunks are cached: a rerun asks only the rest
            _say(cfg, "\nInterrupted while judging; rerun the same command to finish.")
    results = summarize(cfg, sets, template, records)
    if judge_report is not None:
        results["judge"] = judge_report
    if dtype is not None:  # what --dtype auto chose on this machine, and why
        results["resolved"] = {"dtype": dtype.value, "dtype_reason": dtype.reason}
    results["interrupted"] = interrupted
    results["elapsed_s"] = round(time.time() - started, 1)
    write_results(out, results)
    if not cfg.quiet and not interrupted:
        _say(cfg, results_markdown(results))
    return results


def _check_resume(cfg: EvalConfig, out: Path, template: Template) -> None:
    """Refuse to mix samples generated under different settings into one samples.jsonl."""
    samples, meta_path = out / "samples.jsonl", out / "settings.json"
    settings = generation_settings(cfg, template)
    if samples.exists() and not cfg.resume:
        samples.unlink()
    if samples.exists() and meta_path.exists():
        old = json.loads(meta_path.read_text())
        diff = sorted(k for k in settings if old.get(k) != settings[k])
        if diff:
            raise ConfigError(
                f"{samples} holds samples generated with different settings ({', '.join(diff)}); "
                "use another --out-dir, or --no-resume to discard them"
            )
    meta_path.write_text(json.dumps(settings, indent=2))


def generation_settings(cfg: EvalConfig, template: Template) -> dict[str, Any]:
    """Everything that determines a sample and its verdict (resume refuses a mismatch)."""
    return {
        "model": cfg.model, "backend": cfg.backend, "openai_endpoint": cfg.openai_endpoint,
        "template": template.name, "template_text": template.text, "stop": list(template.stop),
        "temperature": cfg.sampling_temperature, "top_p": cfg.top_p,
        "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed,
        "extract": cfg.extract or template.answer_format,
    }


def generate_missing(cfg: EvalConfig, sets: Sequence[BenchmarkSet], template: Template,
                     backend: RolloutBackend, tokenizer: Any, path: Path) -> int:
    """Generate, grade and append every (benchmark, problem, sample) not yet in ``path``.

    Work goes in chunks of whole problems (all k samples each) so that an interruption never
    leaves a half-sampled problem. Returns the number of samples generated.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    done = {_key(r) for r in read_samples(path)}
    todo = [(s, p) for s in sets for p in s.problems
            if any((s.key, p.id, j) not in done for j in range(cfg.samples))]
    params = SamplingParams(n=cfg.samples, temperature=cfg.sampling_temperature, top_p=cfg.top_p,
                            max_new_tokens=cfg.max_new_tokens, stop=template.stop, logprobs=False)
    generated = 0
    with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
                  TimeRemainingColumn(elapsed_when_finished=True), disable=cfg.quiet) as bar:
        task = bar.add_task("eval", total=len(todo) * cfg.samples)
        for start in range(0, len(todo), cfg.chunk_size):
            chunk = todo[start : start + cfg.chunk_size]
            prompts = [template.render(p.question, tokenizer) for _, p in chunk]
            seeds = [derive_seed(cfg.seed, s.key, p.id) for s, p in chunk]
            completions = backend.generate(prompts, params, seeds)
            records = [
                grade_sample(cfg, chunk[c.prompt_index], prompts[c.prompt_index], c, template)
                for c in completions
                if (chunk[c.prompt_index][0].key, chunk[c.prompt_index][1].id, c.sample_index) not in done
            ]
            append_jsonl(path, records)
            generated += len(records)
            bar.advance(task, len(chunk) * cfg.samples)
    return generated


def grade_sample(cfg: EvalConfig, item: tuple[BenchmarkSet, Any], prompt: str,
                 c: Completion, template: Template) -> dict[str, Any]:
    """One samples.jsonl record: the sample, its verdict and its length."""
    from r1zero.grading import grade

    bench, problem = item
    verdict = grade(c.text, problem.answer, extract=cfg.extract or template.answer_format,
                    timeout_s=cfg.grade_timeout_s)
    return {
        "benchmark": bench.key, "problem_id": problem.id, "sample_index": c.sample_index,
        "prompt": prompt, "response": c.text, "gold": problem.answer,
        "extracted": verdict.extracted, "correct": bool(verdict.correct), "reason": verdict.reason,
        "length": response_length(c), "finish_reason": c.finish_reason,
    }


def judge_samples(cfg: EvalConfig, sets: Sequence[BenchmarkSet], records: list[dict[str, Any]],
                  path: Path, backend: RolloutBackend | None = None,
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The LLM judge's pass over the graded samples (``--judge.*``): undecided answers get
    the judge's verdict, records say who decided (``decided_by``), and ``samples.jsonl`` is
    rewritten to match. Without a judge, earlier judge verdicts are dropped (the rules'
    stand). Returns the records and the report (None without a judge)."""
    from r1zero.grading.llm_verifier import (
        JudgeItem,
        ReferenceVerifier,
        decision_counts,
        judge_records,
        rule_view,
        without_judge,
    )

    if not cfg.judge.enabled:
        plain = [without_judge(r) if "decided_by" in r else r for r in records]
        if plain != records:
            _rewrite_samples(path, plain)
        return plain, None
    questions = {(s.key, str(p.id)): p.question for s in sets for p in s.problems}
    idx = [i for i, r in enumerate(records) if (r["benchmark"], str(r["problem_id"])) in questions]
    asked = [questions[(records[i]["benchmark"], str(records[i]["problem_id"]))] for i in idx]
    verifier = ReferenceVerifier(cfg.judge, backend=backend)
    try:
        judged, decisions = judge_records(verifier, [records[i] for i in idx], asked)
        out = list(records)
        for i, r in zip(idx, judged):
            out[i] = r
        if out != records:
            _rewrite_samples(path, out)
        report: dict[str, Any] = {"model": cfg.judge.model, **decision_counts(decisions)}
        if cfg.judge.audit:
            items = [JudgeItem(q, r["response"], r["gold"], rule_view(r)) for q, r in zip(asked, judged)]
            report["agreement"] = verifier.audit(items, cfg.judge.audit, seed=cfg.seed)
    finally:
        verifier.close()  # closes only a client it made itself
    return out, report


def _rewrite_samples(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Replace samples.jsonl whole (write, then rename: a crash keeps the old file)."""
    tmp = path.with_suffix(".jsonl.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
    os.replace(tmp, path)


def read_samples(path: Path) -> list[dict[str, Any]]:
    """Records of samples.jsonl, first occurrence of each key; a torn last line (crash
    mid-write) or any malformed line is skipped with a warning naming it."""
    if not path.exists():
        return []
    seen: dict[tuple, dict] = {}
    for line_no, rec, _ in read_jsonl(path):
        if rec is None or not {"benchmark", "problem_id", "sample_index", "correct"} <= rec.keys():
            warnings.warn(f"{path}:{line_no}: not a sample record, skipped", stacklevel=2)
            continue
        seen.setdefault(_key(rec), rec)
    return list(seen.values())


def _key(rec: dict[str, Any]) -> tuple[str, str, int]:
    return rec["benchmark"], str(rec["problem_id"]), int(rec["sample_index"])


# ---------------------------------------------------------------------- summaries
def pass_ks(samples: int) -> list[int]:
    """k = 1, 2, 4, ... up to ``samples``, plus ``samples`` itself."""
    ks = [2**i for i in range(samples.bit_length()) if 2**i <= samples]
    return ks + ([samples] if ks[-1] != samples else [])


def benchmark_metrics(by_problem: Sequence[Sequence[dict[str, Any]]], samples: int) -> dict[str, Any]:
    """Metrics of one benchmark from its records grouped by problem (samples in index order).

    accuracy: mean correctness over all samples; pass@k: unbiased estimator averaged over
    problems; maj@k: majority vote over the first k extracted answers; format_rate: share of
    samples with an extracted answer; truncation_rate: share that hit max_new_tokens;
    mean_length_{correct,incorrect}: mean generated tokens (nan when the group is empty).
    """
    from r1zero.core.metrics import maj_at_k, pass_at_k

    flat = [r for group in by_problem for r in group]
    m: dict[str, Any] = {"n_problems": len(by_problem), "n_samples": len(flat)}
    if not flat:
        return m
    m["accuracy"] = _mean([r["correct"] for r in flat])
    if any("decided_by" in r for r in flat):  # the LLM judge decided some: show the rules' own
        m["rule_accuracy"] = _mean([r.get("rule_correct", r["correct"]) for r in flat])
    for k in pass_ks(samples):
        groups = [g for g in by_problem if len(g) >= k]
        m[f"pass@{k}"] = _mean([pass_at_k(len(g), sum(r["correct"] for r in g), k) for g in groups])
    for k in pass_ks(samples):
        groups = [g for g in by_problem if len(g) >= k]
        m[f"maj@{k}"] = _mean([maj_at_k([_canon(r.get("extracted")) for r in g],
                                        [r["correct"] for r in g], k) for g in groups])
    m["format_rate"] = _mean([r.get("extracted") is not None for r in flat])
    m["truncation_rate"] = _mean([r.get("finish_reason") == "length" for r in flat])
    m["mean_length"] = _mean([r["length"] for r in flat])
    m["mean_length_correct"] = _mean([r["length"] for r in flat if r["correct"]])
    m["mean_length_incorrect"] = _mean([r["length"] for r in flat if not r["correct"]])
    return m


def summarize(cfg: EvalConfig, sets: Sequence[BenchmarkSet], template: Template,
              records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """results.json content: settings, grader, per-benchmark metrics and their average."""
    index = {_key(r): r for r in records}
    per_bench, complete = {}, True
    for s in sets:
        groups = [[index[k] for j in range(cfg.samples) if (k := (s.key, p.id, j)) in index]
                  for p in s.problems]
        complete &= all(len(g) == cfg.samples for g in groups)
        per_bench[s.key] = {"title": s.title, "source": s.source,
                            **benchmark_metrics([g for g in groups if g], cfg.samples)}
    return {
        "complete": complete,
        "config": asdict(cfg),
        "sampling": {"n": cfg.samples, "temperature": cfg.sampling_temperature, "top_p": cfg.top_p,
                     "max_new_tokens": cfg.max_new_tokens, "seed": cfg.seed, "stop": list(template.stop)},
        "template": {"name": template.name, "text": template.text},
        "grader": {"extract": cfg.extract or template.answer_format,
                   "timeout_s": cfg.grade_timeout_s, "versions": _versions()},
        "benchmarks": per_bench,
        "average": average_metrics(per_bench.values()),
    }


def average_metrics(per_bench: Sequence[dict[str, Any]] | Any) -> dict[str, float]:
    """Unweighted mean of each metric over benchmarks (the paper's "Avg"), ignoring nan."""
    per_bench = list(per_bench)
    keys = [k for k, v in (per_bench[0] if per_bench else {}).items()
            if isinstance(v, (int, float)) and not k.startswith("n_")]
    return {k: _mean([b[k] for b in per_bench if k in b and not math.isnan(b[k])]) for k in keys}


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _canon(answer: str | None) -> str | None:
    """Majority-vote key: whitespace-insensitive extracted answer."""
    return None if answer is None else "".join(answer.split())


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("r1zero", "math-verify", "transformers", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


# ---------------------------------------------------------------------- reports
ROW_TITLES = {"accuracy": "Accuracy (%)", "rule_accuracy": "Accuracy, rule grader only (%)",
              "format_rate": "Answer extracted (%)",
              "truncation_rate": "Truncated (%)", "mean_length_correct": "Length, correct (tokens)",
              "mean_length_incorrect": "Length, incorrect (tokens)", "mean_length": "Length, all (tokens)"}


def results_markdown(results: dict[str, Any]) -> str:
    """The paper-style table: one row per metric, benchmarks as columns, then Avg."""
    benches = results["benchmarks"]
    s = results["sampling"]
    head = (f"Model `{results['config']['model']}`, template `{results['template']['name']}`, "
            f"{s['n']} sample(s)/problem at T={s['temperature']:g}, top-p {s['top_p']:g}, "
            f"{s['max_new_tokens']} new tokens, grader `{results['grader']['extract']}`"
            + ("" if results["complete"] else " — **incomplete run**") + "\n")
    cols = [b["title"] for b in benches.values()] + ["Avg"]
    lines = [head, "| metric | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    metric_keys = [k for k in results["average"] if k in ROW_TITLES or "@" in k]
    for k in metric_keys:
        cells = [b.get(k, float("nan")) for b in benches.values()] + [results["average"][k]]
        title = ROW_TITLES.get(k, f"{k} (%)")
        lines.append(f"| {title} | " + " | ".join(_fmt(k, v) for v in cells) + " |")
    lines.append("| problems | " + " | ".join(str(b["n_problems"]) for b in benches.values())
                 + f" | {sum(b['n_problems'] for b in benches.values())} |")
    if results.get("judge"):
        lines += ["", judge_markdown(results["judge"])]
    return "\n".join(lines) + "\n"


def judge_markdown(j: dict[str, Any]) -> str:
    """One paragraph on the LLM judge: what it was asked, and its audited agreement."""
    text = (f"LLM judge `{j['model']}`: asked on {j['asked']} answers the rule grader could "
            f"not decide ({j['cache_hits']} from the cache): {j['judged_correct']} judged "
            f"correct, {j['judged_wrong']} not, {j['unclear']} unclear, {j['errors']} failed.")
    a = j.get("agreement")
    if a:
        rate = "–" if a["rate"] is None or math.isnan(a["rate"]) else f"{100 * a['rate']:.1f}%"
        text += (f" Audit on {a['n_sampled']} answers the rules decided: agreement {rate} "
                 f"({a['agree']}/{a['n_compared']}; rule correct: judge yes {a['rule_correct_judge_yes']}, "
                 f"no {a['rule_correct_judge_no']}; rule wrong: judge yes {a['rule_wrong_judge_yes']}, "
                 f"no {a['rule_wrong_judge_no']}; {a['unclear']} unclear).")
    return text


def _fmt(key: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.0f}" if key.startswith("mean_length") else f"{100 * v:.1f}"


def write_results(out: Path, results: dict[str, Any]) -> None:
    """results.json (nan -> null, so any JSON reader can load it) and results.md."""
    (out / "results.json").write_text(json.dumps(nan_to_none(results), indent=2, default=str))
    (out / "results.md").write_text(results_markdown(results))


def nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    return x


def _say(cfg: EvalConfig, msg: str) -> None:
    if not cfg.quiet:
        from rich.console import Console

        Console(stderr=True, highlight=False).print(msg, markup=False)
