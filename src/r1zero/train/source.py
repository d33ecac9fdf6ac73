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
update; the off-policy correction (`--algo.is-correction`, token-level TIS by default when
k >= 1: min(π_old / π_sampler, cap)) corrects for the older sampler.

With ``--rollout.partial`` (`Partial`) a sync does not wait for the draw in flight: the
engine takes the new weights between two tokens, so a response's later tokens are sampled
by newer versions (every token records its own; `rollout/token_staleness_*`):

    producer:  G1 (v=0 tokens) ┬ (v=1 tokens) ┐ G2 ...
    learner:   U0 ─── S(v=1) ──┘              └ U1 ...   (S lands between two tokens of G1)

``--deterministic`` pins the schedule (step s sampled by version max(start, s - k), in-flight
updates wait for the draw) so that two runs are bitwise identical. A checkpoint holds the
steps drawn and not yet trained on (`quiesced`, `waiting`; train/ahead.py), and a resume
takes them first: nothing drawn is lost, no (prompt, seed) is skipped or repeated.

Works the same in one process (the producer thread drives the in-process engine, which
then holds its own copy of the weights) and on a cluster (it drives the engine actors; the
learner ranks train meanwhile; partial rollouts: in-process engines only).

A source knows nothing of the trainer: the loop hands it two callables, ``draw(step,
version) -> Drawn`` (generate and grade one step) and ``sync()`` (new weights to the
engines), `make_source`.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
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
    """Step minus the weight version that sampled each response (``rollout/staleness_*``:
    its first token's) and each token (``rollout/token_staleness_*``): 0 on-policy, at most
    max_staleness; with partial rollouts a response's later tokens are fresher."""
    lags = [drawn.step - c.weight_version for c in drawn.completions]
    tokens = [drawn.step - v for c in drawn.completions
              for v in (c.token_versions or [c.weight_version] * len(c.token_ids))]
    nan = float("nan")
    return {"rollout/staleness_mean": sum(lags) / len(lags) if lags else nan,
            "rollout/staleness_max": float(max(lags, default=nan)),
            "rollout/token_staleness_mean": sum(tokens) / len(tokens) if tokens else nan,
            "rollout/token_staleness_max": float(max(tokens, default=nan))}


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

    def quiesced(self):
        """No draw in flight while the context is open (a checkpoint): none ever is here."""
        return contextlib.nullcontext()

    def waiting(self) -> list[Drawn]:
        """Steps drawn and not yet taken: none, on-policy."""
        return []

    def close(self) -> None:
        pass


class Overlapped:
    """``max_staleness = k >= 1``: a producer thread draws steps ahead (see the module
    docstring). ``version`` starts at the first step to train (a resumed run's engines
    hold its checkpoint); ``ahead`` are steps a checkpoint held drawn and not yet trained
    on (they are taken first; the producer goes on after them). ``deterministic`` pins
    the schedule: step s is sampled by version max(start, s - k) exactly, because a sync
    to version v waits until every step up to v - 1 + k is drawn."""

    def __init__(self, draw: Draw, sync: Callable[[], None], k: int, start: int, steps: int, *,
                 ahead: Sequence[Drawn] = (), deterministic: bool = False) -> None:
        self.draw, self.push, self.k, self.steps = draw, sync, k, steps
        self.version = start
        self.deterministic = deterministic
        self.engine_lock = threading.Lock()
        self.cond = threading.Condition()
        self.pending: int | None = None  # a sync's version, until the engines hold it
        self.drawing = self.paused = self.stopped = self.failed = False
        self.ready: queue.Queue = queue.Queue()
        for d in ahead:
            self.ready.put(d)
        first = start + len(ahead)
        self.drawn_through = first - 1  # the last step put in `ready`
        self.thread = threading.Thread(target=self._produce, args=(first,), daemon=True,
                                       name="r1zero-rollouts")
        self.thread.start()

    def _produce(self, first: int) -> None:
        try:
            for step in range(first, self.steps):
                if not self._turn(step):
                    return
                drawn = self._draw(step)
                with self.cond:
                    self.ready.put(drawn)
                    self.drawn_through, self.drawing = step, False
                    self.cond.notify_all()
        except BaseException as e:  # noqa: BLE001  (handed to the loop, which raises it)
            with self.cond:
                self.failed, self.drawing = True, False
                self.cond.notify_all()
            self.ready.put(e)

    def _turn(self, step: int) -> bool:
        """Wait until ``step`` is within k versions of the engines', no sync is pending and
        no checkpoint holds the producer; False when the source was closed."""
        with self.cond:
            self.cond.wait_for(lambda: self.stopped or (
                step - self.version <= self.k and self.pending is None and not self.paused))
            self.drawing = not self.stopped
            return self.drawing

    def _draw(self, step: int) -> Drawn:
        with self.engine_lock:
            return self.draw(step, self.version)  # changes only under engine_lock: exact stamp

    def take(self, step: int) -> Drawn:
        got = self.ready.get()
        if isinstance(got, BaseException):
            raise RuntimeError(f"the rollout producer failed while drawing step {step + 1}: "
                               f"{type(got).__name__}: {got}") from got
        assert got.step == step, (got.step, step)
        return got

    def _post(self, version: int) -> None:
        """Announce a sync (no new draw starts until it is applied); with ``deterministic``
        first wait until every step the old version must sample is drawn."""
        with self.cond:
            if self.deterministic:
                through = min(version - 1 + self.k, self.steps - 1)
                self.cond.wait_for(lambda: self.drawn_through >= through or self.stopped or self.failed)
            self.pending = version

    def _apply(self) -> None:
        """Push the pending weights to the engines (by whoever holds them) and record it."""
        with self.cond:
            version = self.pending
        if version is None:
            return
        self.push()
        with self.cond:
            self.version, self.pending = version, None
            self.cond.notify_all()

    def sync(self, version: int) -> None:
        """New weights to the engines, after the draw in flight, before the next one."""
        self._post(version)
        with self.engine_lock:
            self._apply()

    def engines(self):
        return self.engine_lock

    @contextlib.contextmanager
    def quiesced(self):
        """No draw in flight and none starting while the context is open (a checkpoint
        reads `waiting` inside it, so that it holds every step drawn so far)."""
        with self.cond:
            self.paused = True
            self.cond.wait_for(lambda: not self.drawing or self.stopped)
        try:
            yield
        finally:
            with self.cond:
                self.paused = False
                self.cond.notify_all()

    def waiting(self) -> list[Drawn]:
        """Steps drawn and not yet taken, in step order (read inside `quiesced`)."""
        return [d for d in list(self.ready.queue) if isinstance(d, Drawn)]

    def close(self) -> None:
        """Stop drawing; a draw in flight is abandoned (the process is ending or the run
        is over: at most in-flight rollouts are lost)."""
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


class Partial(Overlapped):
    """``--rollout.partial``: a sync does not wait for the draw in flight. The engine takes
    the new weights between two tokens (its `r1zero.rollout.base.UpdateHook`, this
    source's `_between_tokens`, called from the producer's thread), records the version of
    every token and recomputes its cache of the unfinished samples with them. A sync that
    arrives while no draw is in flight (or while the draw grades, and no token is being
    generated) is applied by the loop itself, as in `Overlapped`."""

    def __init__(self, draw: Draw, sync: Callable[[], None], k: int, start: int, steps: int,
                 engine: object, **kw) -> None:
        if not hasattr(engine, "update_hook"):
            raise ValueError(f"--rollout.partial: the {type(engine).__name__} engine cannot take "
                             "new weights between two tokens; drop --rollout.partial")
        self.engine = engine
        engine.update_hook = self._between_tokens  # called only once the thread generates
        super().__init__(draw, sync, k, start, steps, **kw)

    def _between_tokens(self) -> int:
        """Apply a pending sync (the loop waits for it; the learner is idle), return the
        version the engines hold."""
        self._apply()
        with self.cond:
            return self.version

    def sync(self, version: int) -> None:
        self._post(version)
        with self.cond:  # applied between two tokens by the producer, or the draw ends
            self.cond.wait_for(lambda: self.pending is None or not self.drawing
                               or self.stopped or self.failed)
            if self.pending is None:
                return
        with self.engine_lock:  # no draw in flight, and none starts while a sync is pending
            self._apply()

    def close(self) -> None:
        super().close()
        self.engine.update_hook = None


RolloutSource = OnPolicy | Overlapped


def make_source(max_staleness: int, draw: Draw, sync: Callable[[], None], start: int,
                steps: int, *, partial_engine: object | None = None, ahead: Sequence[Drawn] = (),
                deterministic: bool = False) -> RolloutSource:
    """The run's rollout source: `OnPolicy` for max_staleness 0, else `Overlapped`, or
    `Partial` when ``partial_engine`` (the engine whose generation takes new weights
    between two tokens, ``--rollout.partial``) is given. ``ahead``: steps a checkpoint
    held drawn and not yet trained on; ``deterministic``: the pinned schedule."""
    if max_staleness == 0:
        return OnPolicy(draw, sync)
    kw = dict(ahead=ahead, deterministic=deterministic)
    if partial_engine is not None:
        return Partial(draw, sync, max_staleness, start, steps, partial_engine, **kw)
    return Overlapped(draw, sync, max_staleness, start, steps, **kw)
