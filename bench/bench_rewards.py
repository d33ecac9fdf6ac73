"""Benchmark: a rollout batch's rewards verified serially in the driver vs by the reward pool.

One reference-recipe batch, 128 MATH-500 problems x 8 responses = 1,024 responses of about
3,000 tokens each: long reasoning (real MATH solutions, their boxes removed, with
self-checks) ending in an answer. The 8 samples of a problem mix correct, wrong,
equivalent-but-restyled, sympy-hard, unboxed, self-corrected and cut-off answers. Both
sides grade the same responses with the same `verify_all` call that the trainer's
``score`` makes, in one run: two timed batches on problems no process has graded yet,
serial first on one and the pool first on the other; the verdicts must be identical.

    .venv/bin/python bench/bench_rewards.py [--workers 2] [--problems 128] [--tokens 3000]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsonl" / "math500.jsonl"
GROUP = 8
REFLECTIONS = [
    "Wait, let me recheck that step.",
    "Let me double-check the arithmetic here.",
    "Hmm, that does not look right; let me reconsider.",
    "Let me verify again by substituting back.",
    "So far so good. Now the next part.",
]


def _perturb(answer: str, rng: random.Random) -> str:
    """A plausible wrong answer: bump the last integer, or append a term."""
    nums = list(re.finditer(r"\d+", answer))
    if nums:
        m = nums[-1]
        return answer[: m.start()] + str(int(m.group()) + rng.randint(1, 9)) + answer[m.end():]
    return answer + "+1"


def _restyle(answer: str) -> str:
    """An equivalent spelling: dfrac, left/right, unicode minus."""
    s = answer.replace("\\frac", "\\dfrac").replace("(", "\\left(").replace(")", "\\right)")
    return s.replace("-", "\u2212")


def _endings(gold: str, rng: random.Random) -> list[str]:
    """The 8 samples' last sentences: what the grader reads."""
    wrong = _perturb(gold, rng)
    return [
        f"Therefore the answer is $\\boxed{{{gold}}}$.",  # correct
        f"Therefore the answer is $\\boxed{{{wrong}}}$.",  # wrong
        f"After simplifying, $\\boxed{{{_restyle(gold)}}}$.",  # equivalent, restyled
        (f"So the final answer is $\\frac{{2\\left({gold}\\right)}}{{2}}$, i.e. "
         f"$\\boxed{{\\frac{{2\\left({gold}\\right)}}{{2}}}}$."),  # hard: needs sympy
        f"So the final answer is {gold}.",  # unboxed: no answer under the boxed reward
        f"First I got $\\boxed{{{wrong}}}$, but rechecking: $\\boxed{{{gold}}}$.",  # self-corrected
        "and then we substitute $x = ",  # cut off mid-derivation: no answer
        f"Thus $\\boxed{{{gold}+1}}$.",  # wrong by a term
    ]


def _body(own: str, others: list[str], chars: int, rng: random.Random) -> str:
    """~``chars`` of reasoning: the problem's own solution, then other solutions, with
    self-checks between paragraphs; boxes removed so only the ending states an answer."""
    parts, size = [own], len(own)
    while size < chars:
        piece = rng.choice(REFLECTIONS) + "\n\n" + rng.choice(others)
        parts.append(piece)
        size += len(piece) + 2
    text = "\n\n".join(parts)[:chars]
    return re.sub(r"\\(boxed|fbox)", "", text)


def build_batch(picked: list[dict], rows: list[dict], chars: int, seed: int = 0):
    """(responses, golds): 8 responses to each of ``picked``, prompt-major like a rollout;
    reasoning filler drawn from all ``rows``."""
    rng = random.Random(seed)
    solutions = [r["solution"] for r in rows]
    responses, golds = [], []
    for row in picked:
        for ending in _endings(row["answer"], rng):
            responses.append(_body(row["solution"], solutions, chars - len(ending), rng) + "\n\n" + ending)
            golds.append(row["answer"])
    return responses, golds


def chars_per_token(texts: list[str]) -> tuple[float, str]:
    """Characters per token of ``texts`` under the packaged model's tokenizer (4.0 when it
    cannot be loaded), and the name of what measured it."""
    try:
        from r1zero.models import DEFAULT_MODEL, load_tokenizer

        tok = load_tokenizer(DEFAULT_MODEL)
    except Exception as e:  # the benchmark still runs; the token figure is then an estimate
        print(f"note: no tokenizer ({e}); assuming 4 characters per token", file=sys.stderr)
        return 4.0, "estimated at 4 chars/token"
    sample = "\n\n".join(texts)
    return len(sample) / len(tok(sample)["input_ids"]), f"{DEFAULT_MODEL} tokenizer"


def run_serial(task, template, responses, problems) -> tuple[list, float]:
    """The driver's loop (trainer.score without --reward-workers); returns verdicts, seconds."""
    from r1zero.tasks import verify_all

    t0 = time.perf_counter()
    out = verify_all(task, responses, problems, template=template)
    return out, time.perf_counter() - t0


def run_pool(pool, responses, problems) -> tuple[list, float]:
    """The reward pool (trainer.score with --reward-workers N); returns verdicts, seconds."""
    t0 = time.perf_counter()
    out = pool.verify(responses, problems)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workers", type=int, default=2, help="reward pool processes")
    ap.add_argument("--problems", type=int, default=128, help="problems (x 8 responses)")
    ap.add_argument("--tokens", type=int, default=3000, help="approximate tokens per response")
    args = ap.parse_args()

    from r1zero.config import TaskConfig
    from r1zero.tasks import Problem, get_task
    from r1zero.templates import get_template
    from r1zero.train.verifier_pool import VerifierPool

    rows = [json.loads(x) for x in args.data.read_text(encoding="utf-8").splitlines() if x.strip()]
    if 3 * args.problems > len(rows):
        raise SystemExit(f"--problems {args.problems}: three disjoint batches need "
                         f"{3 * args.problems} problems, {args.data} has {len(rows)}")
    cpt, measured_by = chars_per_token([r["solution"] for r in rows[:100]])
    # Three batches on disjoint problems, so no process's answer cache has seen a timed
    # one: the first warms every process (imports, sympy processes), as step 1 of a run
    # does; the other two are timed, serial first then pool first (order effects cancel).
    picked = random.Random(0).sample(rows, 3 * args.problems)
    batches = []
    for k in range(3):
        responses, golds = build_batch(picked[k::3], rows, int(args.tokens * cpt), seed=k)
        batches.append((responses, [Problem(f"p{i // GROUP}", "q", g) for i, g in enumerate(golds)]))
    cfg, template = TaskConfig(name="math"), get_template("qwen_math")
    task = get_task(cfg)

    t0 = time.perf_counter()
    pool = VerifierPool(cfg, template, args.workers)
    times: dict[str, list[float]] = {"serial": [], "pool": []}
    same = True
    try:
        run_pool(pool, *batches[0])
        startup = time.perf_counter() - t0
        run_serial(task, template, *batches[0])
        for k, batch in enumerate(batches[1:]):
            sides = [("serial", lambda b: run_serial(task, template, *b)), ("pool", lambda b: run_pool(pool, *b))]
            verdicts = {}
            for name, run in sides if k == 0 else sides[::-1]:
                verdicts[name], took = run(batch)
                times[name].append(took)
            same &= verdicts["serial"] == verdicts["pool"]
    finally:
        pool.close()

    responses = batches[1][0]
    n, chars = len(responses), sum(len(r) for b in batches[1:] for r in b[0]) / (2 * len(responses))
    reasons = Counter(v.reason for v in verdicts["serial"])
    print(f"responses per batch: {n} ({args.problems} problems x {GROUP}), mean {chars:,.0f} chars "
          f"= ~{chars / cpt:,.0f} tokens ({measured_by})")
    print(f"reasons (last batch): {dict(reasons.most_common())}, accuracy "
          f"{reasons['correct'] / n:.3f}")
    for name, label in [("serial", "serial (driver)"), ("pool", f"pool ({args.workers} workers)")]:
        total = sum(times[name])
        print(f"{label:<18}: {times[name][0]:6.2f} s + {times[name][1]:6.2f} s  "
              f"({2 * n / total:7.1f} responses/s)")
    print(f"pool start-up + warm-up batch: {startup:.2f} s (once per run, not included)")
    print(f"verdicts identical: {same}")
    print(f"reward_pool_speedup: {sum(times['serial']) / sum(times['pool']):.2f}")
    if not same:
        raise SystemExit("the pool's verdicts differ from serial verification")


if __name__ == "__main__":
    main()
