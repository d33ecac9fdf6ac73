"""Generated code problems for the CPU demo (``--task.train-path generated``): one-line
Python functions (add k, multiply by k, count k in a list, ...) as MBPP-format records, each
with three asserts and a reference solution. Easy enough that a 135M model sometimes
passes; seeded, and no function is in both splits."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from r1zero.config import ConfigError, TaskConfig
from r1zero.utils import derive_seed

GENERATED = "generated"
"""The source name that selects these problems."""
WORDS = ("ab", "cat", "xyz", "hello", "q", "data")


def _ints(rng: random.Random) -> list[int]:
    return [rng.randint(-20, 50) for _ in range(3)]


def _lists(rng: random.Random, k: int) -> list[list[int]]:
    return [[rng.choice([k, rng.randint(0, 15)]) for _ in range(rng.randint(3, 7))] for _ in range(3)]


@dataclass(frozen=True)
class Family:
    """One kind of function, ``name``/``says``/``body`` formatted with its constant k."""

    name: str
    param: str
    says: str
    body: str
    ks: range
    inputs: Callable[[random.Random, int], list[Any]]
    apply: Callable[[Any, int], Any]


FAMILIES = (
    Family("add_{k}", "x", "returns x plus {k}", "x + {k}", range(2, 13), lambda r, k: _ints(r),
           lambda x, k: x + k),
    Family("subtract_{k}", "x", "returns x minus {k}", "x - {k}", range(2, 13), lambda r, k: _ints(r),
           lambda x, k: x - k),
    Family("times_{k}", "x", "returns x multiplied by {k}", "x * {k}", range(2, 13),
           lambda r, k: _ints(r), lambda x, k: x * k),
    Family("smaller_of_{k}", "x", "returns the smaller of x and {k}", "min(x, {k})", range(2, 13),
           lambda r, k: _ints(r), lambda x, k: min(x, k)),
    Family("is_multiple_of_{k}", "n", "returns True if n is divisible by {k}, else False",
           "n % {k} == 0", range(2, 13), lambda r, k: [k * r.randint(1, 9), k * r.randint(1, 9) + 1, r.randint(1, 99)],
           lambda n, k: n % k == 0),
    Family("count_{k}", "xs", "returns how many times {k} occurs in the list xs", "xs.count({k})",
           range(2, 13), _lists, lambda xs, k: xs.count(k)),
    Family("above_{k}", "xs", "returns the items of the list xs that are greater than {k}, in order",
           "[x for x in xs if x > {k}]", range(2, 13), _lists, lambda xs, k: [x for x in xs if x > k]),
    Family("power_{k}", "x", "returns x to the power {k}", "x ** {k}", range(2, 5),
           lambda r, k: [r.randint(-9, 9) for _ in range(3)], lambda x, k: x**k),
    Family("repeat_{k}", "s", "returns the string s repeated {k} times", "s * {k}", range(2, 6),
           lambda r, k: r.sample(WORDS, 3), lambda s, k: s * k),
    Family("first_{k}", "xs", "returns a list of the first {k} items of the list xs", "xs[:{k}]",
           range(2, 6), _lists, lambda xs, k: xs[:k]),
)


def record(family: Family, k: int, rng: random.Random, task_id: str) -> dict[str, Any]:
    """An MBPP-format record: the task text, three asserts, the reference solution."""
    name = family.name.format(k=k)
    tests = [f"assert {name}({x!r}) == {family.apply(x, k)!r}" for x in family.inputs(rng, k)]
    return {"task_id": task_id, "prompt": f"Write a Python function {name}({family.param}) that "
            f"{family.says.format(k=k)}.", "test_list": tests, "test_imports": [],
            "code": f"def {name}({family.param}):\n    return {family.body.format(k=k)}\n"}


def generated_records(cfg: TaskConfig, split: str) -> list[dict[str, Any]]:
    """``cfg.num_test`` (test) or ``cfg.num_train`` (train) records, deterministic in
    ``cfg.seed``; the test split is drawn first and no function is in both."""
    every = [(f, k) for f in FAMILIES for k in f.ks]
    if cfg.num_train + cfg.num_test > len(every):
        raise ConfigError(f"code (generated): {cfg.num_train} + {cfg.num_test} problems requested but "
                          f"only {len(every)} generated functions exist; lower --task.num-train / "
                          "--task.num-test")
    rng = random.Random(derive_seed("code-generated", cfg.seed))
    rng.shuffle(every)
    chosen = every[: cfg.num_test] if split == "test" else every[cfg.num_test: cfg.num_test + cfg.num_train]
    return [record(f, k, random.Random(derive_seed(cfg.seed, split, i)), f"code-{split}-{i}")
            for i, (f, k) in enumerate(chosen)]
