"""Learner update speed: one optimizer step over an RL-shaped batch, per precision mode.

Workload (issue 4's setting, ../shared/notes/cpu-speed.md): the packaged
SmolLM2-135M-Instruct, 8 chat-templated two-digit additions (prompt about 50 tokens) x 8
responses of 20..96 random tokens (about 3.7k response tokens, 6.9k in all), Dr. GRPO loss, beta 0, AdamW, the full update (no zero-advantage skip). Every
configuration runs the same sequences in the same process; the first step of each is a
warm-up. A configuration is PRECISION:LAYOUT with LAYOUT `full` (every row carries its
whole prompt, length-sorted, right-padded) or `packed` (one flat row, each distinct prompt
once; the default).

    .venv/bin/python bench/bench_update.py [--configs bf16-autocast:full bf16:full bf16:packed]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time


from r1zero.config import PRESETS
from r1zero.learner.batching import TrainSequence


def make_sequences(tokenizer, prompts: int = 8, group: int = 8, seed: int = 0) -> list[TrainSequence]:
    """``prompts`` questions x ``group`` responses each (random tokens: speed depends only
    on the lengths)."""
    rng = random.Random(seed)
    seqs = []
    for _ in range(prompts):
        q = f"What is {rng.randint(10, 99)} + {rng.randint(10, 99)}? Put your final answer within \\boxed{{}}."
        text = tokenizer.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                             add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        for _ in range(group):
            n = rng.randint(20, 96)
            response = [rng.randrange(100, tokenizer.vocab_size) for _ in range(n)]
            adv = rng.choice([-1.0, -0.5, 0.5, 1.0])  # Dr. GRPO advantages are r - mean(r)
            seqs.append(TrainSequence(prompt, response, adv, [-1.0] * n))
    return seqs


def bench_config(precision: str, layout: str, steps: int) -> dict:
    from r1zero.config import derive
    from r1zero.train.trainer import start

    with tempfile.TemporaryDirectory() as tmp:
        cfg = dataclasses.replace(PRESETS["arith"](), backend="hf", precision=precision,
                                  skip_zero_advantage=False, run_dir=tmp, progress=False,
                                  eval_every=0, packed=layout == "packed")
        t = start(derive(cfg))
        seqs = make_sequences(t.tokenizer)
        times = []
        for _ in range(steps):
            start = time.perf_counter()
            m = t.learner.update(seqs, 0)
            times.append(time.perf_counter() - start)
        t.logger.close()
        t.backend.close()
    return {"precision": precision, "layout": layout,
            "s_per_update": statistics.median(times[1:] or times), "all": [round(x, 2) for x in times],
            "train_tokens": m["perf/train_tokens"],
            "response_tokens": sum(len(s.response_ids) for s in seqs)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=["bf16-autocast:full", "bf16:full", "bf16:packed"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--json", help="write the rows here")
    a = p.parse_args()
    rows = []
    for config in a.configs:
        precision, _, layout = config.partition(":")
        r = bench_config(precision, layout or "packed", a.steps)
        rows.append(r)
        print(f"{config:20s} {r['s_per_update']:6.1f} s/update (all {r['all']}), "
              f"{r['train_tokens']} learner tokens", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
