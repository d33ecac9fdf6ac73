"""The configs of the small commands (`r1zero grade`, `r1zero plot`, `r1zero export`);
`r1zero eval` and `r1zero analyze` keep theirs beside their code (evaluation.py, analysis/)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from r1zero.config.sections import ConfigError


# ----------------------------------------------------------------------------- small commands
@dataclass
class GradeConfig:
    """`r1zero grade`: grade model responses against gold answers (JSONL in, JSONL out)."""

    input: str
    """Input JSONL: one object per line with `response` and `gold` (optional `template`:
    r1 means the answer must sit in <answer> tags)."""
    output: str
    """Output JSONL: each input record plus `correct`, `extracted` and `reason`."""
    extract: Literal["boxed", "r1", "auto"] = "auto"
    """Where the answer is read: auto (the answer the response commits to: the last box,
    answer tags, "# Answer" / "####" / "A:" lines, "the answer is" phrases in several
    languages; else a short response whole, the last math span, the last number), boxed
    (the paper's training reward) or r1 (answer tags). Records with "template": "r1"
    always use r1."""
    report: bool = False
    """Compare each verdict with the expected verdict the records carry (--expected-field):
    print agreement, false-accept and false-reject rates, overall and per --group-by
    value, and write the disagreeing records to --disagreements."""
    expected_field: str = "expected"
    """Record field holding the expected verdict (true/false) for --report."""
    group_by: str | None = None
    """Record field to break --report down by (e.g. source)."""
    group_pattern: str | None = None
    """Regex cutting the --group-by value to a group: its first match, or first capture
    group (--group-by id --group-pattern '^[^-]+' groups ids by their prefix)."""
    group_exclude: tuple[str, ...] = ()
    """Groups reported on their own line but left out of the overall line (e.g. a source
    whose labels a rule grader produced)."""
    disagreements: str | None = None
    """Where --report writes the records whose verdict disagrees with the expected one
    (default: OUTPUT with the suffix .disagreements.jsonl)."""

    def validate(self) -> None:
        """Pure checks of the report options; raises ConfigError."""
        if (self.group_pattern or self.group_exclude) and not self.group_by:
            raise ConfigError("--group-pattern and --group-exclude need --group-by FIELD")
        if (self.group_by or self.disagreements) and not self.report:
            raise ConfigError("--group-by and --disagreements apply to --report; add --report")
        if self.group_pattern is not None:
            try:
                re.compile(self.group_pattern)
            except re.error as e:
                raise ConfigError(f"--group-pattern {self.group_pattern!r} is not a valid regex ({e})") from None


@dataclass
class PlotConfig:
    """`r1zero plot RUN_DIR [RUN_DIR ...]`: PNG training curves from each run's
    metrics.jsonl, and with several runs one overlay (accuracy and the length of correct and
    incorrect responses, a line per run)."""

    run_dirs: tuple[str, ...]
    """The run directories (each holds metrics.jsonl)."""
    out_dir: str | None = None
    """Where to write the PNGs (default RUN_DIR/plots; the overlay goes to OUT_DIR, or to
    the first run's plots/ as compare.png)."""
    labels: tuple[str, ...] = ()
    """Legend names of the runs in the overlay (default: the directory names)."""


@dataclass
class ExportConfig:
    """`r1zero export RUN_DIR --out DIR`: a run's latest checkpoint as a plain transformers
    model directory (a LoRA adapter merged into its base), loadable by transformers, vLLM
    and `r1zero eval --model DIR`."""

    run_dir: str
    """A run directory (its latest checkpoint) or one checkpoint directory."""
    out: str
    """The model directory to write."""
