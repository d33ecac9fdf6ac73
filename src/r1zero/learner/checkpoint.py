"""Checkpoints: model weights (safetensors), optimizer, RNG states and data position.

Written to a temporary directory and renamed, so an interrupted save never leaves a
half checkpoint; `latest` names the newest complete one.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch


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
    temporary directory, then tokenizer and trainer state follow, and the directory is
    renamed into place, so an interrupted save never leaves a half checkpoint."""
    root = checkpoint_dir(run_dir)
    final = root / f"step_{state.step:06d}"
    tmp = root / f".tmp_step_{state.step:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    write(tmp)
    tokenizer.save_pretrained(tmp)
    blob = {"state": state.__dict__,
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate()}}
    torch.save(blob, tmp / "trainer_state.pt")
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    (root / "latest").write_text(final.name + "\n")
    for old in sorted(p for p in root.glob("step_*") if p.is_dir())[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = checkpoint_dir(run_dir)
    pointer = root / "latest"
    if pointer.exists():
        path = root / pointer.read_text().strip()
        if (path / "trainer_state.pt").exists():
            return path
    done = sorted(p for p in root.glob("step_*") if (p / "trainer_state.pt").exists())
    return done[-1] if done else None


def load_trainer_state(path: Path) -> TrainState:
    """Restore the RNG states and return the train state. The optimizer's DCP files are
    loaded by `load_optimizer`, which needs the model (every learner loads its own)."""
    blob = torch.load(path / "trainer_state.pt", weights_only=False)
    torch.set_rng_state(blob["rng"]["torch"])
    random.setstate(blob["rng"]["python"])
    return TrainState(**blob["state"])
