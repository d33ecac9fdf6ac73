"""Training curves from a run directory (``r1zero plot``): one PNG per group of metrics,
and an overlay of one metric across runs (e.g. GRPO vs Dr. GRPO response lengths).

Which figures exist and what goes in them is data (``FIGURES``), not code: a figure is a
list of panels, a panel a list of metric series. Series whose metric is absent or null are
skipped, panels left empty are dropped, and figures left empty are not written, so a run
that never logs KL (beta = 0) simply gets no KL plot. Metric names and meanings:
docs/metrics.md.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Figure + savefig directly, never pyplot: no global backend switch, no figure registry
# to leak memory, safe in a headless training process or a notebook alike. Figure.savefig
# renders PNGs with the Agg backend.
from matplotlib.figure import Figure

from r1zero.logging import METRICS_FILE, STEP_AXIS, read_metrics

# Derived series, computed here rather than logged: the trainer need not know about them.
LEN_GAP = "derived/len_incorrect_minus_correct"

# Colours carry meaning across figures: green = correct, red = incorrect, grey = truncated.
_CORRECT, _INCORRECT, _TRUNCATED = "tab:green", "tab:red", "tab:gray"
_EVAL = {"marker": "o", "linestyle": ":", "markersize": 5}
MARKERS_BELOW = 30
"""Series with fewer points than this are drawn with a marker on each (a one-step run is a
single point: a line without markers would show nothing)."""


class PlotError(ValueError):
    """Nothing to plot, or plot arguments that do not fit the runs; the message says which."""


@dataclass(frozen=True)
class Series:
    key: str  # metric name in metrics.jsonl
    label: str
    style: dict[str, Any] = field(default_factory=dict)  # matplotlib line kwargs


@dataclass(frozen=True)
class Panel:
    ylabel: str
    series: tuple[Series, ...]
    zero_line: bool = False  # draw y = 0 (for signed quantities)
    note: str = ""  # one line of reading guidance, shown inside the panel
    # Rates in [0, 1] are drawn on the full 0..1 scale (when the data fit), so that a
    # change of 0.002 in a flat rate does not fill the panel and look like an event.
    unit_interval: bool = False


@dataclass(frozen=True)
class FigureSpec:
    name: str  # file stem: <out_dir>/<name>.png
    title: str
    panels: tuple[Panel, ...]


FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("reward", "Reward and accuracy", (
        Panel("reward / rate", (
            Series("reward/mean", "mean reward"),
            Series("reward/accuracy", "train accuracy"),
            Series("reward/format_rate", "format rate", {"linestyle": "--"}),
            Series("eval/accuracy", "eval accuracy", _EVAL),
            Series("eval/format_rate", "eval format rate", {**_EVAL, "marker": "s"}),
        ), unit_interval=True),
        Panel("fraction of groups", (
            Series("reward/zero_var_group_frac", "groups with equal rewards (no gradient)"),
        ), unit_interval=True),
    )),
    FigureSpec("length", "Response length by outcome (GRPO's length bias shows here)", (
        Panel("tokens", (
            Series("rollout/len_correct", "correct", {"color": _CORRECT, "linewidth": 2}),
            Series("rollout/len_incorrect", "incorrect", {"color": _INCORRECT, "linewidth": 2}),
            Series("rollout/len_truncated", "truncated", {"color": _TRUNCATED}),
            Series("rollout/len_mean", "all responses", {"color": "black", "linestyle": "--"}),
            Series("eval/len_mean", "eval (all)", {**_EVAL, "color": "tab:blue"}),
        )),
        Panel("incorrect − correct (tokens)", (
            Series(LEN_GAP, "length gap", {"color": "tab:purple"}),
        ), zero_line=True,
            note="growing above 0: wrong answers get longer — per-response length "
                 "normalisation (GRPO) penalises long wrong answers less"),
        Panel("fraction", (
            Series("rollout/truncated_frac", "truncated responses", {"color": _TRUNCATED}),
            Series("eval/truncated_frac", "eval truncated", {**_EVAL, "color": "tab:blue"}),
        ), unit_interval=True),
    )),
    FigureSpec("reflection", "Self-reflection keywords", (
        Panel("fraction of responses", (
            Series("rollout/reflection_rate", "responses with a reflection keyword"),
        ), unit_interval=True),
    )),
    FigureSpec("entropy", "Policy entropy", (
        Panel("nats / token", (Series("policy/entropy", "entropy"),)),
    )),
    FigureSpec("clip", "PPO clipping", (
        Panel("fraction of tokens", (
            Series("policy/clip_frac_low", "clipped low (ratio < 1 − ε, A < 0)"),
            Series("policy/clip_frac_high", "clipped high (ratio > 1 + ε, A > 0)"),
            Series("policy/clip_frac_dual", "dual clip (A < 0, ratio > c)", {"linestyle": ":"}),
        )),
    )),
    FigureSpec("kl", "KL and off-policy gap", (
        Panel("KL", (
            Series("policy/kl", "KL to reference"),
            Series("policy/kl_ref", "KL to reference"),
            Series("policy/approx_kl", "approx KL(old ‖ new)", {"linestyle": "--"}),
        )),
        Panel("nats / token", (
            Series("policy/sampler_logprob_gap", "|learner − sampler| log-prob"),
        )),
    )),
    FigureSpec("mismatch", "Sampler / learner mismatch (μ = sampler, π_old = learner)", (
        Panel("KL(μ ‖ π_old) per token", (
            Series("mismatch/kl_k1", "k1 = log μ − log π_old"),
            Series("mismatch/kl_k3", "k3 = r − 1 − log r", {"linestyle": "--"}),
        ), zero_line=True, note="0 when the sampler is the learner; a climb precedes collapse"),
        Panel("r = π_old / μ", (
            Series("mismatch/is_ratio_max", "max", {"color": "tab:red", "linestyle": ":"}),
            Series("mismatch/is_ratio_p99", "p99", {"color": "tab:red"}),
            Series("mismatch/is_ratio_p50", "median", {"color": "black"}),
            Series("mismatch/is_ratio_p1", "p1", {"color": "tab:blue"}),
        )),
        Panel("fraction", (
            Series("mismatch/masked_frac", "tokens masked"),
            Series("mismatch/truncated_frac", "tokens truncated"),
            Series("mismatch/masked_seq_frac", "responses dropped", {"linestyle": "--"}),
        ), unit_interval=True),
        Panel("versions behind", (
            Series("rollout/token_staleness_mean", "token staleness (mean)"),
            Series("rollout/token_staleness_max", "token staleness (max)", {"linestyle": ":"}),
            Series("rollout/staleness_mean", "response staleness (mean)", {"linestyle": "--"}),
        )),
    )),
    FigureSpec("optim", "Optimisation", (
        Panel("grad norm", (Series("optim/grad_norm", "grad norm (before clipping)"),)),
        Panel("loss", (
            Series("loss/policy", "policy loss"),
            Series("loss/total", "total loss", {"linestyle": "--"}),
            Series("loss/kl", "β·KL", {"linestyle": ":"}),
        ), zero_line=True),
        Panel("learning rate", (Series("optim/lr", "lr"),)),
    )),
    FigureSpec("throughput", "Throughput and memory", (
        Panel("seconds", (
            Series("perf/step_s", "step", {"color": "black", "linewidth": 2}),
            Series("perf/gen_s", "generation"),
            Series("perf/train_s", "update"),
            Series("perf/sync_s", "weight sync"),
            Series("perf/eval_s", "eval", _EVAL),
        )),
        Panel("tokens / s", (
            Series("perf/gen_tokens_per_s", "generated"),
            Series("perf/train_tokens_per_s", "trained"),
        )),
        Panel("GB", (Series("perf/peak_rss_gb", "peak RSS"),)),
    )),
)


# --------------------------------------------------------------------------- data


def load_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """``read_metrics`` plus derived series; a clear error when there is nothing to plot."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no metrics to plot: {path} does not exist")
    records = read_metrics(run_dir)
    if not records:
        raise PlotError(f"no metrics to plot: {path} holds no complete metrics record (did the "
                        "run finish a step?)")
    for r in records:
        correct, incorrect = _number(r.get("rollout/len_correct")), _number(r.get("rollout/len_incorrect"))
        if correct is not None and incorrect is not None:
            r[LEN_GAP] = incorrect - correct
    return records


def _number(value: Any) -> float | None:
    """A finite float, or None for absent / null / non-numeric / non-finite values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def series(records: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    """``(steps, values)`` of one metric, skipping steps where it is absent or null."""
    steps, values = [], []
    for r in records:
        v = _number(r.get(key))
        if v is not None:
            steps.append(r["step"])
            values.append(v)
    return steps, values


def _moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean (shorter at the start), so the curve never looks ahead in time."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def _smoothing_window(n_points: int) -> int:
    # RL curves are noisy step to step; past ~50 points a faint raw line plus a ~2%-of-run
    # trailing mean reads better. Short runs are drawn raw.
    return max(1, n_points // 50) if n_points >= 50 else 1


# --------------------------------------------------------------------------- drawing


def _draw_series(ax: Any, steps: list[int], values: list[float], s: Series) -> None:
    window = _smoothing_window(len(values))
    if window == 1 or "marker" in s.style:  # sparse points (eval) are never smoothed
        few = {"marker": "o", "markersize": 3} if len(values) < MARKERS_BELOW else {}
        ax.plot(steps, values, label=s.label, **{**few, **s.style})
        return
    (raw,) = ax.plot(steps, values, **{**s.style, "alpha": 0.25, "linewidth": 1})
    ax.plot(steps, _moving_average(values, window), label=f"{s.label} ({window}-step avg)",
            color=raw.get_color(), **{k: v for k, v in s.style.items() if k != "color"})


def _draw_panel(ax: Any, records: Sequence[dict[str, Any]], panel: Panel) -> None:
    lo, hi = math.inf, -math.inf
    for s in panel.series:
        steps, values = series(records, s.key)
        if steps:
            _draw_series(ax, steps, values, s)
            lo, hi = min(lo, *values), max(hi, *values)
    if panel.unit_interval and 0.0 <= lo and hi <= 1.0:
        ax.set_ylim(-0.02, 1.02)
    if panel.zero_line:
        ax.axhline(0.0, color="black", linewidth=0.8, alpha=0.5)
    if panel.note:
        ax.text(0.01, 0.97, panel.note, transform=ax.transAxes, va="top", fontsize=8,
                style="italic", wrap=True)
    ax.set_ylabel(panel.ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")


def _has_data(records: Sequence[dict[str, Any]], panel: Panel) -> bool:
    return any(series(records, s.key)[0] for s in panel.series)


def plot_figure(records: Sequence[dict[str, Any]], spec: FigureSpec, out_dir: Path) -> Path | None:
    """Draw one figure's non-empty panels stacked on a shared step axis; None if all empty."""
    panels = [p for p in spec.panels if _has_data(records, p)]
    if not panels:
        return None
    fig = Figure(figsize=(8, 2.2 + 2.3 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, panel in zip(axes, panels):
        _draw_panel(ax, records, panel)
    axes[-1].set_xlabel(STEP_AXIS)
    fig.suptitle(spec.title)
    path = out_dir / f"{spec.name}.png"
    fig.savefig(path, dpi=110)
    return path


def plot_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Write one PNG per metric group of ``run_dir/metrics.jsonl`` into ``out_dir``
    (default ``run_dir/plots``) and return their paths, in ``FIGURES`` order.

    Raises FileNotFoundError / PlotError (naming the file) when there are no metrics.
    """
    records = load_metrics(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "plots"
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_figure(records, spec, out) for spec in FIGURES]
    return [p for p in paths if p is not None]


def plot_compare(
    run_dirs: Sequence[str | os.PathLike],
    metric: str,
    out_path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
) -> Path:
    """Overlay ``metric`` from several runs in one PNG (legend: run directory names, or
    ``labels``). Runs lacking the metric are skipped with a warning; if none has it,
    PlotError names the metric and the runs."""
    if labels is not None and len(labels) != len(run_dirs):
        raise PlotError(f"got {len(labels)} labels for {len(run_dirs)} runs; give one per run")
    names = list(labels) if labels is not None else [Path(d).name for d in run_dirs]
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    drawn = 0
    for run_dir, name in zip(run_dirs, names):
        steps, values = series(load_metrics(run_dir), metric)
        if not steps:
            warnings.warn(f"{Path(run_dir) / METRICS_FILE} has no values for {metric!r}")
            continue
        _draw_series(ax, steps, values, Series(metric, name))
        drawn += 1
    if drawn == 0:
        raise PlotError(f"metric {metric!r} not found in any of {[str(d) for d in run_dirs]}")
    if metric == LEN_GAP:
        ax.axhline(0.0, color="black", linewidth=0.8, alpha=0.5)
    ax.set_xlabel(STEP_AXIS)
    ax.set_ylabel(metric)
    ax.set_title(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path


# The figure that compares runs (``r1zero plot RUN_A RUN_B ...``, ``make study``): what
# the paper's Figure 6 shows for GRPO vs Dr. GRPO.
OVERLAY_PANELS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("accuracy", ("eval/accuracy", "reward/accuracy")),
    ("length of correct responses (tokens)", ("rollout/len_correct",)),
    ("length of incorrect responses (tokens)", ("rollout/len_incorrect",)),
)


def plot_overlay(
    run_dirs: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    labels: Sequence[str] | None = None,
) -> Path:
    """One PNG with a panel per row of ``OVERLAY_PANELS`` and a line per run in each:
    accuracy (held-out when logged, else train), and the mean length of correct and of
    incorrect responses per step. Raises PlotError when no run has any of the metrics."""
    names = list(labels) if labels is not None else [Path(d).name for d in run_dirs]
    if len(names) != len(run_dirs):
        raise PlotError(f"got {len(names)} labels for {len(run_dirs)} runs; give one per run")
    runs = [load_metrics(d) for d in run_dirs]
    fig = Figure(figsize=(8, 3.0 * len(OVERLAY_PANELS)), layout="constrained")
    axes = fig.subplots(len(OVERLAY_PANELS), 1, sharex=True)
    drawn = 0
    for ax, (ylabel, keys) in zip(axes, OVERLAY_PANELS):
        for k, (records, name) in enumerate(zip(runs, names)):
            key = next((key for key in keys if series(records, key)[0]), None)
            if key is None:
                continue
            steps, values = series(records, key)
            style = _EVAL if key.startswith("eval/") else {}
            _draw_series(ax, steps, values, Series(key, f"{name} ({key})",
                                                   {**style, "color": f"C{k}"}))
            drawn += 1
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if drawn == 0:
        raise PlotError(f"none of {[str(d) for d in run_dirs]} has accuracy or length metrics")
    axes[-1].set_xlabel(STEP_AXIS)
    fig.suptitle("Runs compared: accuracy and response length by outcome")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_path, dpi=110)
    return out_path
