"""A run's checkpoint as a plain transformers model directory: `r1zero export RUN_DIR --out
DIR`, and the starting model of `r1zero train --init-from RUN_DIR` (an `r1zero sft` run,
say). A LoRA checkpoint holds only its adapter: it is merged into its base first."""

from __future__ import annotations

import shutil
from pathlib import Path

from r1zero.adapters import adapter_base, is_adapter_dir, merge_adapter
from r1zero.config import ConfigError
from r1zero.learner import checkpoint as ckpt
from r1zero.learner.critic import CRITIC_DIR
from r1zero.models import load_model, load_tokenizer, resolve_model_path

NOT_MODEL_FILES = ("optim_dcp", "trainer_state.pt", CRITIC_DIR)
"""What a checkpoint holds besides the model and its tokenizer."""
INIT_DIR = "init_model"
"""Where a run started with --init-from keeps the merged model of an adapter checkpoint."""


def run_checkpoint(source: str | Path) -> Path:
    """The checkpoint a run directory (its latest) or a checkpoint directory names."""
    path = Path(source).expanduser()
    if (path / "trainer_state.pt").is_file():
        return path
    found = ckpt.latest_checkpoint(path)
    if found is None:
        raise ConfigError(f"{source}: no checkpoint there (a run directory with checkpoints/, or "
                          "one checkpoint directory); did the run save one?")
    return found


def export_checkpoint(checkpoint: Path, out: Path) -> Path:
    """``out`` as a transformers model directory (weights, config, tokenizer): the adapter
    merged into its base (W_0 + (alpha / r) B A), or the checkpoint's own weights copied."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if is_adapter_dir(checkpoint):
        base = adapter_base(checkpoint)
        if not base:
            raise ConfigError(f"{checkpoint}: the adapter does not name its base model")
        model, _ = load_model(resolve_model_path(base))
        merge_adapter(model, checkpoint).save_pretrained(out, safe_serialization=True)
        load_tokenizer(str(checkpoint)).save_pretrained(out)
        return out
    for item in Path(checkpoint).iterdir():
        if item.name in NOT_MODEL_FILES:
            continue
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, out / item.name)
    return out


def starting_model(init_from: str, run_dir: Path) -> str:
    """The model directory a run started with ``--init-from`` trains: the other run's latest
    checkpoint in place, or, for an adapter, its merge under ``run_dir/init_model`` (made
    once; a resume finds it)."""
    checkpoint = run_checkpoint(init_from)
    if not is_adapter_dir(checkpoint):
        return str(checkpoint)
    target = Path(run_dir) / INIT_DIR
    if not (target / "config.json").is_file():
        tmp = Path(run_dir) / f".{INIT_DIR}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        export_checkpoint(checkpoint, tmp)
        tmp.rename(target)
    return str(target)
