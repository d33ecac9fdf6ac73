"""Write a small SFT trace set from the arith task: (prompt, response) JSONL records whose
response works the sum out digit by digit and boxes the answer, for the SFT-then-RL study
(docs/benchmarks.md). The problems are the task's own training problems (seeded; disjoint
from its held-out set), so `r1zero train --preset arith` evaluates on unseen sums.

Usage: python scripts/arith_traces.py OUT.jsonl [--count 256] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from r1zero.config import TaskConfig
from r1zero.tasks import get_task


def trace(a: int, b: int) -> str:
    """A short worked addition: tens and units separately, then the boxed total."""
    tens, units = (a // 10 + b // 10) * 10, a % 10 + b % 10
    return (f"{a} + {b}: the tens give {a // 10 * 10} + {b // 10 * 10} = {tens}, the units give "
            f"{a % 10} + {b % 10} = {units}, and {tens} + {units} = {a + b}. "
            f"The answer is \\boxed{{{a + b}}}.")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    task = get_task(TaskConfig(name="arithmetic", digits=2, operations=("+",), num_train=2000,
                               num_test=100, seed=args.seed))
    problems = task.problems("train")[: args.count]
    with args.out.open("w") as f:
        for p in problems:
            f.write(json.dumps({"prompt": p.question, "response": trace(p.meta["a"], p.meta["b"])}) + "\n")
    print(f"{len(problems)} traces -> {args.out}")


if __name__ == "__main__":
    main()
