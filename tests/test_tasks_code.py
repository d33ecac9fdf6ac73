"""The code task: HumanEval and MBPP records (and the generated demo problems) as problems,
the code read from a response, and rewards from their unit tests run in the sandbox:
reference solutions score 1.0, an empty solution 0.0, partial credit in between."""

from __future__ import annotations

import pytest

from r1zero.config import ConfigError, SandboxConfig, TaskConfig, TrainConfig
from r1zero.data import DataError
from r1zero.sandbox import SandboxPool
from r1zero.tasks import get_task
from r1zero.tasks.code import CodeTask, code_problem, extract_code, humaneval_completion, mbpp_name
from r1zero.tasks.code_generated import FAMILIES, generated_records
from r1zero.templates import get_template
from tests.helpers import DATA, needs_data
from tests.sandbox_helpers import needs_sandbox, sandbox_here

CHAT = get_template("chat")
HUMANEVAL, MBPP = DATA / "code" / "humaneval.jsonl", DATA / "code" / "mbpp.jsonl"


@pytest.fixture(scope="module")
def pool():
    if not sandbox_here()[0]:
        pytest.skip(f"no sandbox: {sandbox_here()[1]}")
    with SandboxPool(SandboxConfig(workers=2, timeout_s=20.0)) as p:
        yield p


def _task(pool, **kw) -> CodeTask:
    return CodeTask(TaskConfig(name="code", **kw), runner=pool)


# ----------------------------------------------------------------------------- reading code
@pytest.mark.parametrize("response, name, code, fenced", [
    ("```python\ndef f(x):\n    return x\n```", "f", "def f(x):\n    return x\n", True),
    # several blocks: the last one defining the function wins over a later usage example
    ("```python\ndef f(x):\n    return 1\n```\nUse it:\n```python\nprint(f(2))\n```", "f",
     "def f(x):\n    return 1\n", True),
    ("```py\nx = 1\n```\n```\ny = 2\n```", None, "y = 2\n", True),  # an untagged block is Python
    ("```text\nhello\n```\n    return 1\n", None, "```text\nhello\n```\n    return 1\n", False),
    ("Sure:\n```python\ndef f():\n    return", "f", "def f():\n    return", True),  # unclosed
    ("    return x + 1\n", "f", "    return x + 1\n", False),  # a HumanEval body as it is
])
def test_extract_code(response, name, code, fenced):
    assert extract_code(response, name) == (code, fenced)


def test_humaneval_completion_and_mbpp_name():
    assert humaneval_completion("def add(a, b):\n    return a + b\n", "add").startswith("\ndef add(")
    assert humaneval_completion("    return a + b\n", "add") == "    return a + b\n"
    assert mbpp_name({"test_list": ["assert set(similar_elements((3, 4), (4,))) == set((4,))"]}) == "similar_elements"
    assert mbpp_name({"test_list": ["assert math.isclose(area(2), 12.5)"]}) == "area"
    assert mbpp_name({"test_list": ["assert True"]}) is None


def test_records_become_problems():
    he = code_problem({"task_id": "H/0", "prompt": "def f():\n", "test": "def check(c): pass",
                       "entry_point": "f", "canonical_solution": "    return 1\n"}, "row 0")
    assert he.id == "H/0" and he.answer["format"] == "humaneval" and "```python\ndef f():\n```" in he.question
    mb = code_problem({"task_id": 7, "text": "Add one.", "test_list": ["assert g(1) == 2", "assert g(2) == 3"],
                       "test_setup_code": "import math"}, "row 1")
    assert mb.id == "7" and mb.answer["test_imports"] == ["import math"]
    assert "Your code should pass this test:\nassert g(1) == 2\n" in mb.question
    assert "assert g(2) == 3" not in mb.question  # the other tests stay hidden
    with pytest.raises(DataError, match="neither a HumanEval record"):
        code_problem({"question": "x", "answer": "y"}, "row 2")


def test_code_task_needs_its_paths():
    with pytest.raises(ConfigError, match="--task.train-path"):
        get_task(TaskConfig(name="code")).problems("train")
    with pytest.raises(ConfigError, match="task 'code' needs --task.train-path"):
        TrainConfig(task=TaskConfig(name="code")).validate()
    with pytest.raises(ConfigError, match="--reward-workers: the code task"):
        TrainConfig(task=TaskConfig(name="code", train_path="generated"), reward_workers=2).validate()
    with pytest.raises(ConfigError, match="code-reward"):
        TaskConfig(code_reward="most").check()


def test_generated_problems_are_seeded_and_disjoint():
    cfg = TaskConfig(name="code", num_train=50, num_test=20, seed=3)
    train, test = generated_records(cfg, "train"), generated_records(cfg, "test")
    assert len(train) == 50 and len(test) == 20 and generated_records(cfg, "train") == train
    names = lambda rs: {r["code"].split("(")[0] for r in rs}  # noqa: E731
    assert not names(train) & names(test)
    with pytest.raises(ConfigError, match="generated functions exist"):
        generated_records(TaskConfig(num_train=1000, num_test=1), "train")
    assert sum(len(f.ks) for f in FAMILIES) >= 80


# ----------------------------------------------------------------------------- rewards
@needs_sandbox
def test_generated_references_pass_and_wrong_code_fails(pool):
    task = _task(pool, train_path="generated", num_train=60, num_test=20)
    problems = task.problems("train")
    refs = [f"```python\n{p.meta['reference']}```" for p in problems]
    assert [v.reward for v in task.verify_batch(refs, problems, template=CHAT)] == [1.0] * 60
    wrong = task.verify(f"```python\n{problems[0].meta['reference'].replace('return', 'return 7 +')}```",
                        problems[0], template=CHAT)
    assert wrong.reward < 1.0 and not wrong.correct and wrong.reason.startswith("test_")


@needs_sandbox
def test_partial_credit_and_all_or_nothing(pool):
    """MBPP-style record with 4 asserts; a solution right on 3 of them: fraction 0.75, or 0."""
    record = {"task_id": 1, "prompt": "Double x.", "test_imports": [],
              "test_list": ["assert d(1) == 2", "assert d(2) == 4", "assert d(3) == 6", "assert d(0) == 1"]}
    problem = code_problem(record, "row 0")
    sol = "```python\ndef d(x):\n    return 2 * x\n```"
    v = _task(pool).verify(sol, problem, template=CHAT)
    assert (v.reward, v.correct, v.components["tests_passed"]) == (0.75, False, 0.75)
    assert v.components["sandbox_s"] > 0 and v.format_ok
    assert _task(pool, code_reward="all").verify(sol, problem, template=CHAT).reward == 0.0


@needs_data
@needs_sandbox
@pytest.mark.parametrize("style", ["fenced", "body"])
def test_humaneval_canonical_scores_one_and_empty_zero(pool, style):
    """The first 12 problems (the full 164: the slow test below): each canonical solution
    scores 1.0 through the code task, as a whole fenced function or as HumanEval's own
    completion of the prompt; an empty solution scores 0.0."""
    task = _task(pool, test_path=str(HUMANEVAL))
    problems = task.problems("test")[:12]
    good = [f"```python\n{p.answer['prompt']}{p.meta['reference']}```" if style == "fenced" else p.meta["reference"]
            for p in problems]
    assert [v.reward for v in task.verify_batch(good, problems, template=CHAT)] == [1.0] * 12
    empty = task.verify_batch([""] * 12, problems, template=CHAT)
    assert [(v.reward, v.correct) for v in empty] == [(0.0, False)] * 12


@pytest.mark.slow
@needs_data
@needs_sandbox
def test_all_humaneval_and_mbpp_references_score_one(pool):
    for path in (HUMANEVAL, MBPP):
        task = _task(pool, test_path=str(path))
        problems = task.problems("test")
        verdicts = task.verify_batch([p.meta["reference"] for p in problems], problems, template=CHAT)
        assert [p.id for p, v in zip(problems, verdicts) if v.reward != 1.0] == [], path
        empty = task.verify_batch([""] * len(problems), problems, template=CHAT)
        assert all(v.reward == 0.0 for v in empty), path


@needs_data
@needs_sandbox
def test_mbpp_references_score_one(pool):
    task = _task(pool, train_path=str(MBPP))
    problems = task.problems("train")[:10]
    refs = [f"Here it is:\n```python\n{p.meta['reference']}\n```\nIt works." for p in problems]
    assert [v.reward for v in task.verify_batch(refs, problems, template=CHAT)] == [1.0] * 10


def test_a_task_built_for_its_problems_starts_no_sandbox():
    task = get_task(TaskConfig(name="code", train_path="generated", num_train=3, num_test=1))
    assert len(task.problems("train")) == 3 and task._owned is None
    task.close()


def test_code_files_with_a_few_bad_records_load_with_a_warning(tmp_path):
    """The rule of every loader (issue 19 item 10): a few unusable records are skipped with a
    count and their rows; strict makes the first one an error; mostly bad is an error."""
    import json

    from r1zero.tasks.code import load_code_problems

    good = {"task_id": "MBPP/1", "text": "Add two numbers.", "code": "def add(a, b):\n    return a + b\n",
            "test_list": ["assert add(1, 2) == 3"]}
    bad = {"task_id": "MBPP/2", "text": "No tests."}
    path = tmp_path / "mbpp.jsonl"
    path.write_text("".join(json.dumps(dict(good, task_id=f"MBPP/{i}")) + "\n" for i in range(9))
                    + json.dumps(bad) + "\n")
    with pytest.warns(UserWarning, match=r"skipped 1 of 10 rows.*row 10"):
        assert len(load_code_problems(str(path))) == 9
    with pytest.raises(DataError, match="row 10"):
        load_code_problems(str(path), strict=True)
    path.write_text(json.dumps(good) + "\n" + (json.dumps(bad) + "\n") * 3)
    with pytest.raises(DataError, match="3 of 4 rows hold no usable problem"):
        load_code_problems(str(path))
