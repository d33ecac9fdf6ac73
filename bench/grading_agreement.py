"""Agreement with the expected verdict: r1zero ``grade(extract="auto")`` (what plain
``r1zero grade`` does) vs math-verify's defaults, on the project's own hand-written
category tables (tests/test_grading_categories.py, tests/test_grading_suites.py).

Both graders see the same (response, gold) pairs in one run. math-verify is used as its
README shows: ``verify(parse(gold), parse(response))``; a gold without any LaTeX
delimiter is wrapped in ``$...$`` first (its parser ignores undelimited LaTeX).

    .venv/bin/python bench/grading_agreement.py [--markdown]

Prints, per table and in total: cases, agreement with the expected verdict, and the share
of wrong answers accepted (false accepts / negatives).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


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


def _score(verdicts: list[bool], expected: list[bool]) -> tuple[float, float]:
    """(agreement, false-accept share of the negatives)."""
    agree = sum(v == e for v, e in zip(verdicts, expected)) / len(expected)
    negatives = [v for v, e in zip(verdicts, expected) if not e]
    fa = sum(negatives) / len(negatives) if negatives else 0.0
    return agree, fa


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = ap.parse_args()
    tables = _tables()
    _r1zero_verdict("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")  # warm-up: the sympy worker
    _mv_verdict("\\boxed{\\sqrt{8}}", "2\\sqrt{2}")
    rows, all_exp, all_r1, all_mv = [], [], [], []
    t_r1 = t_mv = 0.0
    for name, table in tables.items():
        exp = [e for _, _, e in table]
        t0 = time.perf_counter()
        r1 = [_r1zero_verdict(r, g) for r, g, _ in table]
        t1 = time.perf_counter()
        mv = [_mv_verdict(r, g) for r, g, _ in table]
        t2 = time.perf_counter()
        t_r1, t_mv = t_r1 + t1 - t0, t_mv + t2 - t1
        rows.append((name, len(table), *_score(r1, exp), *_score(mv, exp)))
        all_exp += exp
        all_r1 += r1
        all_mv += mv
    rows.append(("TOTAL", len(all_exp), *_score(all_r1, all_exp), *_score(all_mv, all_exp)))
    if args.markdown:
        print("| table | cases | r1zero agreement | r1zero wrong accepted | math-verify agreement | math-verify wrong accepted |")
        print("|---|---|---|---|---|---|")
        for name, n, a1, f1, a2, f2 in rows:
            print(f"| {name} | {n} | {a1:.3f} | {f1:.3f} | {a2:.3f} | {f2:.3f} |")
    else:
        print(f"{'table':<32} {'cases':>5}  {'r1zero agr':>10} {'r1zero FA':>9}  {'mv agr':>7} {'mv FA':>6}")
        for name, n, a1, f1, a2, f2 in rows:
            print(f"{name:<32} {n:>5}  {a1:>10.3f} {f1:>9.3f}  {a2:>7.3f} {f2:>6.3f}")
    print(f"time: r1zero {t_r1:.1f} s, math-verify {t_mv:.1f} s for {len(all_exp)} cases")
    print(f"agreement: r1zero {rows[-1][2]:.3f} vs math-verify {rows[-1][4]:.3f}")


if __name__ == "__main__":
    main()
