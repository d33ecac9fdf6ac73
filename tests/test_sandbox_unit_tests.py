"""Code-execution rewards through the sandbox: HumanEval's and MBPP's reference solutions
score 1.0, empty and wrong ones less, per case, and early exits or fake output are not
passes. Reads ../shared/data/code at test time."""

import json
import random

import pytest

from r1zero.sandbox import SandboxConfig, SandboxPool
from r1zero.sandbox.unit_tests import (UnitTestReport, humaneval_program, mbpp_programs,
                                       score_humaneval, score_mbpp, split_check)
from tests.helpers import DATA
from tests.sandbox_helpers import needs_sandbox, sandbox_here

CODE = DATA / "code"
needs_code_data = pytest.mark.skipif(not (CODE / "humaneval.jsonl").is_file(),
                                     reason=f"{CODE} not present")
pytestmark = pytest.mark.timeout(300)


def _records(name: str) -> list[dict]:
    with open(CODE / name) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def pool():
    if not sandbox_here()[0]:
        pytest.skip(f"no sandbox: {sandbox_here()[1]}")
    with SandboxPool(SandboxConfig(workers=2, timeout_s=20.0)) as p:
        yield p


def _sample(records: list[dict], n: int) -> list[dict]:
    return random.Random(0).sample(records, n)


# ----------------------------------------------------------------------------- HumanEval
@needs_code_data
def test_humaneval_program_follows_source_md():
    r = _records("humaneval.jsonl")[0]
    assert humaneval_program(r, "BODY") == r["prompt"] + "BODY\n" + r["test"] + "\ncheck(has_close_elements)\n"


@needs_sandbox
@needs_code_data
def test_humaneval_canonical_solutions_score_one_and_empty_zero_on_a_sample(pool):
    for r in _sample(_records("humaneval.jsonl"), 10):
        good = score_humaneval(r, r["canonical_solution"], pool)
        assert good == UnitTestReport(("pass",), 1.0, True), (r["task_id"], good)
        empty = score_humaneval(r, "", pool)
        assert empty.fraction == 0.0 and not empty.all_passed, (r["task_id"], empty)


@pytest.mark.slow
@needs_sandbox
@needs_code_data
def test_every_humaneval_canonical_solution_scores_one(pool):
    records = _records("humaneval.jsonl")
    assert len(records) == 164
    for r in records:
        whole = score_humaneval(r, r["canonical_solution"], pool)
        split = score_humaneval(r, r["canonical_solution"], pool, split=True)
        assert whole.fraction == split.fraction == 1.0 and set(split.cases) == {"pass"}, r["task_id"]
        assert score_humaneval(r, "", pool).fraction == 0.0, r["task_id"]


SPLIT_TEST = """
def helper(x):
    return x

def check(candidate):
    assert True
    data = [3, 1]
    assert candidate(data) == 4
    assert candidate([1]) == 1; assert candidate([]) == 0
    for i in range(3):
        assert candidate([i]) == i
"""


def test_split_check_keeps_earlier_setup_and_one_case_each():
    variants = split_check(SPLIT_TEST)
    # cases: the assert on data, the two asserts sharing a line, the loop = 4; `assert True`
    # and `data = ...` are set-up, kept before each case that follows them.
    assert len(variants) == 4
    body = [v.split("def check(candidate):\n")[1] for v in variants]
    assert body[0] == "    assert True\n    data = [3, 1]\n    assert candidate(data) == 4"
    assert body[1] == "    assert True\n    data = [3, 1]\n    assert candidate([1]) == 1"
    assert body[3].endswith("for i in range(3):\n        assert candidate([i]) == i")
    assert all("def helper(x)" in v for v in variants)
    assert split_check("def check(candidate):\n    assert candidate(1)\n") == []  # one case
    assert split_check("assert 1\n") == []  # no check()


@needs_sandbox
def test_humaneval_split_gives_partial_credit_whole_check_decides_all_passed(pool):
    record = {"prompt": "def f(xs):\n", "entry_point": "f", "test": SPLIT_TEST}
    # sum(xs) passes all 4 cases. len(xs) * 2: case 0 [3, 1] -> 4 == 4 pass; case 1 [1] ->
    # 2 != 1 fail; case 2 [] -> 0 == 0 pass; case 3 [0] -> 2 != 0 fail: 2 of 4 = 0.5, and
    # the whole check (stopping at case 1) fails.
    right = score_humaneval(record, "    return sum(xs)\n", pool, split=True)
    wrong = score_humaneval(record, "    return len(xs) * 2\n", pool, split=True)
    assert right == UnitTestReport(("pass",) * 4, 1.0, True)
    assert wrong.cases == ("pass", "error", "pass", "error") and wrong.fraction == 0.5
    assert not wrong.all_passed
    assert score_humaneval(record, "    return len(xs) * 2\n", pool).fraction == 0.0  # whole


# ----------------------------------------------------------------------------- MBPP
@needs_code_data
def test_mbpp_programs_one_per_assert():
    r = next(r for r in _records("mbpp.jsonl") if r["test_imports"])
    programs = mbpp_programs(r, "SOLUTION")
    assert len(programs) == len(r["test_list"])
    for p, t in zip(programs, r["test_list"]):
        assert p == "\n".join(r["test_imports"]) + "\nSOLUTION\n" + t + "\n"


@needs_sandbox
@needs_code_data
def test_mbpp_reference_code_scores_one_and_empty_zero_on_a_sample(pool):
    for r in _sample(_records("mbpp.jsonl"), 10):
        assert score_mbpp(r, r["code"], pool).fraction == 1.0, r["task_id"]
        empty = score_mbpp(r, "", pool)
        assert empty.fraction == 0.0 and set(empty.cases) == {"error"}, r["task_id"]


@pytest.mark.slow
@needs_sandbox
@needs_code_data
def test_every_mbpp_reference_solution_scores_one(pool):
    records = _records("mbpp.jsonl")
    assert len(records) == 427
    for r in records:
        assert score_mbpp(r, r["code"], pool).all_passed, r["task_id"]


@needs_sandbox
@needs_code_data
def test_mbpp_fraction_is_per_assert(pool):
    r = next(r for r in _records("mbpp.jsonl") if r["task_id"] == 2)
    # similar_elements: the three asserts' expected sets are {4,5}, {3,4}, {13,14}; a
    # solution that always returns (4, 5) passes the first only: 1/3.
    report = score_mbpp(r, "def similar_elements(a, b):\n    return (4, 5)\n", pool)
    assert report.cases == ("pass", "error", "error") and report.fraction == pytest.approx(1 / 3)
    # an infinite loop fails every case by time-out, each case on its own.
    slow = score_mbpp(r, "def similar_elements(a, b):\n    while True:\n        pass\n", pool,
                      timeout_s=0.5)
    assert slow.cases == ("timeout",) * 3 and slow.fraction == 0.0


@needs_sandbox
@needs_code_data
@pytest.mark.parametrize("hack", [
    "import sys\nsys.exit(0)",
    "import os\nos._exit(0)",
    "print('PASS'); print('ok')\nraise SystemExit",
    "import atexit, os\natexit.register(lambda: os._exit(0))\nundefined_name",
])
def test_early_exits_and_fake_output_are_not_passes(pool, hack):
    r = next(r for r in _records("mbpp.jsonl") if r["task_id"] == 2)
    report = score_mbpp(r, hack, pool)
    assert report.fraction == 0.0 and report.passed == 0, report
