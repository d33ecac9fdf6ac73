"""The `r1zero` command: train, sft, eval, analyze, grade, plot, export.

Each subcommand's flags are the fields of one config dataclass (tyro). `train` also
takes `--preset NAME` (a named config that flags then override) and `--algorithm NAME`
(seeds the --algo.* switches). Errors in the user's input exit with status 2 and one
line that names the problem and the fix; nothing heavy is imported before that check.
"""

from __future__ import annotations

import dataclasses
import sys
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
    cfg = tyro.cli(TrainConfig, default=default, args=args, prog="r1zero train",
                   description=f"RL-tune a model (preset {preset or 'arith'!r}; --preset NAME, "
                   f"one of {sorted(PRESETS)}; --algorithm NAME seeds --algo.*).")
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
    from r1zero.grading import grade_file

    cfg = tyro.cli(GradeConfig, args=args, prog="r1zero grade")
    summary = grade_file(cfg.input, cfg.output, extract=cfg.extract)
    print(f"graded {summary['count']} responses: accuracy {summary['accuracy']:.4f} "
          f"({summary['correct']} correct) -> {cfg.output}")
    for reason, n in sorted(summary["reasons"].items(), key=lambda kv: -kv[1]):
        print(f"  {reason:<14} {n}")
    if summary["bad_lines"]:
        print(f"  bad input lines: {summary['bad_lines'][:20]}"
              f"{' ...' if len(summary['bad_lines']) > 20 else ''}")
    return 0


def cmd_plot(args: list[str]) -> int:
    from pathlib import Path

    import tyro

    from r1zero.config import PlotConfig
    from r1zero.plotting import plot_overlay, plot_run

    args = _positionals_first(args, "--run-dirs")
    cfg = tyro.cli(PlotConfig, args=args, prog="r1zero plot")
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

    from r1zero.evaluation import EvalConfig, run_eval

    cfg = tyro.cli(EvalConfig, args=args, prog="r1zero eval")
    cfg.validate()
    result = run_eval(cfg)
    return 130 if isinstance(result, dict) and result.get("interrupted") else 0


def cmd_analyze(args: list[str]) -> int:
    import tyro

    from r1zero.analysis import AnalyzeConfig, run_analyze

    args = _positional_first(args, "--run-dir")  # `r1zero analyze RUN_DIR`
    cfg = tyro.cli(AnalyzeConfig, args=args, prog="r1zero analyze")
    cfg.validate()
    run_analyze(cfg)
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


def user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "bad input" (reported in one line, exit 2), not a bug."""
    from r1zero.config import ConfigError

    errors: list[type[BaseException]] = [ConfigError, FileNotFoundError]
    for module, name in (("r1zero.data", "DataError"), ("r1zero.models", "ModelLoadError")):
        try:
            errors.append(getattr(__import__(module, fromlist=[name]), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0 if args else 2)
    command = COMMANDS.get(args[0])
    if command is None:
        print(f"error: unknown command {args[0]!r}\n\n{USAGE}", file=sys.stderr)
        raise SystemExit(2)
    try:
        code = command(args[1:])
    except user_errors() as e:
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code)
