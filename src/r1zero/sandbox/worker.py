"""The process that lives inside a sandbox: it reads programs from the host over a pipe and
runs each one in a freshly forked child with its own limits, scratch directory and pipes.

Stdlib only, and self-contained: the host starts it as ``python -I -c <this file's text>
MODE`` (so nothing of the project has to be visible inside the sandbox) and imports it for
the frame format. MODE is ``bwrap`` (we are PID 1 of the sandbox's PID namespace) or
``none`` (no isolation: rlimits only, see `r1zero.sandbox`).

Per execution (`execute`): make three pipes (stdout, stderr, a "done" channel), fork; the
child moves them to fds 1, 2, 3, closes every other descriptor, enters the scratch
directory, sets its rlimits and a fresh environment and runs the code as ``__main__``;
the parent reads the pipes with caps on their size and a wall-clock deadline, then kills
whatever the execution left running, empties the scratch directory and SysV IPC, and
answers with one frame. Because the child is a fork, nothing it changes in memory
(modules, builtins, globals) reaches the worker or the next execution.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import struct
import sys
import time

HEADER = struct.Struct(">I")
"""A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON."""

SCRATCH = "/tmp"
"""The scratch directory inside the sandbox: bwrap mounts a private tmpfs there."""

CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
             "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
"""The whole environment of an execution (plus HOME and TMPDIR = its scratch directory).
PYTHONHASHSEED only documents what holds: a warm worker's children share its hash seed.
One BLAS/OpenMP thread: thread pools sized to the host's cores would run into the process
limit (threads count) and are not what a small program needs."""

WARM_IMPORTS = ("typing", "math", "re", "collections", "itertools", "functools", "heapq",
                "string", "bisect")
"""Modules imported once per worker so that executions do not pay for them. None of them
holds per-process randomness (``random`` does: a forked child would repeat its parent's
sequence, so it is not warmed)."""

CHILD_IMPORTS = ("io", "builtins", "traceback", "linecache", "types", "threading", "atexit")
"""What every child needs, imported once in the worker (they were half a child's time)."""

MARK_DONE, MARK_MEMORY = b"D", b"M"
DRAIN_AFTER_EXIT_S = 1.0
"""How long output pipes are drained after the execution's processes are killed."""


def encode_frame(obj) -> bytes:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return HEADER.pack(len(data)) + data


def _read_exact(fd: int, n: int):
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(fd: int):
    """The next frame from ``fd`` (blocking), or None at end of file."""
    head = _read_exact(fd, HEADER.size)
    if head is None:
        return None
    data = _read_exact(fd, HEADER.unpack(head)[0])
    return None if data is None else json.loads(data)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# ----------------------------------------------------------------------------- the child
def _apply_limits(limits: dict, isolated: bool) -> None:
    """rlimits of the execution (inherited by every process it starts).

    RLIMIT_NPROC counts processes per (user namespace, uid) since Linux 5.14 (ucounts), so
    inside the sandbox's own user namespace it counts this worker (1) plus the execution's
    processes and threads. Outside a sandbox it would count all of the user's processes
    (and is not enforced for root), so mode ``none`` leaves it alone."""
    mb = 1 << 20
    cpu = int(limits["cpu_s"])
    pairs = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),  # SIGXCPU at cpu_s, SIGKILL one second later
        (resource.RLIMIT_AS, limits["memory_mb"] * mb, limits["memory_mb"] * mb),
        (resource.RLIMIT_FSIZE, limits["file_mb"] * mb, limits["file_mb"] * mb),
        (resource.RLIMIT_NOFILE, 256, 256),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_MSGQUEUE, 0, 0),  # no POSIX message queues (they outlive processes)
    ]
    if isolated:
        pairs.append((resource.RLIMIT_NPROC, limits["nproc"] + 1, limits["nproc"] + 1))
    for which, soft, hard in pairs:
        resource.setrlimit(which, (soft, hard))


def _prepare_child(limits: dict, scratch: str, out_w: int, err_w: int, done_w: int,
                   isolated: bool) -> None:
    """Descriptors, directory, limits, environment and interpreter state of the child."""
    os.setsid()  # its own process group: what `none` mode kills afterwards
    null = os.open(os.devnull, os.O_RDONLY)
    for src, dst in ((null, 0), (out_w, 1), (err_w, 2), (done_w, 3)):
        os.dup2(src, dst)
    os.closerange(4, 1 << 20)  # the host's pipes and everything else the worker holds
    os.chdir(scratch)
    _apply_limits(limits, isolated)
    os.environ.clear()
    os.environ.update(CHILD_ENV, HOME=scratch, TMPDIR=scratch)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # As the interpreter sets them up for a pipe: stdout block-buffered, stderr by line.
    sys.stdin = open(0, "r", encoding="utf-8", closefd=False)
    sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", closefd=False,
                      buffering=1)
    sys.argv = ["main.py"]
    sys.path[0:0] = [scratch]  # as `python main.py` would: the script's directory first


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass


def _exit_status(code) -> int:
    """What ``python main.py`` exits with after ``raise SystemExit(code)``."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1


def _run_child(code: str, token: bytes) -> None:
    """Run ``code`` as ``__main__``; only a run that reaches its end writes the done mark.

    The mark (a random token on fd 3) separates "ran to the end" from an early
    ``sys.exit(0)`` or ``os._exit(0)``, which a unit-test grader must not count as a pass."""
    import builtins
    import linecache
    import types

    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    if "random" in sys.modules:  # never warmed, but re-seed it if anything imported it
        sys.modules["random"].seed()
    filename = "main.py"
    lines = code.splitlines(keepends=True)
    linecache.cache[filename] = (len(code), None, lines, filename)  # source in tracebacks
    status = 1
    try:
        exec(compile(code, filename, "exec"), main.__dict__)
        _finish_threads_and_atexit()
        _flush()
        _mark(MARK_DONE + token)
        status = 0
    except SystemExit as e:
        status = _exit_status(e.code)
    except MemoryError as e:
        _mark(MARK_MEMORY + token)
        _print_exception(e)
    except BaseException as e:
        _print_exception(e)
    _flush()
    os._exit(status)


def _mark(data: bytes) -> None:
    """Write to the done channel (fd 3), which the program may have closed."""
    try:
        os.write(3, data)
    except OSError:
        pass


def _print_exception(e: BaseException) -> None:
    """The traceback as ``python main.py`` prints it (without this wrapper's frame)."""
    import traceback

    try:
        traceback.print_exception(type(e), e, e.__traceback__.tb_next)
    except BaseException:
        pass


def _finish_threads_and_atexit() -> None:
    """As the interpreter does at exit: join non-daemon threads, run atexit handlers."""
    import atexit
    import threading

    for t in threading.enumerate():
        if t is not threading.main_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()


def _child_main(code: str, limits: dict, scratch: str, pipes: dict, isolated: bool,
                token: bytes) -> None:
    """The forked child from start to ``_exit``: it must never return into worker code,
    whatever the program raises or its signal handlers throw at any point."""
    try:
        try:
            _prepare_child(limits, scratch, pipes["stdout"][1], pipes["stderr"][1],
                           pipes["done"][1], isolated)
        except BaseException:
            os._exit(125)
        _run_child(code, token)
    finally:
        os._exit(1)


# ----------------------------------------------------------------------------- the parent
def _supervise(pid: int, fds: dict, limits: dict, host_fd: int) -> dict:
    """Read the child's pipes until it exits, a cap is hit or the deadline passes.

    ``fds`` maps the read ends {"stdout", "stderr", "done"} to fds. Returns the collected
    bytes and why supervision ended (``exited``, ``timeout``, ``output_limit``, ``host``)."""
    cap = limits["output_bytes"]
    data = {name: bytearray() for name in fds}
    by_fd = {fd: name for name, fd in fds.items()}
    poller = select.poll()
    for fd in fds.values():
        poller.register(fd, select.POLLIN)
    pidfd = os.pidfd_open(pid)
    poller.register(pidfd, select.POLLIN)
    poller.register(host_fd, 0)  # only POLLHUP: the host has gone away
    deadline = time.monotonic() + limits["timeout_s"]
    why = None
    try:
        while why is None:
            left = deadline - time.monotonic()
            if left <= 0:
                why = "timeout"
                break
            for fd, ev in poller.poll(left * 1000):
                if fd == pidfd:
                    why = why or "exited"
                elif fd == host_fd:
                    why = "host"
                elif ev & (select.POLLIN | select.POLLHUP):
                    why = _read_some(fd, data[by_fd[fd]], cap, poller) or why
    finally:
        os.close(pidfd)
    return {"why": why, "data": data}


def _read_some(fd: int, buf: bytearray, cap: int, poller) -> str | None:
    chunk = os.read(fd, 65536)
    if not chunk:
        poller.unregister(fd)
        return None
    buf += chunk
    if len(buf) > cap:
        del buf[cap:]
        return "output_limit"
    return None


def _drain(fds: dict, data: dict, cap: int) -> bool:
    """Whatever is still in the pipes once every writer is dead (bounded in time); True if
    that went over the cap."""
    end = time.monotonic() + DRAIN_AFTER_EXIT_S
    open_fds, over = dict(fds), False
    while open_fds and time.monotonic() < end:
        ready, _, _ = select.select(list(open_fds.values()), [], [], end - time.monotonic())
        for name, fd in list(open_fds.items()):
            if fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    del open_fds[name]
                    continue
                over = over or len(data[name]) + len(chunk) > cap
                data[name] += chunk[: max(0, cap - len(data[name]))]
    return over


def _kill_everything(pid: int, isolated: bool) -> None:
    """Kill every process the execution started, however it detached itself.

    Inside the sandbox we are PID 1, so kill(-1) reaches every other process of the
    namespace and nothing outside it; a process with SIGKILL pending cannot fork, so one
    pass stops a fork bomb. Outside a sandbox only the child's process group is killed (a
    process that called setsid() escapes: see `r1zero.sandbox`)."""
    try:
        if isolated:
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(pid: int) -> int | None:
    """Wait for the child; also collect orphans (we are their reaper as PID 1).
    Returns the child's wait status."""
    status = None
    while True:
        try:
            got, st = os.waitpid(-1, 0)
        except ChildProcessError:
            return status
        if got == pid:
            status = st


def _others_alive() -> list:
    """PIDs of this namespace other than ours (bwrap mode: should be none after a run)."""
    me = str(os.getpid())
    return [p for p in os.listdir("/proc") if p.isdigit() and p != me]


def _wipe(path: str) -> None:
    """Empty ``path`` (not the directory itself), whatever modes the code left behind."""
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.path, 0o700)
            _wipe(entry.path)
            os.rmdir(entry.path)
        else:
            os.unlink(entry.path)


def _clear_sysv_ipc() -> None:
    """Remove SysV shared memory, semaphores and message queues the execution created:
    they belong to the sandbox's IPC namespace and would outlive the processes."""
    tables = (("shm", 1), ("sem", 1), ("msg", 1))
    found = []
    for name, col in tables:
        try:
            with open(f"/proc/sysvipc/{name}") as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        found += [(name, int(r.split()[col])) for r in rows if r.strip()]
    if not found:
        return
    import ctypes  # only when an execution used SysV IPC

    libc = ctypes.CDLL(None, use_errno=True)
    IPC_RMID = 0
    for name, ident in found:
        if name == "shm":
            libc.shmctl(ident, IPC_RMID, None)
        elif name == "sem":
            libc.semctl(ident, 0, IPC_RMID)
        else:
            libc.msgctl(ident, IPC_RMID, None)


def _verdict(sup: dict, status, mem: bool, cpu_s: float, limits: dict) -> tuple:
    """(verdict, reason, exit_code) from how supervision ended and the wait status."""
    why = sup["why"]
    if status is None:
        code = None
    elif os.WIFSIGNALED(status):
        code = -os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    if why == "output_limit":
        return "output_limit", f"output over {limits['output_bytes']} bytes", code
    if why == "timeout":
        return "timeout", f"wall time over {limits['timeout_s']:g} s", code
    if why == "host":
        return "killed", "the host closed the sandbox", code
    if code == -signal.SIGXCPU or (code == -signal.SIGKILL and cpu_s >= limits["cpu_s"]):
        return "timeout", f"CPU time over {limits['cpu_s']} s", code
    if mem:
        return "memory", f"MemoryError (address space limit {limits['memory_mb']} MiB)", code
    if code == 0:
        return "ok", "", code
    if code is not None and code < 0:
        return "killed", f"killed by {signal.Signals(-code).name}", code
    return "error", f"exit code {code}", code


def _child_cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def execute(req: dict, isolated: bool, host_fd: int) -> dict:
    """Run one program (``req``: code, limits); returns the result frame."""
    limits = req["limits"]
    scratch = SCRATCH if isolated else _make_host_scratch()
    token = os.urandom(16)
    pipes = {name: os.pipe() for name in ("stdout", "stderr", "done")}
    cpu0, t0 = _child_cpu_s(), time.monotonic()
    pid = os.fork()
    if pid == 0:
        _child_main(req["code"], limits, scratch, pipes, isolated, token)  # never returns
    for _, w in pipes.values():
        os.close(w)
    fds = {name: r for name, (r, _) in pipes.items()}
    try:
        sup = _supervise(pid, fds, limits, host_fd)
        _kill_everything(pid, isolated)
        if _drain(fds, sup["data"], limits["output_bytes"]) and sup["why"] == "exited":
            sup["why"] = "output_limit"
    finally:
        for fd in fds.values():
            os.close(fd)
    status = _reap(pid)
    wall_s, cpu_s = time.monotonic() - t0, _child_cpu_s() - cpu0
    done = bytes(sup["data"]["done"])
    completed = done == MARK_DONE + token
    verdict, reason, code = _verdict(sup, status, done == MARK_MEMORY + token, cpu_s, limits)
    retire = _clean_up(scratch, isolated)
    out, err = (bytes(sup["data"][k]).decode("utf-8", "replace") for k in ("stdout", "stderr"))
    return {"stdout": out, "stderr": err, "exit_code": code, "verdict": verdict,
            "reason": reason, "completed": completed, "wall_s": wall_s, "cpu_s": cpu_s,
            "retire": retire}


def _make_host_scratch() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="r1zero-sandbox-")


def _clean_up(scratch: str, isolated: bool) -> str:
    """Leave nothing for the next execution; returns why this worker must be replaced
    (empty: it may go on)."""
    try:
        if isolated:
            _wipe(scratch)
            _clear_sysv_ipc()
            alive = _others_alive()
            if alive:
                return f"processes left running: {alive}"
            if os.listdir(scratch):
                return "scratch directory not empty"
        else:
            import shutil

            _wipe(scratch)
            shutil.rmtree(scratch)
    except Exception as e:  # a worker that cannot clean up is replaced, not reused
        return f"clean-up failed: {type(e).__name__}: {e}"
    return ""


# ----------------------------------------------------------------------------- main loop
def _harden_self() -> None:
    """Protect the worker from the code it runs (same uid inside the sandbox):
    non-dumpable, so no ptrace, /proc/1/mem or /proc/1/fd; SIGINT back to its default
    action, which PID 1 ignores when sent from inside its namespace (as it ignores SIGKILL
    and SIGSTOP), so the code cannot kill or stop the worker."""
    import ctypes

    PR_SET_DUMPABLE = 4
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def main(mode: str) -> None:
    isolated = mode == "bwrap"
    host_in, host_out = 0, 1
    if isolated and os.getpid() != 1:
        _write_all(host_out, encode_frame({"ready": False, "error": "worker is not PID 1"}))
        return
    _harden_self()
    for name in WARM_IMPORTS + CHILD_IMPORTS:
        __import__(name)
    import gc

    gc.freeze()  # children's collections skip the worker's objects (fewer copied pages)
    _write_all(host_out, encode_frame({"ready": True, "python": sys.version.split()[0],
                                       "pid": os.getpid(), "uid": os.getuid()}))
    me = os.getpid()
    while True:
        req = read_frame(host_in)
        if req is None:
            return
        result = execute(req, isolated, host_in)
        if os.getpid() != me:  # a child that escaped _child_main's _exit: never answer
            os._exit(1)
        _write_all(host_out, encode_frame(result))
        if result["retire"] or result["reason"] == "the host closed the sandbox":
            return


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bwrap")
