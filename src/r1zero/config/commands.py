"""The configs of the small commands (`r1zero grade`, `r1zero plot`, `r1zero export`);
`r1zero eval` and `r1zero analyze` keep theirs beside their code (evaluation.py, analysis/)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


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
    """Where the answer is read: auto (box, answer tags, "the answer is" phrases in several
    languages, a short response whole, the last math span, the last number), boxed (the
    paper's training reward) or r1 (answer tags). Records with "template": "r1" always use
    r1."""


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
