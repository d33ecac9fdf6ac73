"""A small pool of persistent sympy worker processes with a hard per-call time limit.

``signal.alarm`` (math-verify's timeout) only works in the main thread, and a runaway
sympy call cannot be interrupted from Python at all. A separate process can always be
killed: the parent waits on the worker's pipe with ``select`` and, past the deadline,
kills it and starts a fresh one. This works from any thread, in any process, and the
worker's import cost (sympy, ~1 s) is paid once per worker, not per call.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

# Worker start-up (imports) is not charged to any request: a cold start on a loaded
# machine can take seconds and must not turn the first answer into a "timeout".
STARTUP_TIMEOUT_S = 120.0
MAX_WORKERS = max(1, min(4, (os.cpu_count() or 1)))
_SRC_DIR = str(Path(__file__).resolve().parents[2])


class WorkerTimeout(Exception):
    """The worker did not answer before the deadline (it has been killed)."""


class WorkerError(Exception):
    """The worker died or failed to start; the pair is treated as not equal."""


class _Worker:
    """One ``python -m r1zero.grading.symbolic`` subprocess speaking JSON lines."""

    def __init__(self) -> None:
        env = dict(os.environ)
        # Make the package importable in the child even when it is not installed.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_SRC_DIR, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "r1zero.grading.symbolic"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self._buf = b""
        self._ready = False
        self._next_id = 0

    def _readline(self, deadline: float) -> bytes:
        """One line from the worker's stdout, or WorkerTimeout past ``deadline``."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise WorkerTimeout
            chunk = os.read(fd, 65536)
            if not chunk:
                raise WorkerError("worker exited")
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line

    def ensure_ready(self) -> None:
        """Wait for the worker's start-up handshake (outside any request deadline)."""
        if not self._ready:
            try:
                json.loads(self._readline(time.monotonic() + STARTUP_TIMEOUT_S))
            except WorkerTimeout as e:
                raise WorkerError("worker did not start") from e
            self._ready = True

    def compare(self, pred: str, gold: str, timeout_s: float) -> bool:
        """Ask the worker whether ``pred`` equals ``gold``; raise WorkerTimeout on time-out."""
        self.ensure_ready()
        self._next_id += 1
        msg = json.dumps({"id": self._next_id, "pred": pred, "gold": gold}) + "\n"
        try:
            self.proc.stdin.write(msg.encode())
            self.proc.stdin.flush()
        except OSError as e:
            raise WorkerError("worker pipe closed") from e
        reply = json.loads(self._readline(time.monotonic() + timeout_s))
        if reply.get("id") != self._next_id:
            raise WorkerError("out-of-sync reply")
        return bool(reply.get("equal"))

    def kill(self) -> None:
        """Terminate the process (idempotent)."""
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass


class WorkerPool:
    """Hands each calling thread its own idle worker, growing up to ``max_workers``."""

    def __init__(self, max_workers: int = MAX_WORKERS) -> None:
        self.max_workers = max_workers
        self._idle: list[_Worker] = []
        self._count = 0
        self._cond = threading.Condition()
        self._pid = os.getpid()

    def _check_fork(self) -> None:
        """After a fork the inherited pipes belong to the parent: start afresh."""
        if os.getpid() != self._pid:
            self._idle, self._count, self._pid = [], 0, os.getpid()

    def _acquire(self) -> _Worker:
        with self._cond:
            self._check_fork()
            while not self._idle and self._count >= self.max_workers:
                self._cond.wait()
            if self._idle:
                return self._idle.pop()
            self._count += 1
        try:
            return _Worker()
        except OSError:
            self._release(None)
            raise

    def _release(self, worker: _Worker | None) -> None:
        with self._cond:
            if worker is None:
                self._count -= 1
            else:
                self._idle.append(worker)
            self._cond.notify()

    def compare(self, pred: str, gold: str, timeout_s: float) -> bool:
        """Symbolic equality with a hard time limit; raises WorkerTimeout or WorkerError."""
        worker = self._acquire()
        try:
            result = worker.compare(pred, gold, timeout_s)
        except (WorkerTimeout, WorkerError, OSError, ValueError):
            worker.kill()
            # Start the replacement now (Popen does not block) so its imports overlap
            # with whatever the caller does next instead of delaying the next request.
            self._release(self._spawn_replacement())
            raise
        self._release(worker)
        return result

    def _spawn_replacement(self) -> _Worker | None:
        try:
            return _Worker()
        except OSError:
            return None

    def close(self) -> None:
        """Kill all idle workers (registered at exit)."""
        with self._cond:
            if os.getpid() != self._pid:
                return
            for w in self._idle:
                w.kill()
            self._count -= len(self._idle)
            self._idle = []


POOL = WorkerPool()
atexit.register(POOL.close)
