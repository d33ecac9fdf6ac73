"""Shared by the sandbox tests: whether a sandbox works here (else those tests skip with
the reason and its fix), and a check that an execution left nothing behind."""

import functools

import pytest

from r1zero.sandbox import probe


@functools.lru_cache(maxsize=1)
def sandbox_here() -> tuple[bool, str]:
    return probe()


needs_sandbox = pytest.mark.skipif(not sandbox_here()[0], reason=f"no sandbox: {sandbox_here()[1]}")

LEFTOVERS = """\
import os
me = os.getpid()
others = sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, me))
print(others, sorted(os.listdir('/tmp')))
"""
"""Prints the sandbox's other processes (besides the worker, PID 1) and /tmp's entries."""


def assert_clean(pool) -> None:
    """The next execution in ``pool`` starts with no stray process and an empty /tmp."""
    r = pool.run(LEFTOVERS)
    assert r.ok, r
    assert r.stdout == "[] []\n", f"leftovers from the previous execution: {r.stdout}"
