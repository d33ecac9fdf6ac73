"""Reports of `r1zero analyze`: report.md, summary.json and PNG plots (matplotlib, Agg).

Every figure is also a table in report.md, so the numbers survive without the images.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from r1zero.durable import write_atomic
from r1zero.evaluation import nan_to_none
from r1zero.logging import STEP_AXIS

GROUP_LABELS = {
    "reflect_correct": "reflection, correct",
    "reflect_incorrect": "reflection, incorrect (superficial)",
    "none_correct": "no reflection, correct",
    "none_incorrect": "no reflection, incorrect",
}


def _plt():
    """pyplot on the file-only Agg backend (no display needed; safe in threads and CI)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def pct(x: float | None) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def num(x: float | None, digits: int = 0) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """JSON with nan as null (strict JSON readers reject NaN), replaced atomically."""
    write_atomic(path, json.dumps(nan_to_none(payload), indent=2, default=str))


# ---------------------------------------------------------------------- base-model study
def write_study_report(out: Path, summary: dict[str, Any]) -> None:
    """summary.json, the three plots and report.md for a base-model study."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "summary.json", summary)
    plot_template_grid(summary, out / "template_grid.png")
    plot_pass_at_k(summary, out / "pass_at_k.png")
    plot_reflection_groups(summary, out / "reflection_groups.png")
    (out / "report.md").write_text(study_markdown(summary))


def study_markdown(summary: dict[str, Any]) -> str:
    """The report: template grid, pass@k, reflection rates, groups, judge agreement."""
    cfg, cells = summary["config"], summary["cells"]
    sampling = dict(cfg["sampling"])
    if sampling["temperature"] is None:  # SamplingConfig.effective_temperature
        sampling["temperature"] = 0.0 if sampling["samples"] == 1 else 1.0
    templates = list(dict.fromkeys(c["template"] for c in cells))
    lines = [
        "# Base-model analysis\n",
        f"{cells[0]['n_questions'] if cells else 0} questions "
        f"({', '.join(cfg['data']) or cfg['suite'] + ': ' + ', '.join(cfg['benchmarks'])}), "
        f"{sampling['samples']} samples each at T={sampling['temperature']:g}, top-p {sampling['top_p']:g}, "
        f"{sampling['max_new_tokens']} new tokens. Keywords: {', '.join(summary['keywords'])}.\n",
        "## Template effect: accuracy (%, mean over samples)\n",
        "![template grid](template_grid.png)\n",
        "| model | " + " | ".join(templates) + " |",
        "|---" * (len(templates) + 1) + "|",
    ]
    for model, row in summary["grid"].items():
        lines.append(f"| {model} | " + " | ".join(pct(row.get(t)) for t in templates) + " |")
    lines += ["", "## Exploration: pass@k (%)\n", "![pass@k](pass_at_k.png)\n"]
    ks = sorted({int(k) for c in cells for k in c["pass_at_k"]})
    lines += ["| model | template | " + " | ".join(f"k={k}" for k in ks) + " |",
              "|---" * (len(ks) + 2) + "|"]
    for c in cells:
        pk = {int(k): v for k, v in c["pass_at_k"].items()}
        lines.append(f"| {c['model']} | {c['template']} | " + " | ".join(pct(pk.get(k)) for k in ks) + " |")
    lines += _reflection_section(cells)
    lines += _judge_section(cells)
    return "\n".join(lines) + "\n"


def _reflection_section(cells: list[dict[str, Any]]) -> list[str]:
    lines = [
        "", "## Self-reflection (keywords)\n",
        "*Response-level*: share of all responses with a keyword. *Question-level*: share of "
        "questions with at least one such response among their k samples (grows with k).\n",
        "| model | template | response-level (%) | question-level (%) | k | "
        "P(correct \\| reflection) | P(correct \\| none) |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        r, g = c["reflection"], c["groups"]
        lines.append(
            f"| {c['model']} | {c['template']} | {pct(r['response_level_rate'])} | "
            f"{pct(r['question_level_rate'])} | {r['samples_per_question']} | "
            f"{pct(g['p_correct_given_reflection'])} (n={g['n_reflection']}) | "
            f"{pct(g['p_correct_given_none'])} (n={g['n_none']}) |")
    lines += ["", "### Superficial self-reflection: four groups\n",
              "![reflection groups](reflection_groups.png)\n",
              "| model | template | group | responses | share (%) | mean length (tokens) |",
              "|---|---|---|---|---|---|"]
    for c in cells:
        g = c["groups"]
        for name, label in GROUP_LABELS.items():
            lines.append(f"| {c['model']} | {c['template']} | {label} | {g['counts'][name]} | "
                         f"{pct(g['shares'][name])} | {num(g['mean_length'][name])} |")
    return lines


def _judge_section(cells: list[dict[str, Any]]) -> list[str]:
    judged = [c for c in cells if c.get("judge")]
    if not judged:
        return ["", "No LLM judge was used (--judge.model / --judge.base-url).\n"]
    lines = ["", "## LLM judge vs keywords\n",
             "Measured on a stratified subset (up to half keyword hits). *Precision*: share of "
             "keyword hits the judge confirms; *confirmed*: response-level rate x precision; "
             "*judge rate*: the judge's positive rate over all responses, reweighted.\n",
             "| model | template | judged | unclear | precision (%) | confirmed (%) | "
             "judge rate (%) | agreement (%) | Cohen's kappa |",
             "|---|---|---|---|---|---|---|---|---|"]
    for c in judged:
        j = c["judge"]
        lines.append(f"| {c['model']} | {c['template']} | {j['n_judged']} | {j['n_unclear']} | "
                     f"{pct(j['keyword_precision'])} | {pct(j['confirmed_rate'])} | "
                     f"{pct(j['judge_rate_estimate'])} | {pct(j['agreement'])} | "
                     f"{num(j['cohen_kappa'], 2)} |")
    return lines


# ---------------------------------------------------------------------- plots
def plot_template_grid(summary: dict[str, Any], path: Path) -> None:
    """Heat map of accuracy, models (rows) x templates (columns), as in the paper's Table 1."""
    plt = _plt()
    models = list(summary["grid"])
    templates = list(dict.fromkeys(c["template"] for c in summary["cells"]))
    values = [[_nan(summary["grid"][m].get(t)) * 100 for t in templates] for m in models]
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(templates), 1.2 + 0.6 * len(models)))
    im = ax.imshow(values, cmap="viridis", vmin=0, vmax=100)
    ax.set_xticks(range(len(templates)), templates)
    ax.set_yticks(range(len(models)), models)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, "–" if math.isnan(v) else f"{v:.1f}", ha="center", va="center",
                    color="black" if v > 60 else "white")  # readable on viridis' yellow end
    fig.colorbar(im, ax=ax, label="accuracy (%)")
    ax.set_title("Template effect: accuracy (%)")
    _save(fig, path)


def plot_pass_at_k(summary: dict[str, Any], path: Path) -> None:
    """pass@k against k, one curve per model x template."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for c in summary["cells"]:
        pk = sorted((int(k), v) for k, v in c["pass_at_k"].items())
        ax.plot([k for k, _ in pk], [100 * v for _, v in pk], marker="o",
                label=f"{c['model']} / {c['template']}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k (samples per question)")
    ax.set_ylabel("pass@k (%)")
    ax.set_title("Exploration: pass@k")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, path)


def plot_reflection_groups(summary: dict[str, Any], path: Path) -> None:
    """Left: shares of the four groups per cell (stacked). Right: their mean lengths."""
    plt = _plt()
    cells = summary["cells"]
    labels = [f"{c['model']}\n{c['template']}" for c in cells]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(4 + 2.2 * len(cells), 4))
    bottom = [0.0] * len(cells)
    width = 0.8 / len(GROUP_LABELS)
    for gi, (name, label) in enumerate(GROUP_LABELS.items()):
        shares = [100 * _nan(c["groups"]["shares"][name], 0.0) for c in cells]
        ax1.bar(range(len(cells)), shares, bottom=bottom, label=label)
        bottom = [b + s for b, s in zip(bottom, shares)]
        lengths = [_nan(c["groups"]["mean_length"][name], 0.0) for c in cells]
        ax2.bar([i + (gi - 1.5) * width for i in range(len(cells))], lengths, width, label=label)
    for ax, title in ((ax1, "share of responses (%)"), (ax2, "mean length (tokens)")):
        ax.set_xticks(range(len(cells)), labels, fontsize=7)
        ax.set_title(title)
    handles, names = ax1.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Self-reflection x correctness")
    fig.tight_layout(rect=(0, 0.08, 1, 1))  # room for the legend below the axes
    _save(fig, path, tight=False)


# ---------------------------------------------------------------------- training runs
RUN_LENGTH_CURVES = {
    "mean_length": "all",
    "mean_length_correct": "correct",
    "mean_length_incorrect": "incorrect",
    "mean_length_formatted": "formatted",
    "mean_length_reflective": "with reflection",
    "mean_length_nonreflective": "without reflection",
}


def plot_run(summary: dict[str, Any], path: Path) -> None:
    """Left: mean length per step by group. Right: reflection rate and accuracy per step.

    Reading it: if "without reflection" rises like "all" while the reflection rate stays
    flat, length grew through reward optimisation, not through more reflection."""
    plt = _plt()
    steps = sorted(int(s) for s in summary["steps"])
    stats = {int(s): v for s, v in summary["steps"].items()}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    marker = "o" if len(steps) < 30 else None  # a short run's points (one step: only a point)
    for key, label in RUN_LENGTH_CURVES.items():
        ax1.plot(steps, [_nan(stats[s][key]) for s in steps], label=label,
                 linestyle="--" if "reflective" in key else "-", marker=marker, markersize=3)
    ax1.set(xlabel=STEP_AXIS, ylabel="mean response length (tokens)", title="Response length")
    ax1.legend(fontsize=7)
    for key, label in (("reflection_rate", "reflection rate (responses)"),
                       ("question_reflection_rate", "reflection rate (questions)"),
                       ("accuracy", "accuracy")):
        ax2.plot(steps, [100 * _nan(stats[s][key]) for s in steps], label=label, marker=marker,
                 markersize=3)
    ax2.set(xlabel=STEP_AXIS, ylabel="%", title="Reflection and accuracy")
    ax2.legend(fontsize=7)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    _save(fig, path)


def run_markdown(summary: dict[str, Any], max_rows: int = 40) -> str:
    """Report for a training run: the decomposition in words, then a per-step table."""
    d, w = summary["decomposition"], summary["window_steps"]
    lines = [
        f"# Training-run analysis: {summary['run_dir']}\n",
        "![lengths](run_lengths.png)\n",
        f"## Where did the length change come from? (first vs last {w} step(s))\n",
        f"- Mean length changed by **{num(d['delta_length'], 1)}** tokens.",
        f"- From a higher share of reflective responses: **{num(d['from_reflection_share'], 1)}** "
        f"(reflection rate {pct(summary['start']['reflection_rate'])}% -> "
        f"{pct(summary['end']['reflection_rate'])}%).",
        f"- From longer responses within each group: **{num(d['within_groups'], 1)}** "
        f"(non-reflective responses: {num(d['delta_length_nonreflective'], 1)}, reflective: "
        f"{num(d['delta_length_reflective'], 1)}).",
        f"- Incorrect responses changed by {num(d['delta_length_incorrect'], 1)} tokens, "
        f"correct ones by {num(d['delta_length_correct'], 1)} (GRPO's length normalisation "
        "lets wrong answers grow; Dr. GRPO removes that bias).\n",
        "## Per step\n",
        "| step | n | accuracy (%) | reflection (%) | length | correct | incorrect | formatted "
        "| reflective | non-reflective | truncated (%) |",
        "|---" * 11 + "|",
    ]
    steps = sorted(summary["steps"], key=int)
    stride = max(1, math.ceil(len(steps) / max_rows))
    for s in steps[::stride] + ([steps[-1]] if (len(steps) - 1) % stride else []):
        v = summary["steps"][s]
        lines.append(
            f"| {s} | {v['n']} | {pct(v['accuracy'])} | {pct(v['reflection_rate'])} | "
            + " | ".join(num(v[k]) for k in list(RUN_LENGTH_CURVES)[:6])
            + f" | {pct(v['truncation_rate'])} |")
    return "\n".join(lines) + "\n"


def _nan(x: float | None, default: float = float("nan")) -> float:
    return default if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _save(fig: Any, path: Path, tight: bool = True) -> None:
    import matplotlib.pyplot as plt

    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
