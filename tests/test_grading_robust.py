"""Robustness tests: adversarial inputs return fast with a verdict, the hard time limit
works off the main thread, grade_file survives bad lines, and MATH-500 golds grade
correct against themselves."""

from __future__ import annotations

import json
import threading
import time

import pytest

from r1zero.grading import Verdict, answers_equal, grade, grade_file
from tests.helpers import DATA as SHARED_DATA

DATA = SHARED_DATA / "jsonl"

ADVERSARIAL = [
    "\\boxed{" + "\\frac{" * 10_000 + "1" + "}{2}" * 10_000 + "}",  # endless nesting
    "\\boxed{" + "{" * 10_000,  # unbalanced
    "\\boxed{" + "}" * 10_000,
    "\\boxed{9**9**9**9}",
    "\\boxed{10^{10^{10^{10}}}}",
    "\\boxed{9^{9^{9^{9}}}}",
    "\\boxed{(10^{10^{10}})!}",
    "\\boxed{1e999999999}",
    "\\boxed{10^{99999999}}",
    "x" * 2_000_000 + "\\boxed{5}",  # megabyte-long response
    "\\boxed{5}" * 100_000,
    "\\boxed{" + "1+" * 300 + "1}",
    "\\boxed{\x00\x00}5\x00",
    "\\boxed{−5×3}",
    "\\boxed{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}",
    "\\boxed{\\begin{pmatrix}" + "1&" * 500 + "1\\end{pmatrix}}",
    "\\boxed{" + ",".join(["1"] * 900) + "}",
    "\\boxed{\\frac{1}{0}}",
    "\\boxed{0^0}",
    "\\boxed{\\infty - \\infty}",
    "<think>" * 10_000,
    "\ud800\\boxed{5}",  # lone surrogate
]


@pytest.mark.parametrize("response", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
@pytest.mark.parametrize("gold", ["5", "x^2+1"])
def test_adversarial_returns_fast(response, gold):
    t0 = time.monotonic()
    v = grade(response, gold, timeout_s=1.0)
    elapsed = time.monotonic() - t0
    assert isinstance(v, Verdict)
    assert v.reason in {"correct", "wrong_answer", "no_answer", "timeout", "too_long"}
    # The deadline covers the comparison; allow a margin for a killed worker's cleanup.
    assert elapsed < 1.8, elapsed


def test_adversarial_r1_format():
    v = grade("</think>" * 100_000 + " <answer>" * 1000, "5", extract="r1", timeout_s=1.0)
    assert v.reason == "format_error"


def test_timeout_reason_and_recovery():
    v = grade("\\boxed{9^{9^{9^{9}}}+x}", "x+1", timeout_s=0.3)
    assert not v.correct and v.reason in {"timeout", "wrong_answer"}
    # The pool recovers: the next symbolic comparison still works.
    assert answers_equal("\\sqrt{8}", "2\\sqrt{2}", timeout_s=30)


def test_grade_in_threads_with_timeout():
    results: dict[int, Verdict] = {}

    def work(i: int) -> None:
        results[i] = grade("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\sqrt{3}/2", timeout_s=30)
        results[100 + i] = grade("\\boxed{10^{10^{10^{10}}}+1}", "2", timeout_s=0.5)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(results[i].correct for i in range(3))
    assert all(not results[100 + i].correct for i in range(3))


def test_grade_file_with_bad_lines(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    lines = [
        json.dumps({"response": "\\boxed{5}", "gold": "5", "id": "a"}),
        "this is not json",
        json.dumps([1, 2]),
        json.dumps({"response": "\\boxed{4}", "gold": "5"}),
        "",
        json.dumps({"response": 3, "gold": "5"}),
        json.dumps({"response": "<think>x</think> <answer>7</answer>", "gold": ["7"], "template": "r1"}),
        json.dumps({"response": "\\boxed{7}", "gold": "7", "template": "r1"}),
        json.dumps({"gold": "1"}),
    ]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "sub" / "out.jsonl"
    summary = grade_file(src, out)
    assert summary["bad_lines"] == [2, 3, 6, 9]
    assert summary["count"] == 8
    assert summary["correct"] == 2
    assert summary["accuracy"] == pytest.approx(2 / 8)
    assert summary["reasons"] == {"correct": 2, "bad_input": 4, "wrong_answer": 1, "format_error": 1}
    err = capsys.readouterr().err
    assert "line 2" in err and "line 9" in err
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(recs) == 8
    assert recs[0] == {"response": "\\boxed{5}", "gold": "5", "id": "a", "correct": True, "extracted": "5", "reason": "correct"}
    assert recs[1]["reason"] == "bad_input" and recs[1]["correct"] is False


def _math500_answers() -> list[str]:
    path = DATA / "math500.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not available")
    return [json.loads(line)["answer"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_math500_gold_matches_itself():
    answers = _math500_answers()
    assert len(answers) == 500
    wrong = [a for a in answers if not grade("\\boxed{" + a + "}", a).correct]
    assert wrong == []


def test_math500_gold_rejects_a_neighbour():
    # Every integer gold must reject gold+1: a cheap guard against accidental leniency.
    ints = [a for a in _math500_answers() if a.strip().lstrip("-").isdigit()]
    assert len(ints) > 200
    accepted = [a for a in ints if grade("\\boxed{" + str(int(a) + 1) + "}", a).correct]
    assert accepted == []
