"""Agreement with the expected verdict: r1zero ``grade(extract="auto")`` (what plain
``r1zero grade`` does) vs math-verify's defaults, side by side in one run, on

* the project's own hand-written category tables (tests/test_grading_categories.py,
  tests/test_grading_suites.py: they measure coverage of the categories, not a held-out
  score), and
* the two measurement sets in ``../shared/eval`` when that folder exists: ``grader_real``
  (real model outputs with independent labels, per source; ``gsm8k``'s labels were made by
  a rule grader, so it is reported on its own line and left out of the overall line) and
  ``grader_suites`` (peers' grader test suites, per source repository).

math-verify is used as its README shows: ``verify(parse(gold), parse(response))``; a gold
without any LaTeX delimiter is wrapped in ``$...$`` first (its parser ignores undelimited
LaTeX). The rates come from :mod:`r1zero.grading.report`, as ``r1zero grade --report``
prints them: agreement, false accept (accepted among expected-false), false reject
(rejected among expected-true).

    .venv/bin/python bench/grading_agreement.py [--markdown] [--eval-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
EVAL_DIR = ROOT.parent / "shared" / "eval"
# (set, group field, group pattern, groups left out of the overall line)
EVAL_SETS = [
    ("grader_real", "id", r"^[^-]+", ("gsm8k",)),
    ("grader_suites", "source", r"^[^:]+", ()),
]


def _tables() -> dict[str, list[tuple[str, str, bool]]]:
    """All auto-mode tables of the two test files, prefixed by file."""
    from tests import test_grading_categories as cat
    from tests import test_grading_suites as sui

    out = {f"categories/{k}": v for k, v in cat.AUTO_TABLES.items()}
    out.update({f"suites/{k}": v for k, v in sui.AUTO_TABLES.items()})
    return out


def _mv_verdict(response: str, gold) -> bool:
    """math-verify with its defaults; any exception or time-out is a reject."""
    from math_verify import parse, verify

    golds = gold if isinstance(gold, list) else [gold]
    try:
        pred = parse(response)
        for g in golds:
            g_text = g if any(d in g for d in ("$", "\\(", "\\[", "\\boxed")) else f"${g}$"
            if verify(parse(g_text), pred):
                return True
    except Exception:  # noqa: BLE001  (a crash inside the peer is its reject)
        return False
    return False


def _r1zero_verdict(response: str, gold) -> bool:
    from r1zero.grading import grade

    return grade(response, gold, extract="auto").correct


def _graded(records: list[dict], verdict) -> tuple[list[dict], float]:
    """``records`` with ``correct`` set by ``verdict(response, gold)``, and the seconds."""
    t0 = time.perf_counter()
    out = [{**r, "correct": verdict(r["response"], r["gold"])} for r in records]
    return out, time.perf_counter() - t0


def _rows_for(name: str, records: list[dict], group_by=None, pattern=None, exclude=()):
    """Report rows ``(label, n, r1zero Tally, math-verify Tally)`` and both timings."""
    from r1zero.grading.report import agreement_report

    ours, t_ours = _graded(records, _r1zero_verdict)
    theirs, t_theirs = _graded(records, _mv_verdict)
    kw = {"group_by": group_by, "group_pattern": pattern, "exclude": exclude}
    r1, _ = agreement_report(ours, **kw)
    mv, _ = agreement_report(theirs, **kw)
    rows = [(f"{name} overall", r1.overall, mv.overall)]
    if group_by:
        rows += [(f"{name}/{g}", r1.groups[g], mv.groups[g]) for g in sorted(r1.groups)]
    return rows, t_ours, t_theirs


def _table_rows():
    """One row per project table and a total, from the (response, gold, expected) tables."""
    from r1zero.grading.report import Tally

    rows, t1, t2 = [], 0.0, 0.0
    for name, table in _tables().items():
        records = [{"response": r, "gold": g, "expected": e} for r, g, e in table]
        got, a, b = _rows_for(name, records)
        rows += [(name, got[0][1], got[0][2])]
        t1, t2 = t1 + a, t2 + b
    total = ("TOTAL", sum((r[1] for r in rows), Tally()), sum((r[2] for r in rows), Tally()))
    return [*rows, total], t1, t2, total[1].n


def _print(rows, markdown: bool) -> None:
    if markdown:
        print("| set | n | r1zero agree | r1zero FA | r1zero FR | math-verify agree | math-verify FA | math-verify FR |")
        print("|---|---|---|---|---|---|---|---|")
        for label, a, b in rows:
            print(f"| {label} | {a.n} | {a.agreement:.3f} | {a.false_accept_rate:.3f} | {a.false_reject_rate:.3f} "
                  f"| {b.agreement:.3f} | {b.false_accept_rate:.3f} | {b.false_reject_rate:.3f} |")
        return
    width = max(len(r[0]) for r in rows)
    print(f"{'set':<{width}} {'n':>5}  {'r1zero agr':>10} {'FA':>6} {'FR':>6}   {'mv agr':>7} {'FA':>6} {'FR':>6}")
    for label, a, b in rows:
        print(f"{label:<{width}} {a.n:>5}  {a.agreement:>10.3f} {a.false_accept_rate:>6.3f} {a.false_reject_rate:>6.3f}"
              f"   {b.agreement:>7.3f} {b.false_accept_rate:>6.3f} {b.false_reject_rate:>6.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print Markdown tables")
    ap.add_argument("--eval-dir", type=Path, default=EVAL_DIR, help="folder holding grader_real/ and grader_suites/")
    args = ap.parse_args()
    _r1zero_verdict("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")  # warm-up: the sympy worker
    _mv_verdict("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")
    rows, t1, t2, n = _table_rows()
    print("project tables (written alongside the grader: coverage, not a held-out score)")
    _print(rows, args.markdown)
    print(f"time: r1zero {t1:.1f} s, math-verify {t2:.1f} s for {n} cases")
    for name, group_by, pattern, exclude in EVAL_SETS:
        path = args.eval_dir / name / "cases.jsonl"
        if not path.is_file():
            print(f"\n{path} not present: skipped")
            continue
        records = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]
        rows, t1, t2 = _rows_for(name, records, group_by, pattern, exclude)
        left_out = f"; {', '.join(exclude)} left out of 'overall'" if exclude else ""
        print(f"\n{path} (by {group_by} ~ {pattern}{left_out})")
        _print(rows, args.markdown)
        print(f"time: r1zero {t1:.1f} s, math-verify {t2:.1f} s for {len(records)} cases")


if __name__ == "__main__":
    main()
