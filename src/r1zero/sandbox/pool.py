"""Warm sandboxes: a pool of long-lived sandboxed workers that each run one execution at a
time in a freshly forked child, and the one-shot `run` that starts a sandbox per call.

Start-up (bwrap's namespaces and mounts, the interpreter, its imports) is paid once per
worker instead of once per execution; what a worker shares between executions is listed
in `r1zero.sandbox`. The host never trusts a worker to answer: every read has a deadline
(the execution's wall limit plus `GRACE_S`), and a worker that misses it, dies, or cannot
clean up after an execution is replaced by a fresh one.
"""

from __future__ import annotations

import os
import queue
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from r1zero.sandbox.bwrap import Launch, SandboxUnavailable, resolve_launch
from r1zero.sandbox.config import Result, SandboxConfig
from r1zero.sandbox.worker import HEADER, encode_frame

STARTUP_TIMEOUT_S = 60.0
"""A worker's first frame (namespaces set up, interpreter started) must come within this."""
GRACE_S = 5.0
"""Beyond an execution's wall limit, the time a worker has to kill, clean up and answer."""
MAX_FRAME_BYTES = 64 << 20
"""Larger answers are a broken worker (outputs are capped far below this)."""

NONE_WARNING = ("warning: --sandbox none: model code runs WITHOUT isolation (rlimits only): "
                "it can read and write your files, reach the network and leave processes")


class _Worker:
    """One sandboxed worker process and its pipes, seen from the host."""

    def __init__(self, launch: Launch) -> None:
        self._stderr = tempfile.TemporaryFile()  # bwrap's own errors, read if start-up fails
        argv, info_w, self._info_r = list(launch.argv), None, None
        if launch.mode == "bwrap":
            # bwrap writes {"child-pid": N} here: the host pid of the sandbox's PID 1, which
            # `close` kills if the worker does not exit (that ends the whole sandbox).
            self._info_r, info_w = os.pipe()
            argv[1:1] = ["--info-fd", str(info_w)]
        root = launch.user is not None
        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                env=launch.env, close_fds=True, pass_fds=(info_w,) if info_w else (),
                start_new_session=True, user=launch.user, group=launch.user,
                extra_groups=[] if root else None)
        except OSError as e:
            self._stderr.close()
            if self._info_r is not None:
                os.close(self._info_r)
            raise SandboxUnavailable(f"the sandbox did not start: cannot execute {argv[0]}: {e}") from e
        finally:
            if info_w is not None:
                os.close(info_w)
        self._buf = bytearray()
        self.runs = 0
        self.sandbox_pid: int | None = None
        self.info: dict = {}

    def _read_sandbox_pid(self, deadline: float) -> None:
        """bwrap's info JSON (written once the sandbox exists, then the pipe is closed)."""
        import json

        data = b""
        while time.monotonic() < deadline and select.select([self._info_r], [], [],
                                                             deadline - time.monotonic())[0]:
            chunk = os.read(self._info_r, 4096)
            if not chunk:
                break
            data += chunk
        os.close(self._info_r)
        self._info_r = None
        try:
            self.sandbox_pid = int(json.loads(data)["child-pid"])
        except (ValueError, KeyError, TypeError):
            pass

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        if self._info_r is not None:
            self._read_sandbox_pid(deadline)
        frame = self._read_frame(deadline)
        if not frame or not frame.get("ready"):
            self._stderr.seek(0)
            err = self._stderr.read().decode("utf-8", "replace").strip()[-2000:]
            self.close()
            why = (frame or {}).get("error") or err or "no answer"
            raise SandboxUnavailable(f"the sandbox did not start: {why}")
        self.info = frame

    def execute(self, request: dict, wait_s: float) -> dict | None:
        """Send one request; the result frame, or None if the worker broke or hung."""
        try:
            self.proc.stdin.write(encode_frame(request))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        self.runs += 1
        return self._read_frame(time.monotonic() + wait_s)

    def _read_frame(self, deadline: float) -> dict | None:
        import json

        fd = self.proc.stdout.fileno()
        need = HEADER.size
        while True:
            if len(self._buf) >= HEADER.size:
                size = HEADER.unpack_from(self._buf)[0]
                if size > MAX_FRAME_BYTES:
                    return None
                need = HEADER.size + size
                if len(self._buf) >= need:
                    data = bytes(self._buf[HEADER.size:need])
                    del self._buf[:need]
                    return json.loads(data)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, max(65536, need - len(self._buf)))
            if not chunk:
                return None
            self._buf += chunk

    def close(self) -> None:
        """End the worker: EOF on its stdin makes it kill its children and exit (as PID 1 its
        exit ends the whole sandbox); a worker that does not go within 2 s is killed, with
        everything in its sandbox."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            # bwrap is still there, so it has not reaped its child: the pid is still ours.
            if self.sandbox_pid is not None:
                os.kill(self.sandbox_pid, signal.SIGKILL)
            try:
                self.proc.wait(timeout=2.0)  # bwrap reaps its child and exits
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._stderr.close()
        if self._info_r is not None:
            os.close(self._info_r)
            self._info_r = None


def _refused(reason: str) -> Result:
    return Result(stdout="", stderr="", exit_code=None, verdict="refused", reason=reason)


def _result(frame: dict) -> Result:
    keys = ("stdout", "stderr", "exit_code", "verdict", "reason", "completed", "wall_s", "cpu_s")
    return Result(**{k: frame[k] for k in keys})


class SandboxPool:
    """``workers`` warm sandboxes; `run` and `map` may be called from any number of threads.

    Raises SandboxUnavailable at construction when mode is bwrap and no sandbox can be
    started (the message names the fix); mode none prints a one-line warning instead."""

    def __init__(self, config: SandboxConfig | None = None, *, workers: int | None = None) -> None:
        self.config = config or SandboxConfig()
        self.launch = resolve_launch(self.config)
        if self.config.mode == "none":
            print(NONE_WARNING, file=sys.stderr)
        self.size = workers or self.config.workers
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._all: list[_Worker] = []
        self._closed = False
        started = [self._spawn() for _ in range(self.size)]  # start all, then wait for each
        try:
            for w in started:
                w.wait_ready()
        except SandboxUnavailable:
            self.close()
            raise
        for w in started:
            self._idle.put(w)

    def _spawn(self) -> _Worker:
        w = _Worker(self.launch)
        with self._lock:
            self._all.append(w)
        return w

    def _replace(self, w: _Worker) -> _Worker:
        w.close()
        with self._lock:
            if w in self._all:
                self._all.remove(w)
        fresh = self._spawn()
        fresh.wait_ready()
        return fresh

    @property
    def description(self) -> str:
        return self.launch.description

    def run(self, code: str, *, timeout_s: float | None = None) -> Result:
        """Run ``code`` (a Python program) in one of the warm sandboxes."""
        if self._closed:
            raise RuntimeError("this SandboxPool is closed")
        size = len(code.encode("utf-8", "surrogatepass"))
        if size > self.config.max_code_bytes:
            return _refused(f"code is {size} bytes, over the {self.config.max_code_bytes} limit")
        limits = self.config.limits(timeout_s)
        w = self._idle.get()
        try:
            frame = w.execute({"code": code, "limits": limits}, limits["timeout_s"] + GRACE_S)
            if frame is None or frame["retire"] or w.runs >= self.config.runs_per_worker:
                w = self._replace(w)
        finally:
            self._idle.put(w)
        if frame is None:
            return Result(stdout="", stderr="", exit_code=None, verdict="killed",
                          reason="the sandbox stopped answering; it was replaced")
        return _result(frame)

    def map(self, codes: Sequence[str], *, timeout_s: float | None = None) -> list[Result]:
        """Run every program, ``size`` at a time; results in input order."""
        if len(codes) <= 1 or self.size == 1:
            return [self.run(c, timeout_s=timeout_s) for c in codes]
        with ThreadPoolExecutor(max_workers=self.size) as ex:
            return list(ex.map(lambda c: self.run(c, timeout_s=timeout_s), codes))

    def close(self) -> None:
        self._closed = True
        with self._lock:
            workers, self._all = list(self._all), []
        for w in workers:
            w.close()

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run(code: str, *, timeout_s: float = 10.0, config: SandboxConfig | None = None) -> Result:
    """Run ``code`` in a fresh sandbox started for this call alone (cold: it pays bwrap's and
    the interpreter's start-up; use a `SandboxPool` for many executions)."""
    with SandboxPool(config, workers=1) as pool:
        return pool.run(code, timeout_s=timeout_s)


def probe(config: SandboxConfig | None = None) -> tuple[bool, str]:
    """Whether a sandbox starts and runs a program here: (True, what it runs on) or (False,
    why not, with the fix)."""
    try:
        result = run("print(6 * 7)", timeout_s=10.0, config=config)
    except SandboxUnavailable as e:
        return False, str(e)
    if result.stdout != "42\n":
        return False, f"the sandbox started but a test program failed: {result.verdict} {result.reason}"
    return True, resolve_launch(config or SandboxConfig()).description
