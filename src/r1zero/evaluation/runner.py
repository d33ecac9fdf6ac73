"""The evaluation run: load the benchmarks, build the engine, generate what samples.jsonl
does not hold yet (chunk by chunk, resumable), grade (the math grader, or for ``--task
code`` the unit tests in the sandbox: evaluation/code.py), let the LLM judge decide what the
rules cannot, and write the results (evaluation/report.py)."""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from r1zero.config import ConfigError
from r1zero.data import load_problems
from r1zero.durable import cut_torn_tail, write_atomic
from r1zero.evaluation.code import code_grader, code_records
from r1zero.evaluation.report import _key, results_markdown, summarize, write_results
from r1zero.evaluation.settings import SUITES, BenchmarkSet, EvalConfig, _say
from r1zero.grading import grade
from r1zero.grading.llm_verifier import (
    JudgeItem,
    ReferenceVerifier,
    decision_counts,
    judge_records,
    rule_view,
    without_judge,
)
from r1zero.machine import Choice, resolve_dtype
from r1zero.rollout import EngineSpec, build_backend
from r1zero.rollout.base import Completion, RolloutBackend, SamplingParams
from r1zero.rollout.openai import OpenAIBackend
from r1zero.tasks.code import load_code_problems
from r1zero.templates import QUESTION, Template, get_template
from r1zero.utils import append_jsonl, derive_seed, read_jsonl


# ---------------------------------------------------------------------- problem sets
def resolve_benchmarks(cfg: EvalConfig) -> list[BenchmarkSet]:
    """Load every benchmark the config asks for (first ``limit`` problems of each)."""
    sets = []
    for key, title, source, split in _benchmark_sources(cfg):
        if cfg.task == "code":
            problems = load_code_problems(source, split=split, limit=cfg.limit, strict=cfg.strict_data)
        else:
            problems = load_problems(source, split=split, limit=cfg.limit, strict=cfg.strict_data,
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
    chosen = [b for b in SUITES[cfg.suite_in_force] if not cfg.benchmarks or b.key in cfg.benchmarks]
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
    if cfg.backend == "openai":  # a client of a remote server: no weights, its own dataclass
        backend = OpenAIBackend(cfg.base_url or "", cfg.model, endpoint=cfg.openai_endpoint,
                                api_key_env=cfg.api_key_env, concurrency=cfg.concurrency,
                                timeout_s=cfg.request_timeout_s)
        return backend, None
    spec = EngineSpec(kind=cfg.backend, model_path=cfg.model, dtype=dtype.value, device=cfg.device,
                      seed=cfg.sampling.seed, gpu_memory_utilization=cfg.vllm_gpu_memory_utilization,
                      max_model_len=cfg.max_model_len)
    backend = build_backend(spec)
    return backend, backend.tokenizer


def effective_template(cfg: EvalConfig) -> Template:
    """The template in force: with the server's chat template, the bare question is sent."""
    if cfg.uses_server_chat:
        return Template("server_chat", QUESTION)
    return get_template(cfg.template_in_force)


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
    grader = code_grader(cfg) if cfg.task == "code" else None  # refused here without a sandbox
    owned = backend is None
    dtype = eval_dtype(cfg) if owned and cfg.backend != "openai" else None
    if backend is None:
        backend, tokenizer = make_eval_backend(cfg, dtype)
    started = time.time()
    interrupted = False
    try:
        generate_missing(cfg, sets, template, backend, tokenizer, out / "samples.jsonl", grader)
    except KeyboardInterrupt:
        interrupted = True
        _say(cfg, f"\nInterrupted. Samples so far are saved in {out / 'samples.jsonl'}; "
                  "rerun the same command to resume where it stopped.")
    finally:
        if owned:
            backend.close()
        if grader is not None:
            grader.close()
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
    write_atomic(meta_path, json.dumps(settings, indent=2))


def generation_settings(cfg: EvalConfig, template: Template) -> dict[str, Any]:
    """Everything that determines a sample and its verdict (resume refuses a mismatch)."""
    settings = {
        "model": cfg.model, "backend": cfg.backend, "openai_endpoint": cfg.openai_endpoint,
        "template": template.name, "template_text": template.text, "stop": list(template.stop),
        "temperature": cfg.sampling_temperature, "top_p": cfg.sampling.top_p,
        "max_new_tokens": cfg.sampling.max_new_tokens, "seed": cfg.sampling.seed,
        "extract": cfg.extract or template.answer_format,
    }
    if cfg.task != "math":  # (math runs keep the settings.json they always had)
        settings["task"] = cfg.task
    return settings


def generate_missing(cfg: EvalConfig, sets: Sequence[BenchmarkSet], template: Template,
                     backend: RolloutBackend, tokenizer: Any, path: Path, grader: Any = None) -> int:
    """Generate, grade and append every (benchmark, problem, sample) not yet in ``path``;
    ``grader``: the code task that runs --task code's tests (None: the math grader).

    Work goes in chunks of whole problems (all k samples each) so that an interruption never
    leaves a half-sampled problem. Returns the number of samples generated.
    """
    drop_torn_problem(path, cfg.sampling.samples)
    done = {_key(r) for r in read_samples(path)}
    todo = [(s, p) for s in sets for p in s.problems
            if any((s.key, p.id, j) not in done for j in range(cfg.sampling.samples))]
    params = SamplingParams(n=cfg.sampling.samples, temperature=cfg.sampling_temperature, top_p=cfg.sampling.top_p,
                            max_new_tokens=cfg.sampling.max_new_tokens, stop=template.stop, logprobs=False)
    generated = 0
    with Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
                  TimeRemainingColumn(elapsed_when_finished=True), disable=cfg.quiet) as bar:
        task = bar.add_task("eval", total=len(todo) * cfg.sampling.samples)
        for start in range(0, len(todo), cfg.chunk_size):
            chunk = todo[start : start + cfg.chunk_size]
            prompts = [template.render(p.question, tokenizer) for _, p in chunk]
            seeds = [derive_seed(cfg.sampling.seed, s.key, p.id) for s, p in chunk]
            completions = backend.generate(prompts, params, seeds)
            completions = [c for c in completions
                           if (chunk[c.prompt_index][0].key, chunk[c.prompt_index][1].id, c.sample_index) not in done]
            if grader is not None:
                records = code_records(grader, chunk, prompts, completions, template, response_length)
            else:
                records = [grade_sample(cfg, chunk[c.prompt_index], prompts[c.prompt_index], c, template)
                           for c in completions]
            append_jsonl(path, records)
            generated += len(records)
            bar.advance(task, len(chunk) * cfg.sampling.samples)
    return generated


def grade_sample(cfg: EvalConfig, item: tuple[BenchmarkSet, Any], prompt: str,
                 c: Completion, template: Template) -> dict[str, Any]:
    """One samples.jsonl record: the sample, its verdict and its length."""
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
            report["agreement"] = verifier.audit(items, cfg.judge.audit, seed=cfg.sampling.seed)
    finally:
        verifier.close()  # closes only a client it made itself
    return out, report


def _rewrite_samples(path: Path, records: Sequence[dict[str, Any]]) -> None:
    """Replace samples.jsonl whole (temp + fsync + rename: a crash keeps the old file)."""
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records))


def drop_torn_problem(path: Path, samples: int) -> int:
    """Before a rerun appends: a chunk that a kill cut mid-line leaves its last problem
    with fewer than ``samples`` records; cut the torn line and that problem's records, so
    the problem is generated again whole and no finished problem is. Returns the records
    dropped (0 when the file ends on a whole line: then nothing was torn)."""
    if not path.exists() or not cut_torn_tail(path):
        return 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    keys = [_problem(line) for line in lines]
    last = keys[-1] if keys else None
    tail = 0
    while last is not None and tail < len(keys) and keys[-1 - tail] == last:
        tail += 1
    if not tail or tail >= samples:  # the torn line was the next problem's first
        return 0
    write_atomic(path, "".join(lines[:-tail]))
    return tail


def _problem(line: str) -> tuple[str, str] | None:
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return (str(rec.get("benchmark")), str(rec.get("problem_id"))) if isinstance(rec, dict) else None


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
