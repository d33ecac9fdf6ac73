"""``r1zero grade --report``: agreement with the expected verdicts records carry, false
accepts and false rejects overall and per group (a field, or a pattern cut from it), the
disagreements written out; bad options and unlabelled input fail with one clear line."""

from __future__ import annotations

import json

import pytest

from r1zero.cli import main
from r1zero.grading.report import (
    ReportError,
    Tally,
    agreement_report,
    expected_verdict,
    format_report,
    group_of,
)

# Six graded records: (correct, expected, source, id).
_GRADED = [
    (True, True, "a", "omni-1"),    # agree
    (True, False, "a", "omni-2"),   # false accept
    (False, True, "b", "prm-1"),    # false reject
    (False, False, "b", "prm-2"),   # agree
    (True, True, "b", "prm-3"),     # agree
    (False, True, "c", "gsm-1"),    # false reject
]
_RECORDS = [{"correct": c, "expected": e, "source": s, "id": i} for c, e, s, i in _GRADED]


def test_tallies_by_hand():
    report, disagreements = agreement_report(_RECORDS, group_by="source")
    # overall: 3 agree of 6; negatives = 2 (omni-2, prm-2), one accepted -> FA 1/2;
    # positives = 4 (omni-1, prm-1, prm-3, gsm-1), two rejected -> FR 2/4.
    t = report.overall
    assert (t.n, t.agree, t.negatives, t.false_accepts, t.positives, t.false_rejects) == (6, 3, 2, 1, 4, 2)
    assert (t.agreement, t.false_accept_rate, t.false_reject_rate) == (0.5, 0.5, 0.5)
    # group b: prm-1 (FR), prm-2 (agree), prm-3 (agree) -> 2/3 agree, FA 0/1, FR 1/2
    b = report.groups["b"]
    assert (b.n, b.agree, b.false_accepts, b.false_rejects) == (3, 2, 0, 1)
    assert [r["id"] for r in disagreements] == ["omni-2", "prm-1", "gsm-1"]


def test_excluded_groups_leave_the_overall_line_only():
    report, _ = agreement_report(_RECORDS, group_by="source", exclude=("c",))
    # without gsm-1 (a false reject): 5 records, 3 agree, FR 1/3
    assert (report.overall.n, report.overall.agree, report.overall.false_rejects) == (5, 3, 1)
    assert "c" in report.groups and "groups left out" in format_report(report)


def test_group_pattern_derives_the_key():
    report, _ = agreement_report(_RECORDS, group_by="id", group_pattern=r"^[^-]+")
    assert sorted(report.groups) == ["gsm", "omni", "prm"]
    report, _ = agreement_report(_RECORDS, group_by="id", group_pattern=r"-(\d)$")  # capture group
    assert sorted(report.groups) == ["1", "2", "3"]


def test_group_of_edge_cases():
    assert group_of({"x": 1}, None, None) == "all"
    assert group_of({"x": 1}, "source", None) == "(missing)"


@pytest.mark.parametrize(
    "value,verdict",
    [(True, True), (False, False), (1, True), (0, False), ("yes", True), ("FALSE", False),
     ("maybe", None), (None, None), (2, None), (0.5, None)],
)
def test_expected_verdict_values(value, verdict):
    assert expected_verdict(value) is verdict


def test_unlabelled_records_are_counted_not_scored():
    report, _ = agreement_report([*_RECORDS, {"correct": True, "expected": "n/a"}])
    assert report.unlabelled == 1 and report.overall.n == 6


def test_no_expected_field_is_a_clear_error():
    with pytest.raises(ReportError, match="--expected-field"):
        agreement_report([{"correct": True, "label": True}])


def test_tally_addition():
    a = Tally().add(True, True).add(True, False)
    b = Tally().add(False, True)
    assert (a + b).counts() == (3, 1, 2, 1, 1, 1)


def _run(args, capsys):
    with pytest.raises(SystemExit) as e:
        main(args)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def _write(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


def test_grade_report_command(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    _write(src, [
        {"id": "p-1", "response": "So the answer is 7.", "gold": "7", "expected": True, "source": "x"},
        {"id": "p-2", "response": "So the answer is 8.", "gold": "7", "expected": True, "source": "x"},
        {"id": "q-1", "response": "\\boxed{2(3)}", "gold": "5", "expected": False, "source": "y"},
        {"id": "q-2", "response": "# Answer\n\n12", "gold": "12", "expected": True, "source": "y"},
    ])
    out = tmp_path / "out.jsonl"
    code, stdout, _ = _run(["grade", "--input", str(src), "--output", str(out), "--report",
                            "--group-by", "id", "--group-pattern", "^[a-z]+"], capsys)
    assert code == 0
    # 3 of 4 agree: p-2 is a false reject (8 for 7); q-1 (2 * 3 = 6, not 5) is rejected.
    assert "0.750" in stdout and "0.000 (0/1)" in stdout and "0.333 (1/3)" in stdout
    lines = {ln.split()[0]: ln for ln in stdout.splitlines() if ln.split() and ln.split()[0] in ("p", "q")}
    assert "0.500" in lines["p"] and "1.000" in lines["q"]
    bad = [json.loads(x) for x in (tmp_path / "out.disagreements.jsonl").read_text().splitlines()]
    assert [r["id"] for r in bad] == ["p-2"] and bad[0]["extracted"] == "8"


def test_grade_report_custom_field_and_path(tmp_path, capsys):
    src = tmp_path / "in.jsonl"
    _write(src, [{"response": "\\boxed{3}", "gold": "3", "label": "false"}])
    dis = tmp_path / "sub" / "dis.jsonl"
    code, stdout, _ = _run(["grade", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), "--report",
                            "--expected-field", "label", "--disagreements", str(dis)], capsys)
    assert code == 0 and "1.000 (1/1)" in stdout  # the one negative was accepted
    assert len(dis.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--report"], "no record has an expected verdict"),
        (["--report", "--group-pattern", "x"], "need --group-by"),
        (["--group-by", "source"], "add --report"),
        (["--report", "--group-by", "id", "--group-pattern", "("], "not a valid regex"),
    ],
)
def test_grade_report_user_errors(tmp_path, capsys, extra, message):
    src = tmp_path / "in.jsonl"
    _write(src, [{"id": "a", "response": "\\boxed{3}", "gold": "3"}])
    code, _, err = _run(["grade", "--input", str(src), "--output", str(tmp_path / "o.jsonl"), *extra], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
