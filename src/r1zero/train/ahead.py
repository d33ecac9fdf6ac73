"""Steps drawn ahead and not yet trained on, kept in a checkpoint (``rollouts_ahead.pt``), so
that an overlapped run (``--max-staleness k``) resumes losslessly: the resumed loop trains
on exactly those rollouts first (the same responses, sampled by the same weight versions)
and its producer goes on after them. Nothing is skipped, nothing repeated, no generation
is thrown away.

Only versions the resumed run shares are kept: a checkpoint at step S holds the weights of
version S, and every step drawn before it was sampled by versions <= S (the checkpoint is
written while no draw is in flight, `RolloutSource.quiesced`). Written as plain records
(dicts, lists, tensors) so the file does not depend on the classes' import paths.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from r1zero.rollout.base import Completion
from r1zero.tasks import Problem, TaskVerdict
from r1zero.train.source import Drawn

AHEAD_FILE = "rollouts_ahead.pt"
FORMAT = 1


def to_record(d: Drawn) -> dict:
    """One `Drawn` as plain data."""
    return {"step": d.step, "problems": [dataclasses.asdict(p) for p in d.problems],
            # shallow: a completion's ``extra`` may hold objects (an episode's summary) that
            # pickle as they are, where asdict would flatten them into dicts
            "completions": [{f.name: getattr(c, f.name) for f in dataclasses.fields(c)}
                            for c in d.completions],
            "verdicts": [dataclasses.asdict(v) for v in d.verdicts],
            "reward_parts": dict(d.reward_parts), "rewards": d.rewards, "draws": d.draws,
            "version": d.version, "seconds": d.seconds}


def from_record(r: dict) -> Drawn:
    """Inverse of `to_record`."""
    return Drawn(r["step"], [Problem(**p) for p in r["problems"]],
                 [Completion(**c) for c in r["completions"]], [TaskVerdict(**v) for v in r["verdicts"]],
                 dict(r["reward_parts"]), r["rewards"], r["draws"], r["version"], r["seconds"])


def write_ahead(path: Path, drawn: Sequence[Drawn]) -> None:
    """Put ``drawn`` (steps not yet trained on, in step order) in checkpoint dir ``path``;
    nothing is written when there are none (an on-policy run's checkpoints are unchanged)."""
    if drawn:
        torch.save({"format": FORMAT, "drawn": [to_record(d) for d in drawn]}, Path(path) / AHEAD_FILE)


def read_ahead(checkpoint: Path | None, step: int) -> list[Drawn]:
    """The steps a checkpoint held drawn ahead of its ``step``; [] when it holds none.

    Raises ValueError when the file does not continue the checkpoint (steps not
    consecutive from ``step``, or sampled by a version the checkpoint does not hold)."""
    if checkpoint is None or not (Path(checkpoint) / AHEAD_FILE).exists():
        return []
    blob = torch.load(Path(checkpoint) / AHEAD_FILE, weights_only=False)  # our own records
    if blob.get("format") != FORMAT:
        raise ValueError(f"{checkpoint / AHEAD_FILE}: unknown format {blob.get('format')!r}")
    drawn = [from_record(r) for r in blob["drawn"]]
    newest = max((v for d in drawn for c in d.completions for v in (c.token_versions or [c.weight_version])),
                 default=step)
    if [d.step for d in drawn] != list(range(step, step + len(drawn))) or newest > step:
        raise ValueError(f"{checkpoint / AHEAD_FILE} does not continue step {step} (steps "
                         f"{[d.step for d in drawn]}, newest version {newest}); delete it to redraw them")
    return drawn
