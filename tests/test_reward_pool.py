"""The reward pool (train/verifier_pool.py): verdicts identical to serial verification for
math, countdown and a user task; a killed worker is replaced; a worker that keeps dying or
cannot build the task is a clear error; a training run's rewards do not change with
--reward-workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from dataclasses import replace

import pytest

from r1zero.config import RESUME_MAY_CHANGE, ConfigError, TaskConfig, TrainConfig
from r1zero.tasks import Problem, TaskVerdict, get_task
from r1zero.templates import get_template
from r1zero.train.verifier_pool import VerifierPool, VerifierPoolError, chunk_bounds
from tests.test_train_loop import tiny_dir  # noqa: F401  (fixture)

QWEN_MATH = get_template("qwen_math")
R1 = get_template("r1")


class ProbeTask:
    """A user task (``module:factory``) whose verdict is the response's length parity, with
    probes: "PID" answers the worker's process id, "CRASH" kills the worker, "SYMPY" runs
    the grader's sympy process past a deadline and then within one."""

    name = "probe"
    default_template = "no"

    def __init__(self, cfg):
        self.cfg = cfg

    def problems(self, split):
        return [Problem(f"{split}-{i}", f"q{i}", str(i)) for i in range(4)]

    def verify(self, response, problem, *, template):
        if response == "PID":
            return TaskVerdict(0.0, False, True, str(os.getpid()))
        if response == "CRASH":
            os._exit(3)  # what a segfaulting C extension or the OOM killer looks like
        if response == "SYMPY":
            return _sympy_probe()
        ok = (len(response) + len(problem.answer)) % 2 == 0
        return TaskVerdict(float(ok), ok, True, "correct" if ok else "wrong_value", response[:3])


def _sympy_probe() -> TaskVerdict:
    """In a worker: a comparison past its deadline is cut off (the sympy process is killed
    and replaced), the next one answers; reason = "<first>,<second>,<sympy cap>"."""
    from r1zero.grading.worker import POOL, WorkerTimeout

    POOL.compare("1", "1", timeout_s=60)  # the sympy process is up
    try:
        first = str(POOL.compare("\\sqrt{8}", "2\\sqrt{2}", timeout_s=1e-9))
    except WorkerTimeout:
        first = "timeout"
    second = str(POOL.compare("\\sqrt{8}", "2\\sqrt{2}", timeout_s=60))
    return TaskVerdict(0.0, False, True, f"{first},{second},{POOL.max_workers}")


def make_probe_task(cfg):
    return ProbeTask(cfg)


def make_task_only_in_driver(cfg):
    """A factory that fails in any process but the driver (e.g. a missing local file)."""
    if multiprocessing.parent_process() is not None:
        raise FileNotFoundError("problems.jsonl (only the driver has it)")
    return ProbeTask(cfg)


PROBE = TaskConfig(name="tests.test_reward_pool:make_probe_task")


def _serial(task_cfg, template, responses, problems):
    task = get_task(task_cfg)
    return [task.verify(r, p, template=template) for r, p in zip(responses, problems)]


# ----------------------------------------------------------------------------- pure parts
def test_chunk_bounds_cover_the_batch_in_order():
    for n, workers in [(0, 2), (1, 2), (7, 2), (1024, 2), (1024, 3), (5, 8)]:
        bounds = chunk_bounds(n, workers, 4)
        assert [i for lo, hi in bounds for i in range(lo, hi)] == list(range(n))
        assert all(hi > lo for lo, hi in bounds)
    assert chunk_bounds(1024, 2, 4) == [(k * 128, (k + 1) * 128) for k in range(8)]


def test_config_flag():
    assert TrainConfig().reward_workers == 0  # serial by default
    with pytest.raises(ConfigError, match="reward_workers"):
        TrainConfig(reward_workers=-1).validate()
    assert "reward_workers" in RESUME_MAY_CHANGE  # how grading runs does not change the run


# ----------------------------------------------------------------------------- verdicts
def _math_cases():
    """(response, gold): correct, wrong, unparsable, boxed, unboxed, equivalent-by-sympy,
    several golds, and a long response ending in its answer."""
    long = "Let me reason step by step. " * 400
    cases = [
        ("So the answer is $\\boxed{42}$.", "42"),
        ("So the answer is $\\boxed{41}$.", "42"),
        ("The final answer is 42.", "42"),  # unboxed: no answer under the boxed reward
        ("\\boxed{\\frac{1}{2}}", "0.5"),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}"),  # sympy, in the worker's sympy process
        ("\\boxed{x^2+2x+1}", "(x+1)^2"),
        ("\\boxed{\\frac{1}{2", "\\frac12"),  # unclosed box
        ("\\boxed{}", "3"),
        ("\\boxed{(1,2)}", "(1, 2)"),
        ("\\boxed{\\pi/2}", "\\frac{\\pi}{2}"),
        ("\\boxed{3}", ["3", "three"]),
        ("\\boxed{7}", ["3", "three"]),
        (long + "\\boxed{\\dfrac{3}{4}}", "\\frac34"),
        (long + "wait, recheck: \\boxed{5} no, \\boxed{6}", "5"),
        (None, "1"),  # a failed request
    ]
    responses = [r for r, _ in cases]
    problems = [Problem(f"m{i}", "q", g) for i, (_, g) in enumerate(cases)]
    return responses, problems


def test_math_verdicts_match_serial():
    responses, problems = _math_cases()
    cfg = TaskConfig(name="math")
    with VerifierPool(cfg, QWEN_MATH, workers=2) as pool:
        got = pool.verify(responses, problems)
    want = _serial(cfg, QWEN_MATH, responses, problems)
    assert got == want
    assert {v.reason for v in want} >= {"correct", "wrong_answer", "no_answer", "bad_input"}
    assert sum(v.correct for v in want) >= 7


def test_countdown_verdicts_match_serial():
    cfg = TaskConfig(name="countdown", num_train=6, num_test=1)
    problems = get_task(cfg).problems("train")
    responses = []
    for p in problems:
        responses += [f"</think> <answer>{p.meta['solution']}</answer>",  # 1.0
                      "</think> <answer>1 + 2</answer>",  # wrong numbers: 0.1
                      "no tags at all"]  # 0
    golds = [p for p in problems for _ in range(3)]
    with VerifierPool(cfg, R1, workers=1) as pool:
        got = pool.verify(responses, golds)
    want = _serial(cfg, R1, responses, golds)
    assert got == want
    assert sorted({v.reward for v in want}) == [0.0, 0.1, 1.0]


# ----------------------------------------------------------------------------- user task, failures
@pytest.fixture(scope="module")
def probe_pool():
    """Two workers running the user task; shared (worker start-up is ~1.5 s of CPU each)."""
    with VerifierPool(PROBE, QWEN_MATH, workers=2) as pool:
        yield pool


def _worker_pids(pool, n=16):
    """Pids of the workers that served a batch of "PID" probes."""
    return {int(v.reason) for v in pool.verify(["PID"] * n, [Problem("p", "q", "1")] * n)}


PARITY = (["x" * i for i in range(40)], [Problem(f"p{i}", "q", str(i)) for i in range(40)])


def test_user_task_verdicts_match_serial(probe_pool):
    responses, problems = PARITY
    want = _serial(PROBE, QWEN_MATH, responses, problems)
    assert probe_pool.verify(responses, problems) == want
    assert {v.reward for v in want} == {0.0, 1.0}


def test_grader_time_limit_holds_in_a_worker_with_one_sympy_process(probe_pool):
    (v,) = probe_pool.verify(["SYMPY"], [Problem("p", "q", "1")])
    assert v.reason == "timeout,True,1"  # cut off; the replacement answers; cap 1


def test_a_killed_worker_is_replaced(probe_pool, capsys):
    responses, problems = PARITY
    victim = _worker_pids(probe_pool).pop()
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30  # until the executor has seen it die
    while victim in {p.pid for p in multiprocessing.active_children()}:
        assert time.monotonic() < deadline, "the killed worker is still listed"
        time.sleep(0.05)
    time.sleep(0.3)
    assert probe_pool.verify(responses, problems) == _serial(PROBE, QWEN_MATH, responses, problems)
    assert victim not in _worker_pids(probe_pool)
    assert "reward worker process died" in capsys.readouterr().err


def test_a_worker_that_keeps_dying_is_a_clear_error_and_close_is_idempotent():
    pool = VerifierPool(PROBE, QWEN_MATH, workers=1)
    with pytest.raises(VerifierPoolError, match="died twice.*--reward-workers 0"):
        pool.verify(["ok", "CRASH"], [Problem("p", "q", "1")] * 2)
    pool.close()
    pool.close()
    with pytest.raises(VerifierPoolError, match="closed"):
        pool.verify(["ok"], [Problem("p", "q", "1")])


def test_a_task_that_cannot_be_built_in_a_worker_is_a_clear_error():
    cfg = TaskConfig(name="tests.test_reward_pool:make_task_only_in_driver")
    get_task(cfg)  # fine here
    with (VerifierPool(cfg, QWEN_MATH, workers=1) as pool,
          pytest.raises(VerifierPoolError, match="could not start.*make_task_only_in_driver")):
        pool.verify(["a"], [Problem("p", "q", "1")])


# ----------------------------------------------------------------------------- training
def _rewards(run_dir):
    """Per-step reward and eval metrics, and every rollout's verdict."""
    metrics = [{k: v for k, v in json.loads(line).items() if k.startswith(("reward/", "eval/acc"))}
               for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    rollouts = sorted((run_dir / "rollouts").glob("*.jsonl"))
    samples = [(r["response"], r["reward"], r["correct"]) for f in rollouts
               for r in map(json.loads, f.read_text().splitlines())]
    return metrics, samples


def test_training_rewards_do_not_depend_on_reward_workers(tiny_dir, tmp_path):
    from r1zero.train.trainer import train
    from tests.test_train_loop import _cfg

    runs = {}
    for workers in (0, 2):
        run = tmp_path / f"w{workers}"
        train(replace(_cfg(tiny_dir, run, save_every=0, eval_every=2, rollout_samples=-1),
                      reward_workers=workers))
        runs[workers] = _rewards(run)
    metrics, samples = runs[2]
    assert runs[0] == runs[2]
    assert len(metrics) == 3 and len(samples) == 16  # steps 0 (eval), 1, 2 (+ eval)
    assert len({s[1] for s in samples}) == 2  # parity rewards: both 0 and 1 occur
