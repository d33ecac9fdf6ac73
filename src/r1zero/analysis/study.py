"""The base-model study behind `r1zero analyze`: models x templates on one problem set.

Each model x template cell is an ordinary `r1zero eval` run (same sampling, grading, resume
and samples.jsonl), so the numbers here are exactly those `r1zero eval` would print. On top
of its samples we compute exploration (pass@k for every k) and self-reflection statistics.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from r1zero.analysis.judge import run_judge, select_for_judging, stratified_rate
from r1zero.analysis.reflection import (
    has_reflection,
    question_level_rate,
    reflection_groups,
    reflection_hits,
    resolve_keywords,
    response_level_rate,
)
from r1zero.analysis.report import write_study_report
from r1zero.analysis.settings import AnalyzeConfig
from r1zero.core.metrics import pass_at_k
from r1zero.evaluation import (
    make_eval_backend,
    read_samples,
    resolve_benchmarks,
    run_eval,
)
from r1zero.grading.verdicts import agreement
from r1zero.rollout.base import RolloutBackend
from r1zero.rollout.openai import OpenAIBackend
from r1zero.utils import append_jsonl, read_jsonl

BackendFactory = Callable[[str], tuple[RolloutBackend, Any]]
"""model name -> (backend, tokenizer or None); one backend serves all templates of a model."""


def run_study(
    cfg: AnalyzeConfig,
    *,
    backend_factory: BackendFactory | None = None,
    judge_backend: RolloutBackend | None = None,
) -> dict[str, Any]:
    """Generate (or reuse) every cell's samples, analyse them, write the report.

    Returns the summary.json content: ``{"config", "keywords", "cells": [...], "grid": ...}``.
    """
    out = Path(cfg.out_dir or "runs/analyze")
    keywords = resolve_keywords(cfg.keyword_list, cfg.keywords)
    judge = judge_backend or _make_judge(cfg)
    cells = []
    try:
        for model in cfg.models:
            backend, tokenizer = _open_backend(cfg, model, backend_factory)
            try:
                for template in cfg.templates:
                    cell_dir = out / "cells" / _slug(model) / _slug(template)
                    ecfg = cfg.eval_config(model, template, str(cell_dir))
                    result = run_eval(ecfg, backend=backend, tokenizer=tokenizer)
                    if result["interrupted"]:
                        raise KeyboardInterrupt
                    cell = analyse_cell(ecfg, result, keywords)
                    if judge is not None:
                        cell["judge"] = judge_cell(cfg, ecfg, judge, keywords, cell_dir)
                    cells.append({"model": model, "template": template, "eval_dir": str(cell_dir), **cell})
            finally:
                backend.close()
    except KeyboardInterrupt:
        print(f"Interrupted; rerun the same command to resume (samples are kept under {out}/cells).",
              file=sys.stderr)
        return {"interrupted": True, "cells": cells}
    finally:
        if judge is not None and judge_backend is None:
            judge.close()
    summary = {
        "config": asdict(cfg),
        "keywords": list(keywords),
        "cells": cells,
        "grid": {m: {c["template"]: c["accuracy"] for c in cells if c["model"] == m} for m in cfg.models},
    }
    write_study_report(out, summary)
    return summary


def _open_backend(cfg: AnalyzeConfig, model: str, factory: BackendFactory | None):
    if factory is not None:
        return factory(model)
    return make_eval_backend(cfg.eval_config(model, cfg.templates[0], "unused"))


def _make_judge(cfg: AnalyzeConfig) -> RolloutBackend | None:
    """The reflection judge's client (``--judge.*``), or None without --judge.model."""
    j = cfg.judge
    if not j.enabled:
        return None
    return OpenAIBackend(j.base_url or "", j.model or "", endpoint=j.endpoint, api_key_env=j.api_key_env,
                         concurrency=j.concurrency, timeout_s=j.request_timeout_s)


def _slug(name: str) -> str:
    """A directory name for a model or template (custom templates get a short hash)."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip("/")).strip("_")
    if len(clean) <= 48 and clean == name.replace("/", "_"):
        return clean
    return f"{clean[:32]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


# ---------------------------------------------------------------------- one cell
def cell_records(ecfg: Any) -> list[list[dict[str, Any]]]:
    """The cell's samples grouped by question (in problem order, samples in index order),
    restricted to the problems and sample indices of the current settings."""
    index = {(r["benchmark"], str(r["problem_id"]), int(r["sample_index"])): r
             for r in read_samples(Path(ecfg.out_dir) / "samples.jsonl")}
    groups = []
    for bench in resolve_benchmarks(ecfg):
        for p in bench.problems:
            g = [index[k] for j in range(ecfg.sampling.samples) if (k := (bench.key, p.id, j)) in index]
            if g:
                groups.append(g)
    return groups


def analyse_cell(ecfg: Any, result: dict[str, Any], keywords: Sequence[str]) -> dict[str, Any]:
    """Accuracy, pass@1..k and the reflection statistics of one model x template cell."""
    groups = cell_records(ecfg)
    flat = [r for g in groups for r in g]
    flags = [has_reflection(r["response"], keywords) for r in flat]
    flags_by_q, i = [], 0
    for g in groups:
        flags_by_q.append(flags[i : i + len(g)])
        i += len(g)
    k_max = min((len(g) for g in groups), default=0)
    keyword_counts = {k: 0 for k in keywords}
    for r in flat:
        for k, n in reflection_hits(r["response"], keywords).items():
            keyword_counts[k] += n > 0  # responses containing the keyword, not occurrences
    groups4 = reflection_groups(flags, [r["correct"] for r in flat], [r["length"] for r in flat])
    return {
        "accuracy": result["average"].get("accuracy", float("nan")),
        "benchmarks": {k: v.get("accuracy") for k, v in result["benchmarks"].items()},
        "n_questions": len(groups),
        "n_responses": len(flat),
        "pass_at_k": {k: sum(pass_at_k(len(g), sum(r["correct"] for r in g), k) for g in groups) / len(groups)
                      for k in range(1, k_max + 1)},
        "format_rate": result["average"].get("format_rate", float("nan")),
        "mean_length": result["average"].get("mean_length", float("nan")),
        "reflection": {
            "response_level_rate": response_level_rate(flags),
            "question_level_rate": question_level_rate(flags_by_q),
            "samples_per_question": ecfg.sampling.samples,
            "responses_with_keyword": keyword_counts,
        },
        "groups": groups4.to_dict(),
    }


def judge_cell(cfg: AnalyzeConfig, ecfg: Any, judge: RolloutBackend,
               keywords: Sequence[str], cell_dir: Path) -> dict[str, Any]:
    """Judge a stratified subset of the cell's responses; compare with the keywords.

    Verdicts are cached in ``cell_dir/judge.jsonl`` (keyed like samples), so a rerun judges
    only what is new. Unclear judge replies are counted and left out of agreement.
    """
    questions = {(b.key, p.id): p.question for b in resolve_benchmarks(ecfg) for p in b.problems}
    flat = [r for g in cell_records(ecfg) for r in g]
    flags = [has_reflection(r["response"], keywords) for r in flat]
    chosen = select_for_judging(flags, cfg.judge.limit, cfg.sampling.seed)
    cache_path = cell_dir / "judge.jsonl"
    key = lambda r: f"{r['benchmark']}|{r['problem_id']}|{r['sample_index']}"  # noqa: E731
    cache = {rec["key"]: rec["verdict"] for _, rec, _ in
             (read_jsonl(cache_path) if cache_path.exists() else []) if rec and "key" in rec}
    todo = [i for i in chosen if key(flat[i]) not in cache]
    verdicts = run_judge(judge, [(questions[(flat[i]["benchmark"], str(flat[i]["problem_id"]))],
                                  flat[i]["response"]) for i in todo],
                         max_new_tokens=cfg.judge.max_new_tokens, seed=cfg.sampling.seed)
    append_jsonl(cache_path, [{"key": key(flat[i]), "verdict": v} for i, v in zip(todo, verdicts)])
    cache.update({key(flat[i]): v for i, v in zip(todo, verdicts)})
    judged = {i: cache[key(flat[i])] for i in chosen if cache.get(key(flat[i])) is not None}
    agree = agreement([flags[i] for i in judged], list(judged.values()))
    hits_judged = [v for i, v in judged.items() if flags[i]]
    precision = sum(hits_judged) / len(hits_judged) if hits_judged else float("nan")
    return {
        "n_judged": len(judged),
        "n_unclear": len(chosen) - len(judged),
        # Of the keyword hits the judge saw, the share it calls genuine reflection.
        "keyword_precision": precision,
        # Response-level rate of keyword hits that the judge confirms: P(hit) * precision.
        "confirmed_rate": 0.0 if not any(flags) else response_level_rate(flags) * precision,
        # The judge's own positive rate over all responses, reweighted from the strata.
        "judge_rate_estimate": stratified_rate(flags, judged),
        "agreement": agree["observed"],
        "cohen_kappa": agree["kappa"],
        "table": {"both": agree["both"], "keyword_only": agree["only_a"],
                  "judge_only": agree["only_b"], "neither": agree["neither"]},
    }
