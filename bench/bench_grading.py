"""Benchmark: r1zero ``grade`` vs math-verify (``parse`` + ``verify``) on the same responses.

r1zero runs with ``extract="auto"`` (what plain ``r1zero grade`` does: boxes, answer tags,
answer phrases, short responses, math spans, the last number) and, for comparison, with
the paper's ``boxed`` reward extraction.

Responses are built from the MATH-500 gold answers (correct boxed, perturbed wrong,
unboxed prose, and equivalent-but-differently-written forms). Both graders see identical
inputs in one run; we print throughput (responses/s) and agreement.

``--baseline-src DIR`` times another r1zero source tree (e.g. a copy of the previous
grading package: ``git archive <rev> src/r1zero | tar -x -C /tmp/old``, then
``--baseline-src /tmp/old/src``) on the same responses in the same run: each version is
graded in fresh processes, alternating, ``--rounds`` times, and the median is printed.

    .venv/bin/python bench/bench_grading.py [--n-per-gold 6] [--data PATH] [--baseline-src DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "jsonl" / "math500.jsonl"


def _perturb(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: bump the last integer, or append a term."""
    nums = list(re.finditer(r"\d+", answer))
    if nums:
        m = nums[-1]
        return answer[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + answer[m.end() :]
    return answer + "+1"


def _restyle(answer: str) -> str:
    """An equivalent spelling: dfrac, left/right, spacing, a trailing period, unicode minus."""
    s = answer.replace("\\frac", "\\dfrac").replace("(", "\\left(").replace(")", "\\right)")
    s = s.replace("-", "\u2212")
    return "  " + s + " ."


def build_responses(answers: list[str], n_per_gold: int, seed: int = 0) -> list[tuple[str, str]]:
    """(response, gold) pairs: correct, wrong, unboxed and restyled variants per gold."""
    rng = random.Random(seed)
    kinds = [
        lambda a: f"Let me think step by step. So the result is $\\boxed{{{a}}}$.",
        lambda a: f"Working... thus \\boxed{{{_perturb(a, rng)}}}.",
        lambda a: f"The final answer is {a}.",
        lambda a: f"After simplifying we obtain \\boxed{{{_restyle(a)}}}",
        lambda a: f"Check: {_perturb(a, rng)}? No. Final: \\boxed{{{a}}}",
        lambda a: f"\\boxed{{{_perturb(a, rng)}}} is my guess",
    ]
    pairs = []
    for a in answers:
        for k in range(n_per_gold):
            pairs.append((kinds[k % len(kinds)](a), a))
    return pairs


def run_r1zero(pairs: list[tuple[str, str]], extract: str = "auto") -> tuple[list[bool], float]:
    """Grade with r1zero; returns verdicts and seconds."""
    from r1zero.grading import grade

    grade("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")  # warm-up: start the sympy worker
    t0 = time.perf_counter()
    out = [grade(r, g, extract=extract).correct for r, g in pairs]
    return out, time.perf_counter() - t0


def run_math_verify(pairs: list[tuple[str, str]]) -> tuple[list[bool], float]:
    """Grade with math-verify's normal usage: parse gold and response, then verify."""
    from math_verify import parse, verify

    verify(parse("$\\sqrt{8}$"), parse("\\boxed{2\\sqrt{2}}"))  # warm-up: imports, caches
    t0 = time.perf_counter()
    out = []
    for r, g in pairs:
        out.append(bool(verify(parse("$" + g + "$"), parse(r))))
    return out, time.perf_counter() - t0


def _time_child(src: Path, pairs_file: Path, extract: str) -> dict:
    """Seconds to grade the pairs with ``extract`` in a fresh process (cold caches)
    importing r1zero from ``src``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(src), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, __file__, "--time-pairs", str(pairs_file), "--extract", extract],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def side_by_side(pairs: list[tuple[str, str]], baseline_src: Path, rounds: int) -> dict[str, dict]:
    """Median seconds per version (this tree and ``baseline_src``) and mode, each measured
    in a fresh process, alternating versions (and which goes first) so that machine load
    hits both alike."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(pairs, f)
    runs: dict[str, dict[str, list[float]]] = {"this tree": {}, "baseline": {}}
    try:
        versions = [("this tree", ROOT / "src"), ("baseline", baseline_src)]
        for k in range(rounds):
            for extract in ("auto", "boxed"):
                for name, src in versions[:: 1 if k % 2 == 0 else -1]:  # ABBA: no order bias
                    got = _time_child(src, Path(f.name), extract)
                    runs[name].setdefault(extract, []).append(got["seconds"])
                    runs[name][f"{extract}_accuracy"] = [got["accuracy"]]
    finally:
        os.unlink(f.name)
    return {name: {k: statistics.median(v) for k, v in r.items()} for name, r in runs.items()}


def _time_pairs(path: Path, extract: str) -> None:
    """Child mode: grade the pairs in ``path`` with ``extract`` and print the timing."""
    pairs = [tuple(p) for p in json.loads(path.read_text())]
    verdicts, seconds = run_r1zero(pairs, extract=extract)
    print(json.dumps({"seconds": seconds, "accuracy": sum(verdicts) / len(verdicts)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--n-per-gold", type=int, default=6)
    ap.add_argument("--baseline-src", type=Path, help="another r1zero src/ tree to time side by side")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds with --baseline-src")
    ap.add_argument("--time-pairs", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--extract", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.time_pairs:
        return _time_pairs(args.time_pairs, args.extract)
    answers = [json.loads(x)["answer"] for x in args.data.read_text(encoding="utf-8").splitlines() if x.strip()]
    pairs = build_responses(answers, args.n_per_gold)
    ours, t_ours = run_r1zero(pairs)
    boxed_only, t_boxed = run_r1zero(pairs, extract="boxed")
    theirs, t_theirs = run_math_verify(pairs)
    n = len(pairs)
    agree = sum(a == b for a, b in zip(ours, theirs))
    print(f"responses: {n}")
    print(f"r1zero grade (auto) : {n / t_ours:8.1f} responses/s  ({t_ours:.2f} s), accuracy {sum(ours) / n:.3f}")
    print(f"r1zero grade (boxed): {n / t_boxed:8.1f} responses/s  ({t_boxed:.2f} s), accuracy {sum(boxed_only) / n:.3f}")
    print(f"math-verify (direct): {n / t_theirs:8.1f} responses/s  ({t_theirs:.2f} s), accuracy {sum(theirs) / n:.3f}")
    print(f"agreement: {agree / n:.3f}  (r1zero-only accepts {sum(a and not b for a, b in zip(ours, theirs))},"
          f" math-verify-only accepts {sum(b and not a for a, b in zip(ours, theirs))})")
    # Agreement on boxed responses isolates the equivalence judgement from extraction.
    boxed = [i for i, (r, _) in enumerate(pairs) if "\\boxed" in r]
    agree_boxed = sum(ours[i] == theirs[i] for i in boxed)
    print(f"agreement on the {len(boxed)} boxed responses: {agree_boxed / len(boxed):.3f}")
    print(f"speedup_vs_math_verify: {t_theirs / t_ours:.2f}")
    if args.baseline_src:
        timed = side_by_side(pairs, args.baseline_src, args.rounds)
        print(f"side by side with {args.baseline_src} (each mode in a fresh process, cold caches; "
              f"median of {args.rounds} alternating rounds):")
        for name, t in timed.items():
            print(f"  {name:<10} auto {n / t['auto']:8.1f} responses/s, boxed {n / t['boxed']:8.1f} responses/s"
                  f"  (accuracy auto {t['auto_accuracy']:.3f}, boxed {t['boxed_accuracy']:.3f})")
        for mode in ("auto", "boxed"):
            print(f"speedup_vs_baseline_{mode}: {timed['baseline'][mode] / timed['this tree'][mode]:.2f}")


if __name__ == "__main__":
    main()
