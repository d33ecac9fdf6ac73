"""From what was asked to the run's config: the algorithm's switches, a resume merged with
its saved config, the default run directory, validation (`derive`, the one resolution step);
and the (de)serialisation of config.json."""

from __future__ import annotations

import dataclasses
import json
import os
import types
import typing
from pathlib import Path
from typing import Any

from r1zero.config.readers import check_read, dotted_get, flag
from r1zero.config.sections import ConfigError
from r1zero.config.train_config import UNSET_ALGO, TrainConfig
from r1zero.core.algorithms import ALGORITHMS
from r1zero.core.choices import CAPPED_CORRECTIONS

STALE_TIS_CAP = 2.0
"""The truncated-IS cap that --max-staleness >= 1 (or a truncating --algo.is-correction)
turns on when --algo.tis-cap is unset (the cap of Yao et al. 2025)."""


def with_algorithm(cfg: TrainConfig, name: str) -> TrainConfig:
    """``cfg`` using the named algorithm's switches (how --algorithm seeds --algo.*)."""
    if name not in ALGORITHMS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of {sorted(ALGORITHMS)}")
    return dataclasses.replace(cfg, algorithm=name, algo=ALGORITHMS[name])


def resolve_algorithm(cfg: TrainConfig) -> TrainConfig:
    """The one place a name becomes switches: an ``algo`` left unset (the ``UNSET_ALGO``
    default, by identity) becomes ``ALGORITHMS[cfg.algorithm]``, so
    ``TrainConfig(algorithm="grpo")`` trains GRPO from Python as on the command line. An
    ``algo`` given explicitly (``--algo.*``, a resumed config.json) is kept as it is."""
    if cfg.algo is UNSET_ALGO:
        cfg = with_algorithm(cfg, cfg.algorithm)
    needs_cap = cfg.max_staleness > 0 or cfg.algo.is_correction in CAPPED_CORRECTIONS
    if needs_cap and cfg.algo.tis_cap is None:  # stale samplers need the IS weight
        cfg = dataclasses.replace(cfg, algo=dataclasses.replace(cfg.algo, tis_cap=STALE_TIS_CAP))
    return cfg


# ----------------------------------------------------------------------------- derive
def derive(asked: TrainConfig, *, given: typing.Collection[str] = (), saved: TrainConfig | None = None,
           stamp: str = "run") -> TrainConfig:
    """The run's config from what was asked: the one resolution step of `r1zero train`,
    pure (the caller reads a resumed run's config.json and passes it as ``saved``).

    1. A resume (``asked.resume``) continues ``saved``: of the fields the user set
       (``given``, dotted names), those in `RESUME_MAY_CHANGE` are taken from ``asked``;
       any other that disagrees with ``saved`` is a ConfigError naming the flag.
    2. The algorithm's name becomes its switches, unless switches were given
       (`resolve_algorithm`); stale samplers turn the truncated IS weight on.
    3. ``run_dir`` defaults to ``runs/<task>-<algorithm>-<stamp>``.
    4. Every check passes (`TrainConfig.validate`), and every field in ``given`` is one
       this run reads (`r1zero.config.readers.check_read`: a flag the task, engine or
       algorithm ignores is an error, not silence).

    What the machine decides (device, precision, threads, KV budget) is not config: it is
    resolved when the run is built (train/setup.py `Resolved`). Idempotent."""
    cfg = asked if saved is None else resumed(asked, set(given), saved)
    cfg = resolve_algorithm(cfg)
    cfg.validate()
    check_read(cfg, set(given))
    if not cfg.run_dir:
        cfg = dataclasses.replace(cfg, run_dir=f"runs/{cfg.task.name}-{cfg.algorithm}-{stamp}")
    return cfg


def resumed(asked: TrainConfig, given: set[str], saved: TrainConfig) -> TrainConfig:
    """``saved`` with the given fields a resume may change; placement (cluster, device,
    threads, progress) always follows the resuming invocation."""
    conflicts = sorted(n for n in given if n.split(".")[0] not in RESUME_MAY_CHANGE
                       and dotted_get(asked, n) != dotted_get(saved, n))
    if conflicts:
        allowed = ", ".join(sorted(flag(n) for n in RESUME_MAY_CHANGE - {"resume", "run_dir"}))
        raise ConfigError(
            f"--resume {asked.resume}: {', '.join(flag(n) for n in conflicts)} differ(s) from the "
            f"run's saved config.json; a resume continues the same experiment (only {allowed} "
            "may change). Start a new run (--run-dir) to change it.")
    changes = {n: getattr(asked, n) for n in {g.split(".")[0] for g in given} if n in RESUME_MAY_CHANGE}
    changes.update({n: getattr(asked, n) for n in RESUME_PLACEMENT})
    return dataclasses.replace(saved, **{**changes, "resume": str(asked.resume), "run_dir": str(asked.resume)})


def saved_config(run_dir: str | os.PathLike) -> TrainConfig:
    """The config a run directory was trained with (its config.json, without the
    machine's ``resolved`` block: what auto chose last time is chosen again)."""
    run = Path(run_dir)
    if not (run / "config.json").exists():
        raise ConfigError(f"--resume {run}: no config.json there; is it a run directory?")
    try:
        data = json.loads((run / "config.json").read_text())
    except ValueError as e:
        raise ConfigError(f"--resume {run}: config.json is not valid JSON ({e})") from None
    data.pop("resolved", None)
    return config_from_dict(TrainConfig, data)


# ----------------------------------------------------------------------------- (de)serialise
# What `--resume` may change; every other flag must match the run's saved config.
RESUME_MAY_CHANGE = frozenset({
    "steps", "eval_every", "save_every", "keep_checkpoints", "progress", "threads", "device",
    "rollout_samples", "tensorboard", "wandb", "wandb_project", "resume", "run_dir", "cluster",
    "reward_workers", "sandbox",
})
# Where the resumed run executes: always the resuming invocation's own (a run saved at N
# learner ranks resumes at M, or in one process).
RESUME_PLACEMENT = frozenset({"cluster", "device", "threads", "progress"})


def config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """Dotted names of the leaf fields where two config dataclasses differ."""
    out = []
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if dataclasses.is_dataclass(x) and dataclasses.is_dataclass(y):
            out += config_diff(x, y, f"{prefix}{f.name}.")
        elif x != y:
            out.append(prefix + f.name)
    return out


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Rebuild a (nested) config dataclass from `dataclasses.asdict` output (config.json).
    Unknown keys are an error: a config from another version should not half-load."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {unknown} in saved config")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value)
    return cls(**kwargs)


def _coerce(tp: Any, value: Any) -> Any:
    """JSON value -> the annotated type (nested dataclasses, tuples from lists)."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(inner[0], value) if len(inner) == 1 else value
    if dataclasses.is_dataclass(tp):
        return config_from_dict(tp, value)
    if origin is tuple:
        return tuple(value)
    return value
