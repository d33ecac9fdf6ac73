"""Tests for Knights and Knaves: statement semantics, unique solutions, the verifier's
parsing of role claims, and adversarial responses."""

from __future__ import annotations

import time

import pytest

from r1zero.config import ConfigError, TaskConfig
from r1zero.tasks import Problem, get_task
from r1zero.tasks.knights_knaves import NAMES, Atom, Compound, solutions
from r1zero.templates import get_template

R1, NO = get_template("r1"), get_template("no")


def _task(**kw):
    kw = {"name": "knights_knaves", "num_train": 30, "num_test": 10, **kw}
    return get_task(TaskConfig(**kw))


def _problem() -> Problem:
    return Problem("p", "q", ["knight", "knave", "knight"], {"names": ["Zoey", "Oliver", "Ethan"]})


# ----------------------------------------------------------------------------- logic
def test_statement_semantics_by_hand():
    roles = (True, False)  # person 0 knight, person 1 knave
    assert Atom(1, False).holds(roles) and not Atom(1, True).holds(roles)
    a, b = Atom(0, True), Atom(1, True)  # True, False
    assert [Compound(op, a, b).holds(roles) for op in ("and", "or", "if", "iff")] == [
        False, True, False, False
    ]
    assert Compound("if", b, a).holds(roles)  # false premise


def test_classic_puzzle_has_one_solution():
    # A says "B is a knave"; B says "A and I are both knaves" -> A knight, B knave.
    statements = [Atom(1, False), Compound("and", Atom(0, False), Atom(1, False))]
    assert solutions(statements) == [(True, False)]
    names = ["Zoey", "Oliver"]
    assert statements[1].render(names, 1) == "Zoey is a knave and I am a knave"


@pytest.mark.parametrize("n", range(2, 9))
def test_generated_puzzles_are_unique_and_consistent(n):
    task = _task(num_people=(n,), num_train=3, num_test=3, seed=n)
    for p in task.problems("train") + task.problems("test"):
        names = p.meta["names"]
        assert len(names) == len(set(names)) == n and set(names) <= set(NAMES)
        assert all(f"{name} says:" in p.question for name in names)
        assert set(p.answer) <= {"knight", "knave"} and len(p.answer) == n
        gold = " ".join(f"{name} is a {role}." for name, role in zip(names, p.answer))
        assert task.verify(f"<answer>{gold}</answer>", p, template=R1).reward == 1.0


def test_generator_is_seeded_and_disjoint():
    a, b = _task(seed=1), _task(seed=1)
    assert [p.question for p in a.problems("test")] == [p.question for p in b.problems("test")]
    assert not {p.question for p in a.problems("train")} & {p.question for p in a.problems("test")}
    assert {p.meta["num_people"] for p in a.problems("train")} <= {2, 3}
    assert [p.question for p in _task(seed=2).problems("test")] != [
        p.question for p in a.problems("test")
    ]


def test_config_validation():
    with pytest.raises(ConfigError, match="num_people"):
        _task(num_people=(9,))
    with pytest.raises(ConfigError, match="num_people"):
        _task(num_people=(1, 3))


# ----------------------------------------------------------------------------- verifier
@pytest.mark.parametrize(
    "response, template, reward, reason",
    [
        ("<answer>(1) Zoey is a knight (2) Oliver is a knave (3) Ethan is a knight</answer>",
         R1, 1.0, "correct"),
        ("<answer>**Zoey**: Knight\n**Oliver**: knave\n**Ethan**: KNIGHT</answer>", R1, 1.0,
         "correct"),
        ("<answer>Zoey is a knight, Oliver is not a knight, Ethan is a knight.</answer>", R1,
         1.0, "correct"),
        ("<answer>Zoey is a knight, Oliver is a knight, Ethan is a knight</answer>", R1, 0.0,
         "wrong_value"),
        ("<answer>Zoey is a knight, Oliver is a knave</answer>", R1, 0.0, "format_error"),
        ("<answer>all of them</answer>", R1, 0.0, "format_error"),
        ("Zoey is a knight, Oliver is a knave, Ethan is a knight.", R1, 0.0, "no_answer"),
        # Without the r1 template the tail of the response is read; the last claim wins.
        ("Maybe Zoey is a knave... no: Zoey is a knight, Oliver is a knave, Ethan is a "
         "knight.", NO, 1.0, "correct"),
        ("I cannot tell.", NO, 0.0, "no_answer"),
        ("Zoeyy is a knight, Oliver is a knave, Ethan is a knight", NO, 0.0, "format_error"),
    ],
)
def test_verifier(response, template, reward, reason):
    task = _task(num_train=1, num_test=1)
    verdict = task.verify(response, _problem(), template=template)
    assert (verdict.reward, verdict.reason) == (reward, reason)
    assert verdict.correct is (reward == 1.0)


@pytest.mark.parametrize(
    "response",
    ["", "\x00" * 100, "Zoey is a " * 200_000, "<answer>" + "Zoey " * 300_000 + "</answer>",
     "<answer>" * 50_000, "9**9**9**9", "(" * 100_000],
)
def test_adversarial_responses_return_quickly(response):
    task = _task(num_train=1, num_test=1)
    for template in (R1, NO):
        start = time.perf_counter()
        verdict = task.verify(response, _problem(), template=template)
        assert time.perf_counter() - start < 1.0
        assert verdict.reward == 0.0
