"""Checkpoints: model weights (safetensors), optimizer, RNG states and data position.

A save writes a temporary directory, seals it with a manifest (every file's size and
SHA-256, written last: `r1zero.durable.seal`), renames it into place, and only then points
`latest` at it and deletes checkpoints beyond ``keep``: a kill at any instant leaves the
previous checkpoint as it was. A resume checks the manifest (`resume_point`); a damaged
checkpoint is named, set aside, and the newest intact one is used instead.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from r1zero import durable

TRAINER_STATE = "trainer_state.pt"
DAMAGED = "damaged-"
"""Prefix of a checkpoint set aside by a resume because it failed its manifest."""


class CheckpointError(RuntimeError):
    """A checkpoint could not be written, or no intact one is left to resume from."""


@dataclass
class TrainState:
    """Everything besides weights needed to continue the same curve."""

    step: int
    """Rollout steps completed (= the index of the next one)."""
    heldout_start: float | None = None
    """Held-out accuracy at step 0 (for the final summary line)."""
    optim_steps: int = 0
    """Optimizer steps taken so far (the learning-rate schedule's clock)."""


def checkpoint_dir(run_dir: Path) -> Path:
    return Path(run_dir) / "checkpoints"


def write_model_and_optimizer(path: Path, model, optimizer: torch.optim.Optimizer) -> None:
    """HF weights (safetensors) and the DCP optimizer state into ``path``."""
    model.save_pretrained(path, safe_serialization=True)
    save_optimizer(model, optimizer, path)


def save_optimizer(model, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """The optimizer state with torch.distributed.checkpoint under ``path/optim_dcp``, keyed
    by parameter names: learner ranks write their shards, one process the whole; either
    loads at any world size (DCP re-shards)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    with _single_process_ok():
        dcp.save({"optim": get_optimizer_state_dict(model, optimizer)},
                 checkpoint_id=str(path / "optim_dcp"))


@contextlib.contextmanager
def _single_process_ok():
    """DCP warns on every call without a process group that it assumes one process: that
    is the intended use here, not news."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable")
        yield


def load_optimizer(model, optimizer: torch.optim.Optimizer, path: Path) -> None:
    """Inverse of `save_optimizer`, re-sharded to this world size (no-op without optim_dcp)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import (
        get_optimizer_state_dict,
        set_optimizer_state_dict,
    )

    if not (path / "optim_dcp").exists():
        return
    state = {"optim": get_optimizer_state_dict(model, optimizer)}
    with _single_process_ok():
        dcp.load(state, checkpoint_id=str(path / "optim_dcp"))
    set_optimizer_state_dict(model, optimizer, state["optim"])


def save_with(run_dir: Path, tokenizer, state: TrainState, keep: int, write) -> Path:
    """The checkpoint protocol: ``write(tmp)`` puts weights (and a sharded optimizer) in a
    temporary directory, tokenizer and trainer state follow, the manifest seals it, and
    the directory is renamed into place; then `latest` points at it and checkpoints beyond
    the newest ``keep`` are deleted. A failed write (a full disk) removes the temporary
    directory and raises a `CheckpointError` naming the previous checkpoint, untouched."""
    root = checkpoint_dir(run_dir)
    final = root / f"step_{state.step:06d}"
    if final.is_dir() and durable.check(final, hashes=False) is None:
        _point_latest(root, final)  # this very step is saved (a finished run resumed) ...
        _prune(root, keep)  # ... perhaps killed before it deleted the oldest
        return final
    previous = latest_checkpoint(run_dir)
    tmp = root / f".tmp_{final.name}"
    for stale in [*root.glob(".tmp_*"), *root.glob(".deleting_*")]:  # left by a killed save
        shutil.rmtree(stale, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        tokenizer.save_pretrained(tmp)
        blob = {"state": state.__dict__,
                "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}
        torch.save(blob, tmp / TRAINER_STATE)
        durable.seal(tmp, step=state.step)
    except Exception as e:  # re-raised below with the checkpoint that still stands
        shutil.rmtree(tmp, ignore_errors=True)
        raise CheckpointError(
            f"checkpoint {final} could not be written ({_reason(e)}); the previous checkpoint, "
            f"{previous or 'none'}, is intact; free disk space (or fix the cause) and continue "
            f"with `r1zero train --resume {run_dir}`") from e
    if final.exists():  # a damaged one of this step (an intact one was kept above)
        _delete(final)
    os.rename(tmp, final)
    durable.fsync_dir(root)
    _point_latest(root, final)
    _prune(root, keep)
    return final


def _prune(root: Path, keep: int) -> None:
    """Delete the checkpoints beyond the newest ``keep``."""
    for old in step_dirs(root)[:-keep]:
        _delete(old)


def _delete(path: Path) -> None:
    """Remove a checkpoint so that no kill leaves half of it under its name: renamed out of
    the ``step_*`` names first (atomic), then deleted."""
    gone = path.with_name(f".deleting_{path.name}")
    os.rename(path, gone)
    shutil.rmtree(gone, ignore_errors=True)


def _reason(e: BaseException) -> str:
    """An exception in one line: an OSError's message and file, else the first line."""
    if isinstance(e, OSError) and e.strerror:
        return f"{e.strerror}: {e.filename}" if e.filename else e.strerror
    lines = str(e).strip().splitlines()
    return f"{type(e).__name__}: {lines[0] if lines else ''}"


def _point_latest(root: Path, final: Path) -> None:
    durable.write_atomic(root / "latest", final.name + "\n")


def step_dirs(root: Path) -> list[Path]:
    """The checkpoint directories under ``root``, oldest first (names sort by step)."""
    return sorted(p for p in Path(root).glob("step_*") if p.is_dir())


def damage(path: Path, *, hashes: bool = True) -> str | None:
    """None when a checkpoint matches its manifest, else what is wrong. A checkpoint from
    before manifests (a trainer state, no manifest) passes unverified."""
    problem = durable.check(path, hashes=hashes)
    if problem and not (path / durable.MANIFEST).exists() and (path / TRAINER_STATE).is_file():
        return None
    return problem


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run (files present, sizes as in the manifest),
    or None; cheap, for messages. `resume_point` also checks the hashes."""
    return next((p for p in reversed(step_dirs(checkpoint_dir(run_dir)))
                 if damage(p, hashes=False) is None), None)


def resume_point(run_dir: Path) -> Path | None:
    """The newest checkpoint that passes its manifest, or None when the run has none. Each
    damaged newer one is named in one line and set aside (renamed ``damaged-step_N``, kept
    for inspection); if every checkpoint is damaged, a `CheckpointError`."""
    root = checkpoint_dir(run_dir)
    damaged = []
    for path in reversed(step_dirs(root)):
        problem = damage(path)
        if problem is None:
            return path
        aside = _set_aside(path)
        damaged.append(aside.name)
        print(f"warning: checkpoint {path} is damaged ({problem}); set aside as {aside.name}, "
              "resuming from the newest intact one", file=sys.stderr)
    if damaged:
        raise CheckpointError(
            f"--resume {run_dir}: no intact checkpoint left (damaged, set aside: "
            f"{', '.join(damaged)}); restore a copy of the checkpoints or start a new run")
    return None


def _set_aside(path: Path) -> Path:
    aside = path.with_name(DAMAGED + path.name)
    n = 1
    while aside.exists():
        aside, n = path.with_name(f"{DAMAGED}{path.name}.{n}"), n + 1
    path.rename(aside)
    return aside


def load_trainer_state(path: Path) -> TrainState:
    """Restore the RNG states and return the train state. The optimizer's DCP files are
    loaded by `load_optimizer`, which needs the model (every learner loads its own)."""
    blob = torch.load(path / TRAINER_STATE, weights_only=False)
    torch.set_rng_state(blob["rng"]["torch"])
    random.setstate(blob["rng"]["python"])
    return TrainState(**blob["state"])
