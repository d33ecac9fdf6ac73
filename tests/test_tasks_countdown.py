"""Tests for the Countdown task: the safe expression parser, the pilot-study rewards, the
generator (solvable, seeded, disjoint splits) and adversarial responses."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from r1zero.config import ConfigError, TaskConfig
from r1zero.tasks import Problem, get_task
from r1zero.tasks.countdown import score_equation
from r1zero.tasks.expression import ExpressionError, evaluate
from r1zero.templates import get_template

R1 = get_template("r1")


def _problem(numbers=(3, 5, 7), target=22) -> Problem:
    return Problem("p", "q", {"numbers": list(numbers), "target": target}, {})


def _verify(text: str, problem: Problem | None = None):
    task = get_task(TaskConfig(name="countdown", num_train=1, num_test=1))
    return task.verify(text, problem or _problem(), template=R1)


# ----------------------------------------------------------------------------- parser
@pytest.mark.parametrize(
    "text, value, numbers",
    [
        ("3 * 5 + 7", 22, (3, 5, 7)),
        ("3*(5+7)", 36, (3, 5, 7)),
        ("(1/49)*49", 1, (1, 49, 49)),  # floats give 0.9999999999999999
        ("7 − 5 × 3 ÷ 3", 2, (7, 5, 3, 3)),  # unicode minus, times, divide
        ("-3 + +5", 2, (3, 5)),
        ("((((4))))", 4, (4,)),
    ],
)
def test_evaluate_exact(text, value, numbers):
    result = evaluate(text)
    assert result.value == Fraction(value)
    assert result.numbers == numbers


@pytest.mark.parametrize(
    "text, message",
    [
        ("9**9**9**9", "powers"),
        ("2^10", "powers"),
        ("1234567 + 1", "longer than 6 digits"),
        ("(" * 60 + "1" + ")" * 60, "nesting"),
        ("1 + " * 60 + "1", "longer than 200"),
        ("4 / (2 - 2)", "division by zero"),
        ("__import__('os')", "not allowed"),
        ("1.5 + 2", "not allowed"),
        ("3 5", "unexpected"),
        ("(3 + 5", "ends too early"),
        ("", "empty"),
        ("1\x00+2", "not allowed"),
        ("²+1", "not allowed"),
    ],
)
def test_evaluate_rejects(text, message):
    with pytest.raises(ExpressionError, match=message):
        evaluate(text)


# ----------------------------------------------------------------------------- rewards
@pytest.mark.parametrize(
    "response, reward, reason",
    [
        ("<think>3*5=15</think> <answer>3 * 5 + 7</answer>", 1.0, "correct"),
        ("<answer> 7 + 3×5 </answer>", 1.0, "correct"),
        ("I think 3*5+7", 0.0, "no_answer"),
        ("<answer>3 * 5 + 7", 0.0, "no_answer"),  # unclosed tag
        ("<answer>3 * 5 + 7 = 22</answer>", 0.1, "format_error"),
        ("<answer>3 * 5 * 7</answer>", 0.1, "wrong_value"),
        ("<answer>3 * 5 + 7 + 0</answer>", 0.1, "wrong_numbers"),
        ("<answer>15 + 7</answer>", 0.1, "wrong_numbers"),
        ("<answer>3 * 5 + 7 + 7 - 7</answer>", 0.1, "wrong_numbers"),
        ("<answer>1</answer> then <answer>3*5+7</answer>", 1.0, "correct"),  # last wins
    ],
)
def test_pilot_study_rewards(response, reward, reason):
    verdict = _verify(response)
    assert (verdict.reward, verdict.reason) == (reward, reason)
    assert verdict.correct is (reason == "correct")
    assert sum(verdict.components.values()) == pytest.approx(reward)
    assert verdict.format_ok is (reason != "no_answer")


def test_fractional_target_path_is_exact():
    # Non-integer intermediates: 7 - 3/5 = 32/5, times 5 = 32; thirds summing to 1.
    assert score_equation("<answer>(7 - 3/5) * 5</answer>", [3, 5, 5, 7], 32).reward == 1.0
    assert score_equation("<answer>(1/3 + 1/3 + 1/3) * 9</answer>", [1, 3, 1, 3, 1, 3, 9],
                          9).reward == 1.0


@pytest.mark.parametrize(
    "response",
    [
        "",
        "\x00" * 1000,
        "x" * 2_000_000,
        "<answer>" + "9**9**9**9" + "</answer>",
        "<answer>" + "(" * 100_000 + "</answer>",
        "<answer>" + "9" * 1_000_000 + "</answer>",
        "<answer>" * 100_000 + "</answer>" * 3,
        "<answer>1" + "*999999" * 28 + "</answer>",
    ],
)
def test_adversarial_responses_return_quickly(response):
    start = time.perf_counter()
    verdict = _verify(response)
    assert time.perf_counter() - start < 1.0
    assert verdict.reward in (0.0, 0.1) and not verdict.correct


def test_non_string_response_is_bad_input():
    assert _verify(None).reason == "bad_input"  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- generator
def test_generator_is_seeded_solvable_and_disjoint():
    cfg = TaskConfig(name="countdown", num_train=200, num_test=50, seed=3, num_numbers=(3, 4))
    task = get_task(cfg)
    train, test = task.problems("train"), task.problems("test")
    assert (len(train), len(test)) == (200, 50)
    key = lambda p: (tuple(sorted(p.answer["numbers"])), p.answer["target"])  # noqa: E731
    assert not {key(p) for p in train} & {key(p) for p in test}
    for p in train + test:
        assert len(p.answer["numbers"]) in (3, 4)
        assert 1 <= p.answer["target"] <= 100
        witness = f"<answer>{p.meta['solution']}</answer>"
        assert task.verify(witness, p, template=R1).reward == 1.0
        assert str(p.answer["target"]) in p.question and "<answer>" in p.question
    again = get_task(cfg)
    assert [p.question for p in again.problems("test")] == [p.question for p in test]
    other = get_task(TaskConfig(name="countdown", num_train=200, num_test=50, seed=4))
    assert [p.question for p in other.problems("test")] != [p.question for p in test]


def test_test_split_does_not_depend_on_train_size():
    small = get_task(TaskConfig(name="countdown", num_train=5, num_test=20))
    large = get_task(TaskConfig(name="countdown", num_train=300, num_test=20))
    assert [p.answer for p in small.problems("test")] == [p.answer for p in large.problems("test")]


def test_config_validation():
    with pytest.raises(ConfigError, match="num_numbers"):
        get_task(TaskConfig(name="countdown", num_numbers=(1,)))
    with pytest.raises(ValueError, match="split"):
        get_task(TaskConfig(name="countdown", num_train=1, num_test=1)).problems("dev")
