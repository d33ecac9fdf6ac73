"""The `r1zero` command: train, sft, eval, analyze, grade, plot, export.

Each subcommand's flags are the fields of one config dataclass (tyro; help laid out by
r1zero/config/help.py). `train` also takes `--preset NAME` (a named config that flags then
override) and `--algorithm NAME` (seeds the --algo.* switches). Errors in the user's input
or environment (`user_errors`) exit with status 2 and one line that names the problem, where
it is and the fix; `--debug` (anywhere on the line) or R1ZERO_DEBUG=1 shows the traceback
instead. Nothing heavy is imported before the config is checked.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

USAGE = """usage: r1zero {train,sft,eval,analyze,grade,plot,export} [flags]   (r1zero COMMAND --help)

  train     RL-tune a model on a task (default preset: arith, the CPU demo)
  sft       supervised fine-tuning on (prompt, response) pairs (then train --init-from)
  eval      evaluate a model on benchmark sets (accuracy, pass@k, lengths)
  analyze   base-model study (templates, pass@k, self-reflection) or a training run
  grade     grade responses in a JSONL file against gold answers
  plot      training curves of a run directory
  export    a run's checkpoint as a model directory (LoRA merged into its base)

  --debug (or R1ZERO_DEBUG=1): show the traceback of an error instead of its one line
"""


def _peek_option(args: list[str], name: str) -> str | None:
    """The VALUE of ``--name VALUE`` / ``--name=VALUE`` in args, left in place."""
    rest = list(args)
    return _pop_option(rest, name)


def _pop_option(args: list[str], name: str) -> str | None:
    """Remove ``--name VALUE`` / ``--name=VALUE`` from args and return VALUE."""
    for i, a in enumerate(args):
        if a == name:
            if i + 1 >= len(args):
                from r1zero.config import ConfigError

                raise ConfigError(f"{name} needs a value")
            value = args[i + 1]
            del args[i : i + 2]
            return value
        if a.startswith(name + "="):
            del args[i]
            return a.split("=", 1)[1]
    return None


def sandbox_shorthand(args: list[str]) -> list[str]:
    """``--sandbox MODE`` (e.g. ``--sandbox none``) is ``--sandbox.mode MODE``: the one
    setting of the ``--sandbox.*`` section people type, in the words of its warning."""
    out = []
    for a in args:
        if out and out[-1] == "--sandbox":
            out[-1] = "--sandbox.mode"
        out.append("--sandbox.mode=" + a.split("=", 1)[1] if a.startswith("--sandbox=") else a)
    return out


def cmd_train(args: list[str]) -> int:
    import tyro

    from r1zero.config import (
        PRESETS,
        ConfigError,
        TrainConfig,
        config_diff,
        resolve_algorithm,
        saved_config,
        with_algorithm,
    )
    from r1zero.config.help import registry

    preset = _pop_option(args, "--preset")
    algorithm = _pop_option(args, "--algorithm")
    resume = _peek_option(args, "--resume")
    if resume and preset:
        raise ConfigError(f"--resume {resume} continues the run's own config; drop --preset {preset}")
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if resume:
        # A resume parses its flags against the run's own config: what is not typed stays
        # as the run had it (a preset's defaults must not leak in), what is typed is checked.
        default = dataclasses.replace(saved_config(resume), resume=resume)
        if algorithm:  # only the name: derive() refuses it if it is not the run's
            default = dataclasses.replace(default, algorithm=algorithm)
    else:
        default = PRESETS[preset or "arith"]()
        default = with_algorithm(default, algorithm) if algorithm else resolve_algorithm(default)
    shown = None if resume else (preset or "arith")
    cfg = tyro.cli(TrainConfig, default=default, args=sandbox_shorthand(args), prog="r1zero train",
                   registry=registry(shown), description=TRAIN_DESCRIPTION)
    given = set(config_diff(cfg, default)) | ({"algorithm"} if algorithm else set())
    from r1zero.train.trainer import train

    train(cfg, given=given)
    return 0


def cmd_sft(args: list[str]) -> int:
    import tyro

    from r1zero.config import SFTConfig
    from r1zero.train.sft import sft

    cfg = tyro.cli(SFTConfig, args=args, prog="r1zero sft")
    sft(cfg)
    return 0


def cmd_export(args: list[str]) -> int:
    import tyro

    from r1zero.config import ExportConfig
    from r1zero.learner.export import export_checkpoint, run_checkpoint

    cfg = tyro.cli(ExportConfig, args=_positional_first(args, "--run-dir"), prog="r1zero export")
    checkpoint = run_checkpoint(cfg.run_dir)
    print(f"{checkpoint} -> {export_checkpoint(checkpoint, Path(cfg.out))}")
    return 0


def cmd_grade(args: list[str]) -> int:
    import tyro

    from r1zero.config import GradeConfig
    from r1zero.config.help import registry
    from r1zero.grading import grade_file
    from r1zero.durable import check_distinct, discard, replaced

    cfg = tyro.cli(GradeConfig, args=args, prog="r1zero grade", registry=registry())
    cfg.validate()
    check_grade_input(cfg.input)
    check_distinct(cfg.input, cfg.output)
    with replaced(cfg.output) as tmp:  # the old output stays until the new one is complete
        summary = grade_file(cfg.input, tmp, extract=cfg.extract)
        if why := nothing_graded(cfg.input, summary):
            discard(tmp)
            raise GradeError(f"{why}; {cfg.output} was not written")
    print(f"graded {summary['count']} responses: accuracy {summary['accuracy']:.4f} "
          f"({summary['correct']} correct) -> {cfg.output}")
    for reason, n in sorted(summary["reasons"].items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<14} {n}")
    if summary["bad_lines"]:
        print(f"  bad input lines: {summary['bad_lines'][:20]}"
              f"{' ...' if len(summary['bad_lines']) > 20 else ''}")
    if cfg.report:
        _print_report(cfg)
    return 0


def _print_report(cfg) -> None:
    """`grade --report`: agreement with the records' expected verdicts (grading/report.py)."""
    from r1zero.config import ConfigError
    from r1zero.grading.report import ReportError, format_report, report_file

    try:
        report, path = report_file(
            cfg.output, expected_field=cfg.expected_field, group_by=cfg.group_by,
            group_pattern=cfg.group_pattern, exclude=cfg.group_exclude,
            disagreements_path=cfg.disagreements,
        )
    except ReportError as e:
        raise ConfigError(str(e)) from None
    print(format_report(report, cfg.expected_field))
    print(f"disagreements: {report.overall.n - report.overall.agree} in 'overall' "
          f"({sum(t.n - t.agree for t in report.groups.values())} in all) -> {path}")


class GradeError(ValueError):
    """`r1zero grade` had nothing to grade; the message says why."""


def check_grade_input(path: str) -> None:
    """The input must be a readable file (a directory or a missing path is a one-line error)."""
    p = Path(path)
    if p.is_dir():
        raise GradeError(f"--input {path} is a directory; give a JSONL file of "
                         '{"response": ..., "gold": ...} records')
    if not p.is_file():
        raise FileNotFoundError(f"--input {path}: no such file")


def nothing_graded(path: str, summary: dict) -> str | None:
    """Why a grading summary graded nothing (an empty file, or every line bad), or None."""
    if summary["count"] == 0:
        return f"{path} has no lines to grade (it is empty)"
    bad = summary["bad_lines"]
    if len(bad) == summary["count"]:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        return (f"no line of {path} could be graded ({len(bad)} bad: line {shown}); each must "
                'be a JSON object with a string "response" and a "gold" answer')
    return None


def cmd_plot(args: list[str]) -> int:
    from pathlib import Path

    import tyro

    from r1zero.config import ConfigError, PlotConfig
    from r1zero.config.help import registry
    from r1zero.plotting import plot_overlay, plot_run

    args = _positionals_first(args, "--run-dirs")
    cfg = tyro.cli(PlotConfig, args=args, prog="r1zero plot", registry=registry())
    if cfg.labels and len(cfg.labels) != len(cfg.run_dirs):
        raise ConfigError(f"--labels: {len(cfg.labels)} name(s) for {len(cfg.run_dirs)} runs; give "
                          "one per run, in the same order, or none (the directory names)")
    for run in cfg.run_dirs:
        out = None if cfg.out_dir is None else Path(cfg.out_dir) / Path(run).name
        for path in plot_run(run, out if len(cfg.run_dirs) > 1 else cfg.out_dir):
            print(path)
    if len(cfg.run_dirs) > 1:
        where = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.run_dirs[0]) / "plots"
        print(plot_overlay(cfg.run_dirs, where / "compare.png", labels=cfg.labels or None))
    return 0


def cmd_eval(args: list[str]) -> int:
    import tyro

    from r1zero.config.help import registry
    from r1zero.evaluation import EvalConfig, run_eval

    cfg = tyro.cli(EvalConfig, args=sandbox_shorthand(args), prog="r1zero eval", registry=registry())
    cfg.validate()
    result = run_eval(cfg)
    return 130 if isinstance(result, dict) and result.get("interrupted") else 0


def cmd_analyze(args: list[str]) -> int:
    import tyro

    from r1zero.analysis import AnalyzeConfig, run_analyze
    from r1zero.config.help import registry

    args = _positional_first(args, "--run-dir")  # `r1zero analyze RUN_DIR`
    cfg = tyro.cli(AnalyzeConfig, args=args, prog="r1zero analyze", registry=registry())
    cfg.validate()
    run_analyze(cfg)
    if cfg.run_dir is not None:  # the study prints its own report; a run's goes to files
        out = Path(cfg.out_dir) if cfg.out_dir else Path(cfg.run_dir) / "analysis"
        print(f"analysis of {cfg.run_dir}: {out / 'run_report.md'} (report), "
              f"{out / 'run_summary.json'}, {out / 'run_lengths.png'}")
    return 0


def _positionals_first(args: list[str], flag: str) -> list[str]:
    """Allow `r1zero plot RUN_A RUN_B`: leading bare arguments become ``flag A B``."""
    n = 0
    while n < len(args) and not args[n].startswith("-"):
        n += 1
    return [flag, *args[:n], *args[n:]] if n else args


def _positional_first(args: list[str], flag: str) -> list[str]:
    """Allow `r1zero plot RUN_DIR`: a leading bare argument becomes ``flag VALUE``."""
    if args and not args[0].startswith("-"):
        return [flag, args[0], *args[1:]]
    return args


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "train": cmd_train,
    "sft": cmd_sft,
    "eval": cmd_eval,
    "analyze": cmd_analyze,
    "grade": cmd_grade,
    "plot": cmd_plot,
    "export": cmd_export,
}


USER_ERRORS = (
    ("r1zero.config", "ConfigError"),  # a flag, or a combination of flags
    ("r1zero.config", "MissingDependency"),  # an optional package the flags need
    ("r1zero.durable", "OutputError"),  # an output that would destroy an input
    ("r1zero.data", "DataError"),  # a problem file
    ("r1zero.models", "ModelLoadError"),  # a model folder, packaged model or hub id
    ("r1zero.rollout.openai", "OpenAIBackendError"),  # a server: down, or refusing requests
    ("r1zero.plotting", "PlotError"),  # nothing to plot
    ("r1zero.learner.checkpoint", "CheckpointError"),  # no intact checkpoint to resume from
    ("r1zero.sandbox", "SandboxUnavailable"),  # no way to isolate model-written code here
)
"""Exceptions that mean bad input or environment, not a bug in r1zero: (module, class). The
module is imported only when an exception is being reported (several are heavy)."""


def user_errors() -> tuple[type[BaseException], ...]:
    """The classes of `USER_ERRORS`, `GradeError` and FileNotFoundError."""
    errors: list[type[BaseException]] = [FileNotFoundError, GradeError]
    for module, name in USER_ERRORS:
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def debugging(args: list[str]) -> bool:
    """Whether to show tracebacks: ``--debug`` (removed from ``args``) or R1ZERO_DEBUG=1."""
    flag = "--debug" in args
    while "--debug" in args:
        args.remove("--debug")
    return flag or os.environ.get("R1ZERO_DEBUG", "") not in ("", "0")


def one_line_warnings(message, category, filename, lineno, line=None) -> str:
    """r1zero's own warnings as ``warning: MESSAGE`` (others keep Python's format)."""
    if f"{os.sep}r1zero{os.sep}" in filename or filename.startswith("<"):
        return f"warning: {message}\n"
    return _python_format(message, category, filename, lineno, line)


_python_format = warnings.formatwarning
TRAIN_DESCRIPTION = (
    "RL-tune a model on a task: rollout -> reward -> advantages -> update, step after step. "
    "The first box holds what a new run sets (--preset, --algorithm, --model, --steps, ...); "
    "the task is chosen in the next (--task.*); the other boxes tune the rollout, the update, "
    "the vLLM engine, outputs, the algorithm's switches (--algo.*) and the cluster.")


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(args)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if args else 2)
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"error: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    warnings.formatwarning = one_line_warnings
    try:
        code = command(args[1:])
    except user_errors() as e:
        if debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        warnings.formatwarning = _python_format
    raise SystemExit(code)
