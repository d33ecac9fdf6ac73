"""Agreement of graded records with the expected verdicts they carry (``r1zero grade
--report``): agreement, false-accept and false-reject rates, overall and per group, and
the disagreeing records written out — the tool to compare graders on one's own data.

Rates: agreement = agreeing / graded; false accept = accepted among expected-false;
false reject = rejected among expected-true (the denominators are printed beside them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

_TRUE = {"true", "yes", "correct", "1"}
_FALSE = {"false", "no", "incorrect", "wrong", "0"}
MISSING_GROUP = "(missing)"


class ReportError(ValueError):
    """The records cannot be reported on (no expected verdicts, a bad group pattern)."""


@dataclass(frozen=True)
class Tally:
    """Counts of one group: records, agreements, and the two kinds of error."""

    n: int = 0
    agree: int = 0
    positives: int = 0
    negatives: int = 0
    false_accepts: int = 0
    false_rejects: int = 0

    def add(self, correct: bool, expected: bool) -> Tally:
        """This tally with one more (verdict, expected verdict) pair."""
        return replace(
            self,
            n=self.n + 1,
            agree=self.agree + (correct == expected),
            positives=self.positives + expected,
            negatives=self.negatives + (not expected),
            false_accepts=self.false_accepts + (correct and not expected),
            false_rejects=self.false_rejects + (expected and not correct),
        )

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(self.counts(), other.counts())))

    def counts(self) -> tuple[int, ...]:
        return (self.n, self.agree, self.positives, self.negatives, self.false_accepts, self.false_rejects)

    @property
    def agreement(self) -> float:
        return self.agree / self.n if self.n else 0.0

    @property
    def false_accept_rate(self) -> float:
        return self.false_accepts / self.negatives if self.negatives else 0.0

    @property
    def false_reject_rate(self) -> float:
        return self.false_rejects / self.positives if self.positives else 0.0


@dataclass
class AgreementReport:
    """Per-group tallies; ``overall`` leaves out the ``excluded`` groups."""

    groups: dict[str, Tally] = field(default_factory=dict)
    excluded: tuple[str, ...] = ()
    unlabelled: int = 0  # records without a usable expected verdict (not counted)

    @property
    def overall(self) -> Tally:
        return sum((t for g, t in self.groups.items() if g not in self.excluded), Tally())


def expected_verdict(value) -> bool | None:
    """A record's expected verdict: a bool, 0/1, or "true"/"false"-like text; else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        low = value.strip().lower()
        return True if low in _TRUE else False if low in _FALSE else None
    return None


def group_of(record: dict, group_by: str | None, pattern: re.Pattern | None) -> str:
    """The record's group: the value of ``group_by`` (``"all"`` without one), cut by
    ``pattern`` to its first match or first capture group ("omni-llama-040" with
    ``^[^-]+`` -> "omni")."""
    if group_by is None:
        return "all"
    if group_by not in record:
        return MISSING_GROUP
    value = str(record[group_by])
    if pattern is None:
        return value
    m = pattern.search(value)
    if m is None:
        return value
    return m.group(1) if pattern.groups else m.group(0)


def compile_pattern(pattern: str | None) -> re.Pattern | None:
    """The group pattern compiled, or ReportError naming the problem."""
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ReportError(f"--group-pattern {pattern!r} is not a valid regex ({e})") from None


def agreement_report(
    records, *, expected_field: str = "expected", group_by: str | None = None,
    group_pattern: str | None = None, exclude: tuple[str, ...] = (),
) -> tuple[AgreementReport, list[dict]]:
    """Tally graded ``records`` (each with ``correct`` and ``expected_field``) and return
    the report with the disagreeing records. Raises ReportError when no record carries
    an expected verdict."""
    pattern = compile_pattern(group_pattern)
    report = AgreementReport(excluded=tuple(exclude))
    disagreements = []
    for rec in records:
        expected = expected_verdict(rec.get(expected_field))
        if expected is None:
            report.unlabelled += 1
            continue
        correct = bool(rec.get("correct"))
        key = group_of(rec, group_by, pattern)
        report.groups[key] = report.groups.get(key, Tally()).add(correct, expected)
        if correct != expected:
            disagreements.append(rec)
    if not report.groups:
        raise ReportError(
            f"--report: no record has an expected verdict in field {expected_field!r} "
            "(true/false); name the field with --expected-field"
        )
    return report, disagreements


def _row(name: str, t: Tally, width: int) -> str:
    fa = f"{t.false_accept_rate:.3f} ({t.false_accepts}/{t.negatives})"
    fr = f"{t.false_reject_rate:.3f} ({t.false_rejects}/{t.positives})"
    return f"{name:<{width}} {t.n:>6} {t.positives:>6} {t.negatives:>6}  {t.agreement:>6.3f}  {fa:<16} {fr}"


def format_report(report: AgreementReport, expected_field: str = "expected") -> str:
    """The report as a fixed-width table: overall first, then each group."""
    width = max([7, *map(len, report.groups)])
    head = f"{'group':<{width}} {'n':>6} {'pos':>6} {'neg':>6}  {'agree':>6}  {'false accept':<16} false reject"
    overall = report.overall
    title = f"agreement with {expected_field!r}: {overall.n} records"
    if report.excluded:
        title += f" (groups left out of 'overall': {', '.join(report.excluded)})"
    if report.unlabelled:
        title += f"; {report.unlabelled} without an expected verdict, not counted"
    lines = [title, head, _row("overall", overall, width)]
    if len(report.groups) > 1 or report.excluded:
        lines += [_row(g, t, width) for g, t in sorted(report.groups.items())]
    return "\n".join(lines)


def report_file(
    graded_path, *, expected_field: str = "expected", group_by: str | None = None,
    group_pattern: str | None = None, exclude: tuple[str, ...] = (), disagreements_path=None,
) -> tuple[AgreementReport, Path]:
    """Report on a graded JSONL file (``grade_file``'s output) and write its disagreeing
    records to ``disagreements_path`` (default: beside it, ``.disagreements.jsonl``)."""
    graded_path = Path(graded_path)
    with open(graded_path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    report, disagreements = agreement_report(
        records, expected_field=expected_field, group_by=group_by,
        group_pattern=group_pattern, exclude=exclude,
    )
    out = Path(disagreements_path) if disagreements_path else graded_path.with_suffix(".disagreements.jsonl")
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for rec in disagreements:
            f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
    return report, out
