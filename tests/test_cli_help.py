"""`r1zero train --help` a person can read: every option, --preset and --algorithm with a
line per choice (from the data), the flags a new run needs first, whole paragraphs."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys

import pytest
import tyro

from r1zero.cli import main
from r1zero.config import PRESETS, TrainConfig, config_diff, preset_summary, resolve_algorithm
from r1zero.config.help import GROUPS, START_HERE, paragraphs, registry
from r1zero.core.algorithms import ALGORITHMS, SUMMARIES


@pytest.fixture(scope="module")
def train_help():
    """`r1zero train --help` as an 80-column terminal shows it."""
    env = {**os.environ, "COLUMNS": "80"}
    out = subprocess.run([sys.executable, "-m", "r1zero", "train", "--help"], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _flags(cls, prefix: str = "") -> list[str]:
    """Every flag a config dataclass makes (nested sections with their prefix)."""
    out = []
    for f in dataclasses.fields(cls):
        default = getattr(cls(), f.name)
        if dataclasses.is_dataclass(default):
            out += _flags(type(default), f"{prefix}{f.name}.")
        else:
            out.append("--" + (prefix + f.name).replace("_", "-"))
    return out


def test_every_option_is_listed(train_help):
    listed = set(re.findall(r"(--[a-z][a-z0-9.-]*)", train_help))
    missing = [f for f in ["--preset", *_flags(TrainConfig)] if f not in listed]
    assert not missing, missing


def test_presets_and_all_algorithms_are_listed_with_their_line(train_help):
    text = " ".join(train_help.replace("│", " ").split())  # the box, unwrapped
    for name in PRESETS:
        assert f"{name}: {preset_summary(name)}" in text, name
    assert len(ALGORITHMS) >= 10
    for name in ALGORITHMS:
        assert f"{name}: {SUMMARIES[name]}" in text, name


def test_every_algorithm_has_a_one_line_summary():
    assert set(SUMMARIES) == set(ALGORITHMS)
    assert all(s and "\n" not in s and len(s) <= 90 for s in SUMMARIES.values())
    assert all(preset_summary(n) and len(preset_summary(n)) <= 90 for n in PRESETS)


def test_help_starts_with_the_flags_a_new_run_needs(train_help):
    first_box = train_help.split("╰")[0]
    shown = re.findall(r"│ (--[a-z][a-z0-9-]*)", first_box)
    assert shown == ["--" + n.replace("_", "-") for n in START_HERE]
    assert 12 <= len(shown) <= 18
    boxes = re.findall(r"╭─ ([a-z]*) ?options", train_help)
    assert boxes[:2] == ["", "task"]  # the first box ("options"), then the task
    assert [g for g, _, _ in GROUPS] == [b for b in boxes if b in {g for g, _, _ in GROUPS}]
    assert "more" not in boxes  # every top-level field is in a themed box


def test_no_source_line_breaks_survive(train_help):
    """Before: each docstring line of the source became a line of help, so an 80-column
    terminal showed fragments ("string with" alone on a line). Now a paragraph is wrapped
    whole: a help line is short only where its paragraph ends or a list item ends."""
    lines = [ln.strip("│ ").rstrip() for ln in train_help.splitlines() if ln.startswith("│")]
    width = max(len(ln) for ln in lines)
    fragments = []
    for ln, nxt in zip(lines, lines[1:]):
        continuation = nxt and not nxt.startswith(("--", "-h", "(default")) and not re.match(
            r"^[a-z_]+: ", nxt) and not nxt.startswith("─")
        if (continuation and not ln.startswith("-") and 0 < len(ln) < width // 2
                and not ln.endswith((".", ":", ")", "}"))):  # "}": a wrapped {choices}
            fragments.append((ln, nxt))
    assert not fragments, fragments[:5]


def test_paragraphs_joins_lines_and_keeps_paragraph_breaks():
    assert paragraphs("a b\n    c d\n\n    e") == "a b c d\n\ne"
    assert paragraphs(None) is None


def test_the_help_parses_what_it_shows():
    """The boxes are display only: flags parse into the same TrainConfig as before."""
    default = resolve_algorithm(PRESETS["arith"]())
    cfg = tyro.cli(TrainConfig, default=default, registry=registry("arith"),
                   args=["--top-p", "0.9", "--lr", "0.5", "--vllm-dtype", "float32", "--task.digits", "3",
                         "--algo.clip-high", "0.3", "--threads", "1"])
    assert sorted(config_diff(cfg, default)) == ["algo.clip_high", "lr", "task.digits", "threads",
                                                 "top_p", "vllm_dtype"]


def test_other_commands_help_is_whole_paragraphs(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    out = capsys.readouterr().out
    # EvalConfig's --suite docstring breaks its source line after "AMC, MATH500, Minerva,"
    assert "Minerva, OlympiadBench" in " ".join(out.replace("│", " ").split())
