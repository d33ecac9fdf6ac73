"""One-shot device check: every check (`gpu_check_learner`, `gpu_check_kernels`) runs in a
process of its own, under its own time limit inside one overall budget, so a check that
hangs loses only its own row. Each result is printed the moment it is known and appended
to OUT/gpu_check.jsonl; a summary closes the run (OUT/gpu_check.txt); the checks' own
output goes to OUT/gpu_check.log.

    bash scripts/gpu_check.sh             # a CUDA machine, from the .gpu bundle, no network
    bash scripts/gpu_check.sh --dry-run   # the same checks on CPU: gloo, tiny sizes
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BUDGET_S = 450.0
"""The whole run, in seconds: under 8 minutes, so that a GPU machine lent 10 minutes a
command also fits the wheel install and the interpreter's start."""
ROWS, SUMMARY, LOG = "gpu_check.jsonl", "gpu_check.txt", "gpu_check.log"


@dataclass(frozen=True)
class Check:
    """One row: ``target`` is ``module:function`` (imported only in the check's process),
    ``cap_s`` the most seconds it may take, ``min_s`` the fewest worth starting it with,
    which is also what the checks before it leave for it."""

    name: str
    target: str
    cap_s: float
    min_s: float


CHECKS = (
    Check("env", "gpu_check_learner:check_env", 60, 15),
    Check("fsdp_learner", "gpu_check_learner:check_fsdp_learner", 150, 30),
    Check("flex_vs_dense", "gpu_check_kernels:check_flex_vs_dense", 180, 45),
    Check("activation_checkpointing", "gpu_check_learner:check_activation_checkpointing", 90, 25),
    Check("dcp_save_load", "gpu_check_learner:check_dcp_save_load", 90, 25),
    Check("cpu_offload", "gpu_check_learner:check_cpu_offload", 90, 25),
    Check("cuda_ipc", "gpu_check_kernels:check_cuda_ipc", 60, 15),
    Check("learner_1p5b", "gpu_check_learner:check_learner_1p5b", 300, 120),
)
"""In running order: the correctness checks first, the long benchmark last with the time left."""


def time_limit(checks: tuple[Check, ...], i: int, left_s: float) -> float:
    """Seconds check ``i`` may run: its cap, but never the ``min_s`` of the checks after
    it; 0 when that leaves it less than its own ``min_s`` (then it is skipped)."""
    limit = min(checks[i].cap_s, left_s - sum(c.min_s for c in checks[i + 1:]))
    return limit if limit >= checks[i].min_s else 0.0


class NeedsCuda(Exception):
    """What the check would do next runs only on a CUDA device (a skip in a dry run);
    ``detail`` holds what it measured before that point."""

    def __init__(self, what: str, detail: dict | None = None) -> None:
        super().__init__(what)
        self.detail = detail or {}


@dataclass(frozen=True)
class Sizes:
    """The model and rollout a check builds: a SmolLM2-vocabulary Llama (`tiny_model`)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    prompts: int
    group: int
    prompt_len: tuple[int, int]
    response_len: tuple[int, int]
    micro_batch_tokens: int


TINY = Sizes(64, 2, 4, 2, 128, 2, 3, (3, 8), (4, 12), 64)
"""The dry run's: milliseconds a pass on CPU."""
FULL = Sizes(512, 8, 8, 2, 1536, 3, 4, (40, 120), (100, 700), 4096)
"""The GPU's (~50 M parameters, ~9 k tokens in 3 micro-batches): empty, partial and full
128-token FlexAttention tiles, and activations that dominate the peak memory."""


@dataclass(frozen=True)
class Ctx:
    """Where a check runs: the device (``cuda:0`` or ``cpu``), its sizes, a scratch folder
    and the folder whose files come back from the device machine. torch is imported by
    the checks that use it, not by the runner."""

    device_name: str
    sizes: Sizes
    work: Path
    out: Path

    @property
    def device(self):
        import torch

        return torch.device(self.device_name)

    @property
    def cuda(self) -> bool:
        return self.device_name.startswith("cuda")


# ----------------------------------------------------------------------------- one check
def imported_distributions() -> list[str]:
    """The installed distributions that this project's own code (r1zero, the check scripts,
    the benchmark) imports by name and this process has loaded: what the device machine
    must have besides the bundle (torch's and transformers' own imports are the image's
    business). `gpu_bundle.py` compares them with the image."""
    import ast
    from importlib.metadata import packages_distributions

    package = sys.modules.get("r1zero")
    ours = (str(ROOT / "src"), str(HERE), str(ROOT / "bench"),
            str(Path(package.__file__).parent) if package else str(HERE))
    names: set[str] = set()
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None) or ""
        if not path.endswith(".py") or not path.startswith(ours):
            continue
        for node in ast.walk(ast.parse(Path(path).read_text())):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    owners = packages_distributions()
    return sorted({d for n in names if n in sys.modules for d in owners.get(n, [])} - {"r1zero"})


def run_check(target: str, ctx: Ctx) -> dict:
    """The body of a check's process: ``{"status": ok | skip | fail, ...}``."""
    module, function = target.split(":")
    ctx.work.mkdir(parents=True, exist_ok=True)
    try:
        result = {"status": "ok", "detail": getattr(importlib.import_module(module), function)(ctx)}
    except NeedsCuda as e:
        result = {"status": "skip", "note": f"needs CUDA: {e}", "detail": e.detail}
    except Exception as e:  # noqa: BLE001 - a failed check is a row, not a crash
        traceback.print_exc()
        result = {"status": "fail", "error": f"{type(e).__name__}: {e}"}
    finally:
        torch = sys.modules.get("torch")
        if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    result["imports"] = imported_distributions()
    return result


def spawn_check(check: Check, limit: float, args, work: Path, log) -> dict:
    """Run ``check`` in a new process session; on time-out kill the whole session (the
    check's own helpers, compile workers, an IPC receiver). Returns its result, with the
    end of its output when it failed or timed out."""
    result_file = work / f"{check.name}.result.json"
    cmd = [sys.executable, str(Path(__file__)), "--child", check.target, "--device", args.device,
           "--work", str(work / check.name), "--out", str(args.out), "--result", str(result_file)]
    log.write(f"\n===== {check.name} (limit {limit:.0f} s)\n")
    log.flush()
    start = log.tell()
    proc = subprocess.Popen(cmd + (["--tiny"] if args.dry_run else []), stdout=log,
                            stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
    try:
        code = proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        code = None
    _kill_session(proc)
    if code is None:
        result = {"status": "timeout", "error": f"no result in {limit:.0f} s (killed)"}
    elif result_file.is_file():
        result = json.loads(result_file.read_text())
    else:
        result = {"status": "fail", "error": f"exited {code} without a result"}
    if result["status"] in ("fail", "timeout"):
        with open(log.name, errors="replace") as f:
            f.seek(start)
            result["log_tail"] = f.read().splitlines()[-12:]
    return result


def _kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL what is left of the session the check's process leads (by its id)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# ----------------------------------------------------------------------------- the run
def short(detail: dict, width: int = 160) -> str:
    """``key=value`` pairs of a result, floats to 4 significant digits, cut at ``width``."""

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, dict):
            return "{" + " ".join(f"{k}={fmt(x)}" for k, x in v.items()) + "}"
        return json.dumps(v) if isinstance(v, list) else str(v)

    text = " ".join(f"{k}={fmt(v)}" for k, v in detail.items())
    return text if len(text) <= width else text[:width - 3] + "..."


def row_line(row: dict) -> str:
    what = row.get("error") or row.get("note") or ""
    what = (what + " " if what else "") + short(row.get("detail", {}))
    return f"{row['check']:26s} {row['status']:8s} {row['s']:6.1f} s  {what}"


def append_row(row: dict, out: Path) -> None:
    """Print the row (and a failure's last lines of output) and append it to
    OUT/gpu_check.jsonl at once (flushed to disk)."""
    print("\n".join([row_line(row)] + [f"    | {x}" for x in row.get("log_tail", [])]), flush=True)
    with open(out / ROWS, "a") as f:
        f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def summarize(rows: list[dict], device: str, budget: float, used: float) -> str:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "fail", "timeout", "skip")}
    lines = [f"gpu_check on {device}: {used:.0f} s of a {budget:.0f} s budget"]
    lines += [row_line(r) for r in rows]
    lines.append(f"gpu_check: {counts['ok']} ok, {counts['fail']} failed, "
                 f"{counts['timeout']} timed out, {counts['skip']} skipped")
    return "\n".join(lines)


def run_all(args, checks: tuple[Check, ...] = CHECKS) -> int:
    """Run ``checks`` in order within ``args.budget_s``; 0 when none failed or timed out."""
    checks = tuple(c for c in checks if not args.only or c.name in args.only)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in (ROWS, SUMMARY, LOG, "bench_learner_gpu.jsonl"):
        (args.out / name).unlink(missing_ok=True)
    start, rows = time.monotonic(), []
    print(f"gpu_check on {args.device}: {len(checks)} checks, budget {args.budget_s:.0f} s; "
          f"rows in {args.out / ROWS}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp, open(args.out / LOG, "a") as log:
        for i, check in enumerate(checks):
            t0 = time.monotonic()
            limit = time_limit(checks, i, args.budget_s - (t0 - start))
            result = (spawn_check(check, limit, args, Path(tmp), log) if limit > 0 else
                      {"status": "skip", "note": "out of time: the budget is spent"})
            row = {"check": check.name, "device": args.device, "s": time.monotonic() - t0,
                   "limit_s": limit, **result}
            rows.append(row)
            append_row(row, args.out)
    text = summarize(rows, args.device, args.budget_s, time.monotonic() - start)
    (args.out / SUMMARY).write_text(text + "\n")
    print(text, flush=True)
    return 0 if all(r["status"] in ("ok", "skip") for r in rows) else 1


def parse(argv: list[str] | None = None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="run every check on CPU (gloo, tiny sizes)")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "runs" / "gpu_check"),
                   help="where rows, summary and log go (default $OUT, else runs/gpu_check)")
    p.add_argument("--budget-s", type=float, default=BUDGET_S, help="seconds for the whole run")
    p.add_argument("--only", nargs="+", choices=[c.name for c in CHECKS], help="run these checks only")
    # A check's own process (spawned by run_all): --child module:function
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--device", help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.child:
        ctx = Ctx(args.device, TINY if args.tiny else FULL, args.work, args.out)
        args.result.write_text(json.dumps(run_check(args.child, ctx), default=str))
        return 0
    if args.dry_run:
        args.device = "cpu"
    else:
        import torch

        if not torch.cuda.is_available():
            print("gpu_check: no CUDA device is visible here; `bash scripts/gpu_check.sh --dry-run` "
                  "runs the checks on CPU", file=sys.stderr)
            return 2
        args.device = "cuda:0"
    return run_all(args)


if __name__ == "__main__":
    # The check modules import Ctx and NeedsCuda from `gpu_check`: make that this module,
    # not a second copy whose NeedsCuda the `except` above would not catch.
    sys.modules.setdefault("gpu_check", sys.modules[__name__])
    sys.exit(main())
