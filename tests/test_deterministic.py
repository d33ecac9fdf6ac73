"""`--deterministic`: two runs with the same seed write bitwise-identical metrics (every key
but the wall-clock ``time`` and the ``perf/`` timings and memory) and rollout files, in one
process and with `--cluster.learners 2`, with overlapped partial rollouts; the schedule is
pinned (step s sampled by version max(0, s - k))."""

from __future__ import annotations

import json
import time

import pytest
import torch

from r1zero.config import ClusterConfig, RolloutConfig
from r1zero.rollout.base import Completion
from r1zero.train import source as ro
from r1zero.train.trainer import train
from tests.test_train_loop import _cfg, tiny_dir  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def restore_determinism():
    """--deterministic switches torch's process-wide flag on; later tests get it back off."""
    before = torch.are_deterministic_algorithms_enabled()
    yield
    torch.use_deterministic_algorithms(before)


def _comparable(run):
    """metrics.jsonl without time and perf/, and every rollout file's bytes."""
    rows = [{k: v for k, v in json.loads(x).items() if k != "time" and not k.startswith("perf/")}
            for x in (run / "metrics.jsonl").read_text().splitlines()]
    rollouts = {p.name: p.read_bytes() for p in sorted((run / "rollouts").glob("*.jsonl"))}
    return rows, rollouts


KW = dict(steps=4, eval_every=2, save_every=0, max_staleness=2, rollout=RolloutConfig(partial=True),
          deterministic=True, lr=0.05, adam_eps=1e-2, max_new_tokens=12, rollout_samples=-1)


def test_two_runs_are_bitwise_identical(tiny_dir, tmp_path):  # noqa: F811
    train(_cfg(tiny_dir, tmp_path / "a", **KW))
    train(_cfg(tiny_dir, tmp_path / "b", **KW))
    a, b = _comparable(tmp_path / "a"), _comparable(tmp_path / "b")
    assert a[0] == b[0] and a[1] == b[1] and len(a[1]) == 4
    # The pinned schedule: step s (1-based) was sampled by version max(0, s - 1 - 2), every
    # token of it (version v = the weights after v updates).
    for step in range(1, 5):
        recs = [json.loads(x) for x in a[1][f"step_{step:06d}.jsonl"].decode().splitlines()]
        assert {v for r in recs for v, _ in r["token_versions"]} == {max(0, step - 3)}
    assert any("mismatch/kl_k3" in r for r in a[0]) and any("eval/accuracy" in r for r in a[0])


def _schedule(deterministic: bool, k: int = 2, steps: int = 6) -> list[int]:
    """The version that sampled each step with a slow producer and an instant learner."""
    def draw(step, version):
        time.sleep(0.03)
        return ro.Drawn(step, [], [Completion(0, 0, [1], [2], "x", "stop")], [], {}, torch.zeros(1), 1,
                        version, 0.0)

    source = ro.make_source(k, draw, lambda: None, 0, steps, deterministic=deterministic)
    try:
        versions = []
        for step in range(steps):
            versions.append(source.take(step).version)
            source.sync(step + 1)  # an instant update
    finally:
        source.close()
    return versions


def test_the_schedule_is_pinned():
    """Without --deterministic a fast learner's syncs reach steps already queued for the
    producer (newer versions, timing-dependent); with it, step s is sampled by s - k."""
    assert _schedule(True) == [0, 0, 0, 1, 2, 3]
    free = _schedule(False)
    assert all(v >= max(0, s - 2) for s, v in enumerate(free))


@pytest.mark.slow
def test_two_runs_with_two_learner_ranks_are_bitwise_identical(tiny_dir, tmp_path):  # noqa: F811
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        kw = dict(KW, cluster=ClusterConfig(learners=2, cpus_per_actor=0.5), steps=3, eval_every=0)
        train(_cfg(tiny_dir, tmp_path / "a", **kw))
        train(_cfg(tiny_dir, tmp_path / "b", **kw))
    finally:
        ray.shutdown()
    a, b = _comparable(tmp_path / "a"), _comparable(tmp_path / "b")
    assert a == b and len(a[1]) == 3
