"""Where a step's rollout comes from: drawn now (on-policy) or ahead of the learner by a
producer thread, at most ``max_staleness`` weight versions old.

Weight version v = the number of rollout steps whose update the engines hold (version 0 is
the initial model; after step s's update and sync the engines hold version s + 1). The
rollout of step s sampled by version v has staleness ``s - v``:

    max_staleness = 0   on-policy (the default, today's loop): step s is drawn after step
                        s - 1's sync, by version s; staleness 0. Nothing runs in parallel.
    max_staleness = k   a producer thread draws (generates and grades) step s as soon as
                        s - v <= k for the version v the engines hold, while the learner
                        trains on an earlier step. Step s is never sampled by a version
                        older than s - k.

Timeline with k = 1 (G = generate + grade, U = update, S = sync):

    producer:  G0 ─────┐ G1 ──────────┐ G2 ──────────┐
    learner:           └ U0 ─ S(v=1) ─┴ U1 ─ S(v=2) ──┴ U2 ...
                         (G1 runs with v=0 while U0 runs; staleness 1)

The engines serve one caller at a time (`engine_lock`): the producer's draw, a sync, an
evaluation. A pending sync goes before the producer's next draw, so the versions advance
as soon as the learner has them. The learner's π_old is its own policy at the start of the
update, and the truncated importance weight min(π_old / π_sampler, cap) (`--algo.tis-cap`,
on by default when k >= 1) corrects for the older sampler token by token.

Works the same in one process (the producer thread drives the in-process engine, which
then holds its own copy of the weights) and on a cluster (it drives the engine actors; the
learner ranks train meanwhile). A crash loses at most the in-flight rollouts: checkpoints
hold trained steps only, and a resume draws its first step afresh.

A source knows nothing of the trainer: the loop hands it two callables, ``draw(step,
version) -> Drawn`` (generate and grade one step) and ``sync()`` (new weights to the
engines), `make_source`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from r1zero.rollout.base import Completion
from r1zero.tasks import Problem, TaskVerdict


@dataclass
class Drawn:
    """One step's scored rollout (all dynamic-sampling draws), prompt-major."""

    step: int
    problems: list[Problem]
    completions: list[Completion]
    verdicts: list[TaskVerdict]
    reward_parts: dict[str, torch.Tensor]
    """``{name: [B*G]}`` the reward's components (`r1zero.train.trainer.reward_components`)."""
    rewards: torch.Tensor
    """``[B*G]`` shaped rewards (`r1zero.train.trainer.shaped_rewards` of the parts)."""
    draws: int
    version: int
    """Weight version that sampled it (also stamped on every completion)."""
    seconds: float
    """Wall time of drawing it (generation + grading), wherever it ran."""


def staleness_metrics(drawn: Drawn) -> dict[str, float]:
    """``rollout/staleness_mean`` / ``_max``: step minus the weight version that sampled
    each response (0 on-policy; at most max_staleness). A step is drawn under one version
    (`draw_step` holds the engines throughout), so mean and max are that one lag."""
    lag = float(drawn.step - drawn.version)
    return {"rollout/staleness_mean": lag, "rollout/staleness_max": lag}


Draw = Callable[[int, int], Drawn]
"""``draw(step, version)``: generate and grade rollout step ``step`` with the engines at
weight ``version`` (train/trainer.py's `draw_step`)."""


class OnPolicy:
    """``max_staleness = 0``: each step is drawn when the loop asks for it."""

    def __init__(self, draw: Draw, sync: Callable[[], None]) -> None:
        self.draw, self.push = draw, sync

    def take(self, step: int) -> Drawn:
        return self.draw(step, step)

    def sync(self, version: int) -> None:
        self.push()

    def engines(self):
        """Exclusive use of the engines (evaluation): nothing else uses them here."""
        return contextlib.nullcontext()

    def close(self) -> None:
        pass


class Overlapped:
    """``max_staleness = k >= 1``: a producer thread draws steps ahead (see the module
    docstring). ``version`` starts at the first step to train (a resumed run's engines
    hold its checkpoint)."""

    def __init__(self, draw: Draw, sync: Callable[[], None], k: int, start: int, steps: int) -> None:
        self.draw, self.push, self.k, self.steps = draw, sync, k, steps
        self.version = start
        self.engine_lock = threading.Lock()
        self.cond = threading.Condition()
        self.sync_pending = False
        self.stopped = False
        self.ready: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._produce, args=(start,), daemon=True,
                                       name="r1zero-rollouts")
        self.thread.start()

    def _produce(self, start: int) -> None:
        try:
            for step in range(start, self.steps):
                with self.cond:  # wait until step is within k versions of the engines'
                    self.cond.wait_for(lambda s=step: self.stopped or (
                        s - self.version <= self.k and not self.sync_pending))
                    if self.stopped:
                        return
                with self.engine_lock:
                    version = self.version  # changes only under engine_lock: exact stamp
                    drawn = self.draw(step, version)
                self.ready.put(drawn)
        except BaseException as e:  # noqa: BLE001  (handed to the loop, which raises it)
            self.ready.put(e)

    def take(self, step: int) -> Drawn:
        got = self.ready.get()
        if isinstance(got, BaseException):
            raise RuntimeError(f"the rollout producer failed while drawing step {step + 1}: "
                               f"{type(got).__name__}: {got}") from got
        assert got.step == step, (got.step, step)
        return got

    def sync(self, version: int) -> None:
        """New weights to the engines, before the producer's next draw."""
        with self.cond:
            self.sync_pending = True
        try:
            with self.engine_lock:
                self.push()
                with self.cond:
                    self.version = version
        finally:
            with self.cond:
                self.sync_pending = False
                self.cond.notify_all()

    def engines(self):
        return self.engine_lock

    def close(self) -> None:
        """Stop drawing; a draw in flight is abandoned (the process is ending or the run
        is over: at most in-flight rollouts are lost)."""
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


RolloutSource = OnPolicy | Overlapped


def make_source(max_staleness: int, draw: Draw, sync: Callable[[], None], start: int,
                steps: int) -> RolloutSource:
    """The run's rollout source: `OnPolicy` for max_staleness 0, else `Overlapped`."""
    if max_staleness == 0:
        return OnPolicy(draw, sync)
    return Overlapped(draw, sync, max_staleness, start, steps)
