"""The code task: write a Python function; the reward is the fraction of its unit tests that
pass in the sandbox, or 1 only when all pass (``--task.code-reward``).

Problems are HumanEval or MBPP records (told apart by their fields), read at run time from
a file, a ``save_to_disk`` directory or a hub id (``--task.train-path`` / ``--task.test-path``),
or generated one-line functions (``generated``, tasks/code_generated.py: the CPU demo).
The response's code is its last fenced Python block (the one defining the function, when
several do), or the whole response when it has none (a completion of HumanEval's prompt).
Scoring is `r1zero.sandbox.unit_tests`: every program runs in the sandbox, never here. A
response with no code scores 0 without running; fractional credit has a known weakness: a
stub that returns None passes the few HumanEval asserts that expect None or a falsy value.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from r1zero import data as data_lib
from r1zero.config import ConfigError, SandboxConfig, TaskConfig
from r1zero.data import DataError, Problem
from r1zero.sandbox import Result, SandboxPool
from r1zero.sandbox.unit_tests import Runner, UnitTestReport, score_humaneval, score_mbpp
from r1zero.tasks.base import TaskVerdict, bad_input_verdict, check_split
from r1zero.tasks.code_generated import GENERATED, generated_records
from r1zero.templates import Template

ASK = "Answer with the function in a ```python code block."
FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", re.DOTALL)
"""A closed fenced block: group 1 its language tag, group 2 its content."""
PYTHON_TAGS = ("", "python", "py", "python3")
BUILTIN_NAMES = frozenset(dir(builtins))


# ----------------------------------------------------------------------------- problems
def code_problem(record: dict[str, Any], where: str) -> Problem:
    """A HumanEval record (``prompt``, ``test``, ``entry_point``) or an MBPP one (``prompt``
    or ``text``, ``test_list``, ``test_imports`` or ``test_setup_code``) as a `Problem`
    whose answer holds what the tests need (``format`` says which)."""
    if {"prompt", "test", "entry_point"} <= record.keys():
        question = ("Complete the following Python function. " + ASK
                    + f"\n\n```python\n{record['prompt']}```")
        answer = {"format": "humaneval", **{k: record[k] for k in ("prompt", "test", "entry_point")}}
        meta = {"reference": record.get("canonical_solution")}
    elif "test_list" in record and ("prompt" in record or "text" in record):
        tests = list(record["test_list"])
        if not tests:
            raise DataError(f"{where}: an MBPP record without tests")
        imports = record.get("test_imports") or [line for line in (record.get("test_setup_code") or "").splitlines() if line]
        question = (f"{record.get('prompt') or record.get('text')}\nYour code should pass this "
                    f"test:\n{tests[0]}\n{ASK}")
        answer = {"format": "mbpp", "test_list": tests, "test_imports": list(imports)}
        meta = {"reference": record.get("code")}
    else:
        raise DataError(f"{where}: neither a HumanEval record (prompt, test, entry_point) nor an "
                        f"MBPP one (prompt or text, test_list); fields: {', '.join(record)}")
    task_id = record.get("task_id", where)
    return Problem(str(task_id), question, answer, meta)


def load_code_problems(source: str, *, split: str | None = None, limit: int | None = None,
                       strict: bool = False) -> list[Problem]:
    """HumanEval or MBPP problems from ``source`` (a file, a save_to_disk directory or a hub
    id; a hub dataset's ``split``, default "test"), at most ``limit``. Unusable records follow
    the rule of every loader (`r1zero.data.check_unusable`): skipped with a count and the
    first few named, an error when most are, or at the first one when ``strict``."""
    records = data_lib.load_records(source, split=split)[1][:limit]
    problems, unusable = [], []
    for i, r in enumerate(records):
        try:
            problems.append(code_problem(r, f"{source}: row {i + 1}"))
        except DataError as e:
            if strict:
                raise
            unusable.append(f"row {i + 1}: {str(e).removeprefix(f'{source}: row {i + 1}: ')}")
    data_lib.check_unusable(str(source), len(problems), unusable)
    return problems


# ----------------------------------------------------------------------------- code
def extract_code(response: str, name: str | None = None) -> tuple[str, bool]:
    """``(code, fenced)``: the last closed fenced Python block (the last one defining
    ``name`` when some do), an unclosed final block's content, or the whole response."""
    matches = list(FENCE.finditer(response))
    blocks = [m.group(2) for m in matches if m.group(1).lower() in PYTHON_TAGS]
    if blocks:
        pattern = re.compile(rf"^\s*def\s+{re.escape(name)}\s*\(", re.M) if name else None
        defining = [b for b in blocks if pattern is not None and pattern.search(b)]
        return (defining or blocks)[-1], True
    tail = response[matches[-1].end():] if matches else response  # no closed block in it
    opening = re.search(r"```[ \t]*(?:python3?|py)?[ \t]*\n", tail)
    if opening is not None:
        return tail[opening.end():], True  # an unclosed block (a truncated response)
    return response, False


def humaneval_completion(code: str, entry_point: str) -> str:
    """What follows HumanEval's prompt: a whole function (its ``def`` at column 0) goes after
    the prompt on a new line and replaces the prompt's stub; anything else continues the
    prompt's body as written."""
    if re.search(rf"^def\s+{re.escape(entry_point)}\s*\(", code, re.M):
        return "\n" + code
    return code


class _Timed:
    """A `Runner` that adds up its executions' wall seconds (``env/sandbox_s``)."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.seconds = runner, 0.0

    def map(self, codes: list[str], *, timeout_s: float | None = None) -> list[Result]:
        results = self.runner.map(codes, timeout_s=timeout_s)
        self.seconds += sum(r.wall_s for r in results)
        return results


def verdict_of(report: UnitTestReport, code: str, fenced: bool, all_or_nothing: bool,
               seconds: float) -> TaskVerdict:
    """The task's verdict from a unit-test report: reward the fraction passed (or 1/0),
    correct when every test passed; the reason is the first failing case's outcome."""
    reward = float(report.all_passed) if all_or_nothing else report.fraction
    failed = [c for c in report.cases if c != "pass"]
    reason = "correct" if report.all_passed else (f"test_{failed[0]}" if failed else "test_failed")
    return TaskVerdict(reward, report.all_passed, fenced, reason, code,
                       {"tests_passed": report.fraction, "sandbox_s": seconds})


# ----------------------------------------------------------------------------- the task
class CodeTask:
    """Problems from ``cfg.train_path`` / ``cfg.test_path`` (HumanEval, MBPP or
    ``generated``); verdicts from their unit tests in a sandbox pool started on first use
    (or the ``runner`` given)."""

    name = "code"
    default_template = "chat"

    def __init__(self, cfg: TaskConfig, *, sandbox: SandboxConfig | None = None,
                 runner: Runner | None = None) -> None:
        self.cfg = cfg
        self.sandbox = sandbox or SandboxConfig()
        self._runner, self._owned = runner, None
        self._cache: dict[str, list[Problem]] = {}

    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = self._owned = SandboxPool(self.sandbox)
        return self._runner

    def problems(self, split: str) -> list[Problem]:
        check_split(split)
        if split not in self._cache:
            source = self.cfg.train_path if split == "train" else self.cfg.test_path
            if source is None:
                raise ConfigError(f"task 'code' needs --task.{split}-path: HumanEval or MBPP records "
                                  f"(a .jsonl file, a save_to_disk directory or a hub id) or {GENERATED}")
            if source == GENERATED:
                records = generated_records(self.cfg, split)
                self._cache[split] = [code_problem(r, r["task_id"]) for r in records]
            else:
                hub_split = None if data_lib.is_local_source(source) else split
                self._cache[split] = load_code_problems(source, split=hub_split,
                                                        strict=self.cfg.strict_data)
        return self._cache[split]

    def verify(self, response: str, problem: Problem, *, template: Template) -> TaskVerdict:
        return self.verify_batch([response], [problem], template=template)[0]

    def verify_batch(self, responses: Sequence[str], problems: Sequence[Problem], *,
                     template: Template) -> list[TaskVerdict]:
        """Every response's tests, several responses at once (one per sandbox worker)."""
        if not responses:
            return []
        width = getattr(self.runner(), "size", 1)
        with ThreadPoolExecutor(max_workers=max(1, width)) as ex:
            return list(ex.map(self._verify_one, responses, problems))

    def _verify_one(self, response: str, problem: Problem) -> TaskVerdict:
        bad = bad_input_verdict(response)
        if bad is not None:
            return bad
        gold = problem.answer
        all_or_nothing = self.cfg.code_reward == "all"
        code, fenced = extract_code(response, gold.get("entry_point") or mbpp_name(gold))
        if not code.strip():  # nothing to run: HumanEval's stub alone passes its "is None" asserts
            return TaskVerdict(0.0, False, fenced, "no_code", code, {"tests_passed": 0.0, "sandbox_s": 0.0})
        timed = _Timed(self.runner())
        if gold["format"] == "humaneval":
            report = score_humaneval(gold, humaneval_completion(code, gold["entry_point"]), timed,
                                     split=not all_or_nothing)
        else:
            report = score_mbpp(gold, code, timed)
        return verdict_of(report, code, fenced, all_or_nothing, timed.seconds)

    def close(self) -> None:
        """Stop the sandbox pool this task started (not a runner it was given)."""
        if self._owned is not None:
            self._owned.close()
            self._runner = self._owned = None


def mbpp_name(gold: dict[str, Any]) -> str | None:
    """The function an MBPP record's first assert calls: its first call of a name that is
    neither a builtin nor an attribute (``assert set(f(x)) == ...`` -> f), or None."""
    test = (gold.get("test_list") or [""])[0]
    for name in re.findall(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", test):
        if name not in BUILTIN_NAMES:
            return name
    return None


def make_code(cfg: TaskConfig, sandbox: SandboxConfig | None = None) -> CodeTask:
    """Factory for ``code``."""
    return CodeTask(cfg, sandbox=sandbox)
