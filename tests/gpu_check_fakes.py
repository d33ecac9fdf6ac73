"""Stand-in checks for the device check's runner tests (tests/test_gpu_check.py): each runs
in the runner's child process like a real check, without torch, in milliseconds."""

import json
import subprocess
import sys
import time

from gpu_check import NeedsCuda


def ok(ctx) -> dict:
    return {"device": ctx.device_name, "answer": 42}


def fail(ctx) -> dict:
    raise ValueError("wrong on purpose")


def needs_cuda(ctx) -> dict:
    raise NeedsCuda("a kernel", {"measured": 1.5})


def hang(ctx) -> dict:
    """Never returns; leaves a helper process that the runner must end with it."""
    helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (ctx.out / "hang_helper.pid").write_text(str(helper.pid))
    time.sleep(600)
    return {}


def rows_so_far(ctx) -> dict:
    """How many rows the runner had written before this check started (it streams them)."""
    path = ctx.out / "gpu_check.jsonl"
    return {"rows_before": [json.loads(line)["check"] for line in path.read_text().splitlines()]}
