"""The rewards phase off the driver: a pool of worker processes that verify a step's
responses in parallel (``--reward-workers N``).

Each worker builds the task once from its `TaskConfig` (a registered name or a user's
``package.module:factory``) and then verifies chunks of (response, problem) pairs with the
same `verify_all` call the driver would make, so the verdicts are the driver's, in input
order. The math grader's per-call time limit keeps working inside a worker: each worker
runs its sympy comparisons in its own killable subprocess (`r1zero.grading.worker`),
capped at one, so N reward workers mean at most N sympy processes.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from r1zero.config import JudgeConfig, TaskConfig
from r1zero.grading.worker import POOL
from r1zero.tasks import Problem, Task, TaskVerdict, get_task, verify_all
from r1zero.templates import Template

CHUNKS_PER_WORKER = 8
"""A batch is cut into about this many contiguous chunks per worker: enough that a worker
that drew the slow responses (the few that need sympy take most of the time) does not
leave the others idle, few enough that the per-chunk cost (a round trip, ~1 ms) stays
negligible. Contiguous, so a group's responses (often the same answer) share a worker's
answer cache."""

# "spawn", not "fork": the driver holds torch's OpenMP threads and, on a GPU, CUDA and
# vLLM state; forking a multi-threaded process can deadlock the child on a lock another
# thread held, and CUDA cannot be used after a fork. A spawned worker starts a fresh
# interpreter (~1-2 s of imports, once per run, overlapping the first rollout) and
# behaves the same on Linux and macOS. "forkserver" would start workers faster but shares one
# server (and its preload list) with every other user of that context in the process.
START_METHOD = "spawn"


class VerifierPoolError(RuntimeError):
    """The pool could not produce verdicts (workers failed to start or kept dying)."""


# ----------------------------------------------------------------------------- worker side
_TASK: Task | None = None
_TEMPLATE: Template | None = None


def _init_worker(task_cfg: TaskConfig, judge: JudgeConfig | None, template: Template) -> None:
    """Per-process set-up: ignore Ctrl-C, cap sympy at one subprocess, build the task.

    Ctrl-C reaches every process of the terminal's foreground group; the driver decides
    how to stop (finish the step, save), so a worker must not die under it. The ignored
    disposition is inherited by the sympy subprocess too.
    """
    global _TASK, _TEMPLATE
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One thread calls the grader here, so one sympy process suffices; the cap makes that
    # explicit (no process explosion whatever the grader's default MAX_WORKERS).
    POOL.max_workers = 1
    # Pool workers leave through os._exit, which skips atexit: close the sympy process from
    # multiprocessing's own exit hook instead (a clean shutdown runs it).
    multiprocessing.util.Finalize(None, POOL.close, exitpriority=0)
    threading.Thread(target=_exit_with_driver, args=(POOL,), daemon=True).start()
    _TASK = get_task(task_cfg, judge)
    _TEMPLATE = template


def _exit_with_driver(sympy_pool) -> None:
    """Watchdog thread: if the driver dies without closing the pool (kill -9, the OOM
    killer), the worker would wait for work forever; leave with it instead."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    parent.join()  # returns once the driver's end of the start-up pipe is closed
    sympy_pool.close()
    os._exit(1)


def _started() -> int:
    """A no-op task: submitting one per worker starts the processes."""
    return os.getpid()


def _verify_chunk(responses: list[str], problems: list[Problem]) -> list[TaskVerdict]:
    """Verify one chunk with this worker's task, in order, exactly as the driver would
    (`verify_all`: the task's ``verify_batch`` when it has one)."""
    return verify_all(_TASK, responses, problems, template=_TEMPLATE)


# ----------------------------------------------------------------------------- driver side
def chunk_bounds(n: int, workers: int, per_worker: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, end)`` ranges covering ``range(n)``: about ``per_worker``
    chunks per worker, each at least one item."""
    size = max(1, math.ceil(n / max(1, workers * per_worker)))
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


class VerifierPool:
    """``workers`` persistent processes verifying responses with the task of ``task_cfg``.

    ``verify(responses, problems)`` returns the verdicts in input order, the same as
    ``verify_all(task, responses, problems)`` in the driver. If a worker dies (the OS killed it, a verifier
    crashed the interpreter), the pool is restarted once and the batch verified again
    (verdicts are a pure function of the response and problem, so the retry gives the
    same rewards); a second death raises `VerifierPoolError`. Never a guessed reward.
    """

    def __init__(self, task_cfg: TaskConfig, template: Template, workers: int,
                 judge: JudgeConfig | None = None) -> None:
        if workers < 1:
            raise ValueError(f"VerifierPool needs workers >= 1, got {workers}")
        self.task_cfg, self.judge = task_cfg, judge
        self.template = template
        self.workers = workers
        self._lock = threading.Lock()
        self._closed = False
        self._executor, self._started = self._start()

    def _start(self) -> tuple[ProcessPoolExecutor, list[Future]]:
        """A fresh executor whose processes start now (one no-op task each), so their
        imports overlap whatever the driver does next (the first rollout)."""
        executor = ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context(START_METHOD),
            initializer=_init_worker, initargs=(self.task_cfg, self.judge, self.template))
        return executor, [executor.submit(_started) for _ in range(self.workers)]

    def verify(self, responses: Sequence[str], problems: Sequence[Problem]) -> list[TaskVerdict]:
        """Verdicts for ``responses[i]`` against ``problems[i]``, in input order."""
        if len(responses) != len(problems):
            raise ValueError(f"{len(responses)} responses but {len(problems)} problems")
        if self._closed:
            raise VerifierPoolError("the reward pool is closed")
        executor = self._executor
        try:
            self._wait_started()
            return self._run(executor, responses, problems)
        except BrokenProcessPool as e:
            print(f"warning: a reward worker process died ({e}); restarting the pool of "
                  f"{self.workers} and verifying the {len(responses)} responses again",
                  file=sys.stderr)
            self._restart(executor)
        try:
            self._wait_started()
            return self._run(self._executor, responses, problems)
        except BrokenProcessPool as e:
            raise VerifierPoolError(
                f"a reward worker process died twice while verifying {len(responses)} "
                f"responses of task {self.task_cfg.name!r}: the task's verifier crashed the "
                "interpreter, or the OS killed the worker (out of memory?). No rewards were "
                "computed. Run with --reward-workers 0 to verify in the driver process (a "
                "crash there shows its traceback), or use fewer workers if memory is short"
            ) from e

    def _wait_started(self) -> None:
        """Raise `VerifierPoolError` if the workers could not build the task at start-up."""
        try:
            for f in self._started:
                f.result()
        except BrokenProcessPool as e:
            raise VerifierPoolError(
                f"reward worker processes could not start: building task "
                f"{self.task_cfg.name!r} from its TaskConfig in a fresh process failed (a "
                "worker's 'Exception in initializer' traceback, if any, is printed above). "
                "A user task's module must be importable in a new interpreter; or run "
                "with --reward-workers 0 to verify in the driver process") from e

    def _run(self, executor: ProcessPoolExecutor, responses: Sequence[str],
             problems: Sequence[Problem]) -> list[TaskVerdict]:
        """Submit every chunk, then collect in order (BrokenProcessPool propagates)."""
        futures = [executor.submit(_verify_chunk, list(responses[lo:hi]), list(problems[lo:hi]))
                   for lo, hi in chunk_bounds(len(responses), self.workers, CHUNKS_PER_WORKER)]
        out: list[TaskVerdict] = []
        for f in futures:
            out += f.result()
        return out

    def _restart(self, broken: ProcessPoolExecutor) -> None:
        """Replace ``broken`` with a fresh executor (once, if several threads saw it break)."""
        with self._lock:
            if self._executor is broken and not self._closed:
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor, self._started = self._start()

    def close(self) -> None:
        """Stop the workers (and their sympy processes). Safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> VerifierPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
