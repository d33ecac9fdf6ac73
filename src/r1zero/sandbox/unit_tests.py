"""Code-execution rewards: run a candidate solution against its unit tests in the sandbox and
score the fraction of test cases passed (HumanEval and MBPP record formats).

A test case passes only when its program runs to its last statement (`Result.completed`)
with exit code 0 inside its limits: an early ``sys.exit(0)``, ``os._exit(0)`` or a print
that imitates success is a failure. Each case is a separate execution, so one failing or
hanging case neither hides nor stops the others.

What the sandbox cannot stop (the verdict is only as honest as the tests): the tests run in
the candidate's own process, so code written to attack the grader can still pass them, e.g.
by returning an object whose ``__eq__`` is always True, or by reading the asserts from its
own frames and returning what they expect.
"""

from __future__ import annotations

import ast
import copy
from dataclasses import dataclass
from typing import Protocol

from r1zero.sandbox.config import Result


class Runner(Protocol):
    """What scoring needs from a sandbox (a `SandboxPool`)."""

    def map(self, codes: list[str], *, timeout_s: float | None = None) -> list[Result]: ...


@dataclass(frozen=True)
class UnitTestReport:
    """Per-case outcomes of one solution: "pass", or the failing execution's verdict
    ("error" for a failed assert or exception, "timeout", "memory", "not_completed", ...)."""

    cases: tuple[str, ...]
    fraction: float
    """Reward in [0, 1]: the share of cases passed (see `score_humaneval` for its split)."""
    all_passed: bool

    @property
    def passed(self) -> int:
        return sum(c == "pass" for c in self.cases)


def case_outcome(result: Result) -> str:
    """"pass" when the case ran to its end cleanly, else why not."""
    if result.ok and result.completed:
        return "pass"
    return "not_completed" if result.ok else result.verdict


def _report(cases: list[str]) -> UnitTestReport:
    passed = sum(c == "pass" for c in cases)
    return UnitTestReport(tuple(cases), passed / len(cases) if cases else 0.0,
                          bool(cases) and passed == len(cases))


# ----------------------------------------------------------------------------- MBPP
def mbpp_programs(record: dict, solution: str) -> list[str]:
    """One program per assert of ``test_list``: the test imports, the solution, that assert
    (SOURCE.md's recipe, cut per case)."""
    head = "\n".join(record.get("test_imports") or [])
    return [f"{head}\n{solution}\n{test}\n" for test in record["test_list"]]


def score_mbpp(record: dict, solution: str, runner: Runner, *,
               timeout_s: float | None = None) -> UnitTestReport:
    """Fraction of the record's asserts that ``solution`` passes, each run separately."""
    results = runner.map(mbpp_programs(record, solution), timeout_s=timeout_s)
    return _report([case_outcome(r) for r in results])


# ----------------------------------------------------------------------------- HumanEval
def humaneval_program(record: dict, completion: str) -> str:
    """``prompt + completion``, the test code, then ``check(entry_point)`` (SOURCE.md)."""
    return (f"{record['prompt']}{completion}\n{record['test']}\n"
            f"check({record['entry_point']})\n")


def _is_case(stmt: ast.stmt, candidate: str) -> bool:
    """A statement of ``check`` that asserts something about the candidate."""
    has_assert = any(isinstance(n, ast.Assert) for n in ast.walk(stmt))
    uses = any(isinstance(n, ast.Name) and n.id == candidate for n in ast.walk(stmt))
    return has_assert and uses


def split_check(test: str) -> list[str]:
    """The test code cut into one variant per assertion of ``check(candidate)``.

    The top-level statements of check's body that contain an ``assert`` and mention the
    candidate are the cases; every other statement (imports, helpers, set-up, ``assert
    True``) is set-up. Variant j keeps the set-up statements that come before case j, in
    order, and case j alone: exactly what the original runs up to case j, minus the earlier
    cases. A loop of asserts stays one case. Returns [] when there is nothing to split
    (no single ``check``, or fewer than two cases)."""
    tree = ast.parse(test)
    checks = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"]
    if len(checks) != 1 or not checks[0].args.args:
        return []
    check = checks[0]
    candidate = check.args.args[0].arg
    case_at = [i for i, s in enumerate(check.body) if _is_case(s, candidate)]
    if len(case_at) < 2:
        return []
    variants = []
    for j in case_at:
        body = [s for i, s in enumerate(check.body[:j]) if i not in case_at] + [check.body[j]]
        new_tree = copy.deepcopy(tree)
        next(n for n in new_tree.body if isinstance(n, ast.FunctionDef) and n.name == "check").body = body
        variants.append(ast.unparse(new_tree))
    return variants


def score_humaneval(record: dict, completion: str, runner: Runner, *, split: bool = False,
                    timeout_s: float | None = None) -> UnitTestReport:
    """HumanEval's own verdict: ``check`` passes as a whole (all-or-nothing, the benchmark's
    pass@k), or with ``split`` partial credit from `split_check`'s variants.

    With ``split``, all_passed is still the whole ``check``; the fraction is 1.0 when it
    passes and otherwise the share of variants passed, at most (n - 1)/n: a split whose every
    piece passes while the whole fails (a case relying on an earlier case's side effects)
    is not full marks."""
    whole = humaneval_program(record, completion)
    variants = split_check(record["test"]) if split else []
    pieces = [f"{record['prompt']}{completion}\n{v}\ncheck({record['entry_point']})\n"
              for v in variants]
    results = runner.map([whole, *pieces], timeout_s=timeout_s)
    whole_case = case_outcome(results[0])
    if not pieces:
        return _report([whole_case])
    cases = [case_outcome(r) for r in results[1:]]
    if whole_case == "pass":
        return UnitTestReport(tuple(cases), 1.0, True)
    passed = sum(c == "pass" for c in cases)
    return UnitTestReport(tuple(cases), min(passed, len(cases) - 1) / len(cases), False)
