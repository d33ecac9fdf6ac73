"""The paper's Figure 6 on a laptop (`make study`): GRPO and Dr. GRPO (or any algorithms,
`--algorithms`) trained on the same CPU setting and seed, compared on accuracy and on the
length of correct and incorrect responses per step. With `--corrections`, the off-policy
corrections instead (`--algo.is-correction`, docs/algorithms.md §11), all at
`--max-staleness K` (2 by default), compared on reward, accuracy and the mismatch metrics.

    python scripts/length_study.py [--setting add|mul] [--out runs/study] [--steps 24]
                                   [--algorithms grpo dr_grpo gspo ...] [-- extra train flags]
    make study ARGS="--algorithms grpo dr_grpo raft online_dpo"
    make study ARGS="--corrections none token_tis seq_tis token_mis seq_mis geo_mask opsm \
                     decoupled coupled --staleness 2 --partial"

Writes OUT/<algorithm> (ordinary run directories), OUT/compare.png (the overlay),
OUT/study.md (a table), and, when both grpo and dr_grpo ran, ends with one line scripts
read:

    incorrect_length_gap: <GRPO's mean length of incorrect responses minus Dr. GRPO's, in
                           tokens, over the last third of the steps>

A positive gap is GRPO's length bias: its per-response 1/|o_i| weights a long wrong
answer's tokens less, so wrong answers are pushed to shorten less (or grow).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_ALGORITHMS = ("grpo", "dr_grpo")
# The settings tried (docs/benchmarks.md, "Length study", has what each showed). Both use
# the packaged SmolLM2-135M-Instruct on CPU at the reference temperature 1.0.
_COMMON = ["--preset", "arith", "--temperature", "1.0", "--eval-every", "6",
           "--rollout-samples", "0"]
SETTINGS = {
    # The demo's two-digit additions with room to grow (160 tokens): both algorithms learn
    # (0.20 -> ~0.65 held-out) and both collapse to ~12-token answers.
    "add": [*_COMMON, "--max-new-tokens", "160"],
    # Two-digit multiplications, 256 tokens: ~2 % accuracy, a few mixed groups per step;
    # wrong answers drift longer under both algorithms.
    "mul": [*_COMMON, "--max-new-tokens", "256", "--task.operations", "*"],
    # `make demo` itself (T = 0.7, 96 tokens): the correction study's default.
    "demo": ["--preset", "arith", "--eval-every", "6", "--rollout-samples", "0"],
}


def run(label: str, out: Path, setting: list[str], steps: int, seed: int,
        extra: list[str]) -> Path:
    """Train one configuration (a fresh run directory ``out/label``), streaming its output;
    ``extra`` holds its own flags (the algorithm, the correction) and the user's."""
    run_dir = out / label
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    cmd = [sys.executable, "-m", "r1zero", "train", *setting,
           "--steps", str(steps), "--seed", str(seed), "--run-dir", str(run_dir),
           "--no-progress", *extra]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return run_dir


def last_third_mean(records: list[dict], key: str) -> float | None:
    """Mean of ``key`` over the last third of the training steps that logged it."""
    values = [r[key] for r in records if r.get("step", 0) > 0 and r.get(key) is not None]
    tail = values[-max(1, len(values) // 3):]
    return sum(tail) / len(tail) if tail else None


def summary(runs: dict[str, Path]) -> tuple[str, float | None]:
    """The Markdown table and GRPO's incorrect-length gap over Dr. GRPO (None unless both
    ran)."""
    from r1zero.logging import read_metrics

    keys = [("reward/accuracy", "train accuracy"), ("rollout/len_correct", "len correct"),
            ("rollout/len_incorrect", "len incorrect"), ("rollout/len_mean", "len all"),
            ("rollout/truncated_frac", "truncated")]
    rows = ["| algorithm | " + " | ".join(name for _, name in keys) + " | eval accuracy (last) |",
            "|---" * (len(keys) + 2) + "|"]
    means = {}
    for algo, run_dir in runs.items():
        records = read_metrics(run_dir)
        means[algo] = {k: last_third_mean(records, k) for k, _ in keys}
        evals = [r["eval/accuracy"] for r in records if r.get("eval/accuracy") is not None]
        cells = [f"{v:.3f}" if v is not None else "-" for v in means[algo].values()]
        rows.append(f"| {algo} | " + " | ".join(cells) + f" | {evals[-1] if evals else '-'} |")
    gap = None
    if "grpo" in means and "dr_grpo" in means:
        gap = (means["grpo"]["rollout/len_incorrect"] or 0.0) - (means["dr_grpo"]["rollout/len_incorrect"] or 0.0)
    return "\n".join(rows), gap


# The correction study's columns: (metric, header, over the last third (True) or every step).
CORRECTION_COLUMNS = (
    ("reward/mean", "reward", True), ("reward/accuracy", "train acc.", True),
    ("mismatch/kl_k1", "KL k1", False), ("mismatch/kl_k3", "KL k3", False),
    ("mismatch/is_ratio_p99", "r p99", False), ("mismatch/is_ratio_max", "r max", False),
    ("mismatch/masked_frac", "masked tok.", False), ("mismatch/masked_seq_frac", "dropped resp.", False),
    ("mismatch/truncated_frac", "truncated tok.", False),
    ("rollout/token_staleness_mean", "token staleness", False), ("perf/step_s", "s/step", False),
)


def all_steps_mean(records: list[dict], key: str) -> float | None:
    """Mean of ``key`` over every training step that logged it."""
    values = [r[key] for r in records if r.get("step", 0) > 0 and r.get(key) is not None]
    return sum(values) / len(values) if values else None


def correction_summary(runs: dict[str, Path]) -> str:
    """The Markdown table of the correction study: reward and accuracy over the last third
    of the steps, the mismatch and timing columns over every step, the held-out accuracy."""
    from r1zero.logging import read_metrics

    head = [name + (" (last ⅓)" if last else "") for _, name, last in CORRECTION_COLUMNS]
    rows = ["| correction | " + " | ".join(head) + " | held-out acc. (first → last) |",
            "|---" * (len(head) + 2) + "|"]
    for label, run_dir in runs.items():
        records = read_metrics(run_dir)
        cells = []
        for key, _, last in CORRECTION_COLUMNS:
            v = (last_third_mean if last else all_steps_mean)(records, key)
            cells.append("-" if v is None else f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}")
        evals = [r["eval/accuracy"] for r in records if r.get("eval/accuracy") is not None]
        held = f"{evals[0]:.2f} → {evals[-1]:.2f}" if evals else "-"
        rows.append(f"| {label} | " + " | ".join(cells) + f" | {held} |")
    return "\n".join(rows)


def correction_study(args, setting: list[str]) -> None:
    """One run per `--algo.is-correction` row at `--max-staleness K`, then the table."""
    from r1zero.core.choices import IS_CORRECTIONS
    from r1zero.plotting import plot_overlay

    unknown = sorted(set(args.corrections) - set(IS_CORRECTIONS))
    if unknown:
        sys.exit(f"unknown correction(s) {unknown}; choose from {list(IS_CORRECTIONS)}")
    algorithm = args.algorithms[0] if args.algorithms != list(DEFAULT_ALGORITHMS) else "dr_grpo"
    fixed = ["--algorithm", algorithm, "--max-staleness", str(args.staleness),
             *(["--rollout.partial"] if args.partial else [])]
    runs = {c: run(c, args.out, setting, args.steps, args.seed,
                   [*fixed, "--algo.is-correction", c, *args.extra]) for c in args.corrections}
    plot = plot_overlay(list(runs.values()), args.out / "compare.png", labels=list(runs))
    text = (f"# Off-policy corrections at --max-staleness {args.staleness}, same setting and seed\n\n"
            f"Setting: `r1zero train {' '.join(setting)} {' '.join(fixed)} --steps {args.steps} "
            f"--seed {args.seed} {' '.join(args.extra)}`\n\n{correction_summary(runs)}\n\n"
            f"![overlay](compare.png)\n")
    (args.out / "study.md").write_text(text)
    print(text)
    print(f"plot: {plot}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/study"))
    ap.add_argument("--setting", choices=sorted(SETTINGS), default=None,
                    help="add for the algorithm study, demo for the correction study (defaults)")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--algorithms", nargs="+", default=list(DEFAULT_ALGORITHMS),
                    help="named algorithms to train and overlay (r1zero train --algorithm)")
    ap.add_argument("--corrections", nargs="+", default=None,
                    help="compare these --algo.is-correction rows instead of algorithms")
    ap.add_argument("--staleness", type=int, default=2, help="--max-staleness of the correction study")
    ap.add_argument("--partial", action="store_true", help="correction study with --rollout.partial")
    ap.add_argument("extra", nargs="*", help="more `r1zero train` flags (after --)")
    args = ap.parse_args()
    from r1zero.core.algorithms import ALGORITHMS

    unknown = sorted(set(args.algorithms) - set(ALGORITHMS))
    if unknown:
        ap.error(f"unknown algorithm(s) {unknown}; choose from {sorted(ALGORITHMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    setting = SETTINGS[args.setting or ("demo" if args.corrections else "add")]
    if args.corrections:
        return correction_study(args, setting)
    runs = {a: run(a, args.out, setting, args.steps, args.seed, ["--algorithm", a, *args.extra])
            for a in args.algorithms}

    from r1zero.plotting import plot_overlay

    plot = plot_overlay(list(runs.values()), args.out / "compare.png", labels=list(runs))
    table, gap = summary(runs)
    gap_line = "" if gap is None else f"incorrect_length_gap (GRPO - Dr. GRPO): {gap:+.1f} tokens\n\n"
    text = (f"# {' vs '.join(args.algorithms)}, same setting and seed\n\n"
            f"Setting: `r1zero train {' '.join(setting)}"
            f" --steps {args.steps} --seed {args.seed} {' '.join(args.extra)}`\n\n"
            f"Means over the last third of the steps:\n\n{table}\n\n"
            f"{gap_line}![overlay](compare.png)\n")
    (args.out / "study.md").write_text(text)
    print(text)
    print(f"plot: {plot}")
    if gap is not None:
        print(f"incorrect_length_gap: {gap:.2f}")


if __name__ == "__main__":
    main()
