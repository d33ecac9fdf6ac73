"""Tests for the task registry, the Task protocol, and the math-family tasks (math, gsm8k,
arithmetic) that reward a correct final answer with 1 and anything else with 0."""

from __future__ import annotations

import dataclasses
import sys
import time
import types

import pytest

from r1zero.config import ConfigError, TaskConfig
from r1zero.tasks import TASKS, Problem, Task, TaskVerdict, get_task
from r1zero.templates import get_template
from tests.helpers import DATA, needs_data

BOXED, R1 = get_template("qwen_math"), get_template("r1")


# ----------------------------------------------------------------------------- registry
def test_every_registered_task_satisfies_the_protocol():
    base = TaskConfig(num_train=4, num_test=2)
    expected = {"math": "qwen_math", "gsm8k": "qwen_math", "arithmetic": "chat",
                "countdown": "r1", "knights_knaves": "r1", "code": "chat"}
    assert set(TASKS) == set(expected)
    for name, template in expected.items():
        task = get_task(dataclasses.replace(base, name=name))
        assert isinstance(task, Task)
        assert task.name == name and task.default_template == template
        get_template(task.default_template)  # must resolve


def test_unknown_task_lists_names():
    with pytest.raises(ConfigError, match="arithmetic.*package.module:factory"):
        get_task(TaskConfig(name="arithmetik"))


class _EchoTask:
    name = "echo"
    default_template = "no"

    def __init__(self, cfg):
        self.cfg = cfg

    def problems(self, split):
        return [Problem("0", "say hi", "hi", {})]

    def verify(self, response, problem, *, template):
        ok = response.strip() == problem.answer
        return TaskVerdict(float(ok), ok, True, "correct" if ok else "wrong_value")


@pytest.fixture
def user_module(monkeypatch):
    module = types.ModuleType("user_tasks_for_test")
    module.make = _EchoTask
    module.broken = lambda cfg: object()
    module.not_callable = 3
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module.__name__


def test_dotted_path_factory_gets_the_config(user_module):
    cfg = TaskConfig(name=f"{user_module}:make", seed=7)
    task = get_task(cfg)
    assert task.cfg is cfg
    assert task.verify("hi", task.problems("test")[0], template=get_template("no")).correct


@pytest.mark.parametrize(
    "suffix, message",
    [(":broken", "not a Task.*missing: name, default_template, problems, verify"),
     (":not_callable", "no callable 'not_callable'"),
     (":missing", "no callable 'missing'")],
)
def test_dotted_path_errors(user_module, suffix, message):
    with pytest.raises(ConfigError, match=message):
        get_task(TaskConfig(name=user_module + suffix))


def test_dotted_path_bad_module():
    with pytest.raises(ConfigError, match="cannot import module 'no_such_pkg_r1z.tasks'"):
        get_task(TaskConfig(name="no_such_pkg_r1z.tasks:make"))
    with pytest.raises(ConfigError, match="must look like"):
        get_task(TaskConfig(name=":make"))


# ----------------------------------------------------------------------------- arithmetic
def test_arithmetic_problems_are_exact_seeded_and_disjoint():
    cfg = TaskConfig(name="arithmetic", num_train=300, num_test=50, digits=2,
                     operations=("+", "-", "*"), seed=5)
    task = get_task(cfg)
    train, test = task.problems("train"), task.problems("test")
    assert (len(train), len(test)) == (300, 50)
    key = lambda p: (p.meta["a"], p.meta["op"], p.meta["b"])  # noqa: E731
    assert not {key(p) for p in train} & {key(p) for p in test}
    assert len({key(p) for p in train}) == 300
    for p in train + test:
        a, op, b = key(p)
        assert 10 <= a <= 99 and 10 <= b <= 99
        assert p.answer == str({"+": a + b, "-": a - b, "*": a * b}[op])
        assert p.question == f"What is {a} {op} {b}? Put your final answer within \\boxed{{}}."
    assert [p.question for p in get_task(cfg).problems("test")] == [p.question for p in test]


def test_arithmetic_small_space_and_large_digits():
    # 1-digit addition has 81 problems: asking for all of them works, one more does not.
    task = get_task(TaskConfig(name="arithmetic", digits=1, num_train=71, num_test=10))
    assert len(task.problems("train")) == 71
    with pytest.raises(ConfigError, match="only 81 distinct"):
        get_task(TaskConfig(name="arithmetic", digits=1, num_train=72, num_test=10))
    big = get_task(TaskConfig(name="arithmetic", digits=12, num_train=5, num_test=5))
    assert all(len(str(p.meta["a"])) == 12 for p in big.problems("train"))


def test_arithmetic_config_errors():
    with pytest.raises(ConfigError, match="operations"):
        get_task(TaskConfig(name="arithmetic", operations=("/",)))
    with pytest.raises(ConfigError, match="digits"):
        get_task(TaskConfig(name="arithmetic", digits=0))


# ----------------------------------------------------------------------------- math family
try:
    from r1zero.grading import grade  # noqa: F401  (only its presence is checked)

    HAVE_GRADER = True
except ImportError:
    HAVE_GRADER = False
needs_grade = pytest.mark.skipif(not HAVE_GRADER, reason="r1zero.grading.grade not available")


@needs_grade
@pytest.mark.parametrize(
    "response, template, reward, reason, format_ok",
    [
        ("47 + 85 = 132, so \\boxed{132}", BOXED, 1.0, "correct", True),
        ("\\boxed{131}", BOXED, 0.0, "wrong_answer", True),
        ("the answer is 132", BOXED, 0.0, "no_answer", False),
        ("sum</think> <answer>132</answer>", R1, 1.0, "correct", True),
        ("<answer>132</answer>", R1, 0.0, "format_error", False),
    ],
)
def test_arithmetic_verify(response, template, reward, reason, format_ok):
    task = get_task(TaskConfig(name="arithmetic", num_train=1, num_test=1))
    problem = Problem("p", "What is 47 + 85?", "132", {})
    verdict = task.verify(response, problem, template=template)
    assert (verdict.reward, verdict.reason, verdict.format_ok) == (reward, reason, format_ok)
    assert verdict.components == {"correct": reward}


@needs_grade
@needs_data
def test_math_task_loads_files_and_grades():
    cfg = TaskConfig(name="math", train_path=str(DATA / "jsonl" / "math500.jsonl"),
                     test_path=str(DATA / "evaluation_suite" / "aime"))
    task = get_task(cfg)
    assert len(task.problems("train")) == 500 and len(task.problems("test")) == 30
    problem = task.problems("test")[0]
    good = task.verify(f"... \\boxed{{{problem.answer}}}", problem, template=BOXED)
    assert good.correct and good.reward == 1.0
    assert task.verify("\\boxed{-1}", problem, template=BOXED).reward == 0.0


@needs_grade
@needs_data
def test_gsm8k_task_grades_hash_answers():
    cfg = TaskConfig(name="gsm8k", test_path=str(DATA / "jsonl" / "gsm8k_test.jsonl"))
    task = get_task(cfg)
    problems = task.problems("test")
    assert len(problems) == 1319 and problems[0].answer == "18"
    assert task.verify("She makes \\boxed{18} dollars.", problems[0], template=BOXED).correct
    with pytest.raises(ConfigError, match="train-path"):
        task.problems("train")


@needs_grade
@pytest.mark.parametrize(
    "response",
    ["", "\x00" * 1000, "\\boxed{" * 100_000, "x" * 1_000_000 + "\\boxed{1}",
     "\\boxed{9**9**9**9}", "\\boxed{" + "(" * 10_000 + "}", "\\boxed{−5 × 3}"],
)
def test_math_verify_adversarial_inputs(response):
    task = get_task(TaskConfig(name="math"))
    problem = Problem("p", "q", "-15", {})
    for template in (BOXED, R1):
        start = time.perf_counter()
        verdict = task.verify(response, problem, template=template)
        assert time.perf_counter() - start < 6.0  # the grader's own bound is 5 s
        assert verdict.reward in (0.0, 1.0)
    not_text: str = None  # type: ignore[assignment]  (e.g. a failed remote request)
    assert task.verify(not_text, problem, template=BOXED).reason == "bad_input"
