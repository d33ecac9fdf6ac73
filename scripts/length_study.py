"""The paper's Figure 6 on a laptop (`make study`): GRPO and Dr. GRPO (or any algorithms,
`--algorithms`) trained on the same CPU setting and seed, compared on accuracy and on the
length of correct and incorrect responses per step.

    python scripts/length_study.py [--setting add|mul] [--out runs/study] [--steps 24]
                                   [--algorithms grpo dr_grpo gspo ...] [-- extra train flags]
    make study ARGS="--algorithms grpo dr_grpo raft online_dpo"

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
}


def run(algorithm: str, out: Path, setting: list[str], steps: int, seed: int,
        extra: list[str]) -> Path:
    """Train one algorithm (a fresh run directory), streaming its output."""
    run_dir = out / algorithm
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    cmd = [sys.executable, "-m", "r1zero", "train", *setting, "--algorithm", algorithm,
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/study"))
    ap.add_argument("--setting", choices=sorted(SETTINGS), default="add")
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--algorithms", nargs="+", default=list(DEFAULT_ALGORITHMS),
                    help="named algorithms to train and overlay (r1zero train --algorithm)")
    ap.add_argument("extra", nargs="*", help="more `r1zero train` flags (after --)")
    args = ap.parse_args()
    from r1zero.core.algorithms import ALGORITHMS

    unknown = sorted(set(args.algorithms) - set(ALGORITHMS))
    if unknown:
        ap.error(f"unknown algorithm(s) {unknown}; choose from {sorted(ALGORITHMS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    setting = SETTINGS[args.setting]
    runs = {a: run(a, args.out, setting, args.steps, args.seed, args.extra) for a in args.algorithms}

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
