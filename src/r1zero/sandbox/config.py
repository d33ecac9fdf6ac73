"""The sandbox's typed configuration (`SandboxConfig`, defined with the other config sections
in `r1zero.config.envs` so that the train and eval configs hold it as ``--sandbox.*``) and the
result record an execution returns."""

from __future__ import annotations

from dataclasses import dataclass

from r1zero.config import SANDBOX_MODES as MODES  # noqa: F401  (re-exported)
from r1zero.config import SandboxConfig  # noqa: F401  (re-exported: r1zero.sandbox.SandboxConfig)


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
