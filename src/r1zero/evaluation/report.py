"""Evaluation summaries: per-benchmark accuracy, pass@k, maj@k and response lengths, their
unweighted average, and results.json / results.md."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any

from r1zero.core.metrics import maj_at_k, pass_at_k
from r1zero.durable import write_atomic
from r1zero.evaluation.settings import BenchmarkSet, EvalConfig
from r1zero.templates import Template


# ---------------------------------------------------------------------- summaries
def _key(rec: dict[str, Any]) -> tuple[str, str, int]:
    """A sample's identity in samples.jsonl: (benchmark, problem id, sample index)."""
    return rec["benchmark"], str(rec["problem_id"]), int(rec["sample_index"])


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
    if any("tests_passed" in r for r in flat):  # --task code: the share of asserts passed
        m["tests_passed"] = _mean([r.get("tests_passed", 0.0) for r in flat])
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
        groups = [[index[k] for j in range(cfg.sampling.samples) if (k := (s.key, p.id, j)) in index]
                  for p in s.problems]
        complete &= all(len(g) == cfg.sampling.samples for g in groups)
        per_bench[s.key] = {"title": s.title, "source": s.source,
                            **benchmark_metrics([g for g in groups if g], cfg.sampling.samples)}
    return {
        "complete": complete,
        "config": asdict(cfg),
        "sampling": {"n": cfg.sampling.samples, "temperature": cfg.sampling_temperature, "top_p": cfg.sampling.top_p,
                     "max_new_tokens": cfg.sampling.max_new_tokens, "seed": cfg.sampling.seed, "stop": list(template.stop)},
        "template": {"name": template.name, "text": template.text},
        "grader": {"extract": f"unit tests (sandbox {cfg.sandbox.mode})" if cfg.task == "code"
                   else cfg.extract or template.answer_format,
                   "timeout_s": cfg.sandbox.timeout_s if cfg.task == "code" else cfg.grade_timeout_s,
                   "versions": _versions()},
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
              "tests_passed": "Unit tests passed (%)",
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
    write_atomic(out / "results.json", json.dumps(nan_to_none(results), indent=2, default=str))
    write_atomic(out / "results.md", results_markdown(results))


def nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [nan_to_none(v) for v in x]
    return x
