"""`--help` that a person can read, through tyro's own extension point (a struct rule of a
`tyro.constructors.ConstructorRegistry`): every option's help is its field docstring, with
the source's line breaks removed so the terminal wraps whole paragraphs; `r1zero train
--help` opens with the flags a new run needs, lists --preset and --algorithm with a line per
preset and algorithm (from `PRESETS` and `ALGORITHMS` / `SUMMARIES`), and shows the other
flags in themed boxes. Flag names do not change: the boxes are display groups
(`tyro.conf.OmitArgPrefixes`), flattened back into one `TrainConfig`.

Why a rule: tyro joins a docstring's lines only when the next one starts with a letter, and
an attribute docstring's continuation lines start with indentation, so every source line
break became a line of help ("453 ragged lines"); tyro groups options only by nested
dataclass. Imported by the CLI only (it imports tyro).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from typing import Any, Literal

import docstring_parser
from tyro.conf import OmitArgPrefixes
from tyro.constructors import (
    MISSING,
    MISSING_NONPROP,
    ConstructorRegistry,
    StructConstructorSpec,
    StructFieldSpec,
    StructTypeInfo,
)

from r1zero.config.presets import PRESETS, preset_summary
from r1zero.config.train_config import TrainConfig
from r1zero.core.algorithms import ALGORITHMS, SUMMARIES

START_HERE = ("preset", "algorithm", "model", "template", "steps", "prompts_per_step", "group_size",
              "max_new_tokens", "temperature", "lr", "backend", "device", "eval_every", "run_dir",
              "resume", "seed")
"""The first box of `r1zero train --help` (with --task.*, the next): what a new run sets."""

GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (  # a box is titled "<name> options"
    ("sampling", "How rollouts are sampled and scored (--rollout.*: how they meet new weights).",
     ("top_p", "max_staleness", "truncation", "reward_workers", "tools")),
    ("update", "The optimizer and the update's batching, precision and kernels.",
     ("weight_decay", "adam_betas", "adam_eps", "max_grad_norm", "epochs", "train_batch_size",
      "lr_schedule", "lr_warmup_steps", "micro_batch_tokens", "skip_zero_advantage", "packed",
      "attn_implementation", "precision")),
    ("vllm", "The vLLM engine (--backend vllm, or auto with vLLM installed).",
     ("vllm_gpu_memory_utilization", "vllm_dtype", "max_model_len", "vllm_cpu_kv_cache_gib")),
    ("output", "Evaluation, checkpoints, logging and this process.",
     ("eval_max_new_tokens", "save_every", "keep_checkpoints", "init_from", "rollout_samples", "tensorboard",
      "wandb", "wandb_project", "threads", "progress", "deterministic")),
)
"""The other top-level flags of `r1zero train`, by theme: (box name, its description,
fields). A field in no box lands in "more" (a test keeps that box empty)."""
NESTED_FIRST = ("task",)
"""Sections (nested configs) shown right after the first box; the rest follow the groups."""


# ----------------------------------------------------------------------------- text
def paragraphs(doc: str | None) -> str | None:
    """A docstring as help: common indentation removed, the lines of each paragraph joined
    by spaces (the terminal wraps them), blank lines kept as paragraph breaks."""
    if not doc:
        return None
    paras = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paras)


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass (a string literal right below a field), read
    by docstring_parser, the library tyro itself reads them with (a dependency of tyro)."""
    return {p.arg_name: p.description for p in docstring_parser.parse_from_object(cls).params
            if p.description}


def choices_help(lead: str, rows: dict[str, str]) -> str:
    """``lead`` and one ``name: summary`` line per row (help keeps these line breaks)."""
    return lead + "\n" + "\n".join(f"{name}: {summary}" for name, summary in rows.items())


def algorithm_help() -> str:
    return choices_help(
        "Named algorithm: it sets the --algo.* switches (resolve_algorithm), and --algo.FIELD "
        "then overrides one of them. One of:", {name: SUMMARIES[name] for name in ALGORITHMS})


def preset_help(resuming: bool) -> str:
    lead = ("A named starting config; the flags you type override it"
            + (" (not with --resume: the run's own config.json is its preset)." if resuming else ".")
            + " One of:")
    return choices_help(lead, {name: preset_summary(name) for name in PRESETS})


# ----------------------------------------------------------------------------- the rule
def registry(preset: str | None = None) -> ConstructorRegistry:
    """The registry every `r1zero` command parses with; ``preset`` is the one `r1zero train`
    starts from (its name is the --preset default shown; None when resuming)."""
    reg = ConstructorRegistry()

    @reg.struct_rule
    def r1zero_configs(info: StructTypeInfo) -> StructConstructorSpec | None:
        cls = info.type
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
                and cls.__module__.startswith("r1zero.")):
            return None
        fields = tuple(field_spec(cls, f, info.default) for f in dataclasses.fields(cls) if f.init)
        if cls is TrainConfig:
            return train_spec(fields, preset)
        return StructConstructorSpec(instantiate=cls, fields=fields)

    return reg


def field_spec(cls: type, f: dataclasses.Field, parent: Any) -> StructFieldSpec:
    """One field: its type (with tyro markers), its default (from the parent instance, as
    tyro's own rule), and its docstring as one paragraph per paragraph."""
    source = getattr(cls, "help_source", cls)  # a display group reads TrainConfig's docs
    tp = typing.get_type_hints(source, include_extras=True)[f.name]
    help_ = paragraphs(field_docs(source).get(f.name))
    if source is TrainConfig and f.name == "algorithm":
        tp, help_ = Literal[tuple(ALGORITHMS)], algorithm_help()
    return StructFieldSpec(f.name, tp, _default(f, parent), helptext=help_)


def _default(f: dataclasses.Field, parent: Any) -> Any:
    if parent is MISSING:
        return MISSING
    if dataclasses.is_dataclass(parent) and not isinstance(parent, type) and hasattr(parent, f.name):
        return getattr(parent, f.name)
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return MISSING_NONPROP


def train_spec(fields: tuple[StructFieldSpec, ...], preset: str | None) -> StructConstructorSpec:
    """`TrainConfig` as shown: --preset and the START_HERE flags, the NESTED_FIRST
    sections, one box per GROUPS row (and "more" for a field in none), the other sections;
    parsed back into one TrainConfig."""
    by_name = {f.name: f for f in fields}
    nested = [n for n, f in by_name.items()
              if dataclasses.is_dataclass(f.default) or _is_dataclass_type(f.type)]
    boxes = [*GROUPS]
    placed = set(START_HERE) | set(nested) | {n for _, _, names in GROUPS for n in names}
    if rest := tuple(n for n in by_name if n not in placed):
        boxes.append(("more", "Other options.", rest))
    names = Literal[tuple(PRESETS)]
    top = [StructFieldSpec("preset", names if preset else names | None, preset,
                           helptext=preset_help(resuming=preset is None))]
    top += [by_name[n] for n in START_HERE if n in by_name]
    top += [by_name[n] for n in NESTED_FIRST if n in by_name]
    for name, description, names in boxes:
        group = display_group(name, description, tuple(by_name[n] for n in names if n in by_name))
        values = {n: by_name[n].default for n in names if n in by_name}
        top.append(StructFieldSpec(name, OmitArgPrefixes[group], group(**values)))
    top += [by_name[n] for n in nested if n not in NESTED_FIRST]
    return StructConstructorSpec(instantiate=_flatten, fields=tuple(top))


def _is_dataclass_type(tp: Any) -> bool:
    tp = typing.get_args(tp)[0] if typing.get_origin(tp) is typing.Annotated else tp
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def display_group(name: str, description: str, specs: tuple[StructFieldSpec, ...]) -> type:
    """A dataclass standing for one help box (its docstring is the box's description); its
    fields are TrainConfig's, and so are their docstrings (``help_source``)."""
    return dataclasses.make_dataclass(
        name, [(s.name, s.type, dataclasses.field(default=s.default)) for s in specs],
        namespace={"__doc__": description, "help_source": TrainConfig, "__module__": __name__})


def _flatten(**kw: Any) -> TrainConfig:
    """TrainConfig from the parsed boxes: group boxes merge into the top level; --preset
    was consumed before parsing (it chose the defaults)."""
    kw.pop("preset", None)
    flat = {}
    for key, value in kw.items():
        if getattr(type(value), "help_source", None) is TrainConfig:  # a display group
            flat.update({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
        else:
            flat[key] = value
    return TrainConfig(**flat)
