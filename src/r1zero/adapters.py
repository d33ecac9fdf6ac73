"""LoRA adapters through peft (``pip install 'r1zero[lora]'``): add them to a transformers
model, name their tensors, and write / read peft's directory layout (adapter_config.json +
adapter_model.safetensors), which vLLM's LoRA requests and `peft.PeftModel.from_pretrained`
both load. The learner, the rollout engines and `r1zero export` share these few functions.

Adapters are injected into the model in place (`peft.inject_adapter_in_model`), not wrapped
in a `PeftModel`: the model keeps its class and methods (the learner's log-prob pass, FSDP2's
list of decoder layers, the HF names of its other weights); each targeted linear layer
becomes a peft LoRA layer holding the frozen base weight and its trainable A and B.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from r1zero.config import ConfigError, LoraConfig, MissingDependency

ADAPTER = "default"
"""peft's name of the (one) adapter inside the module."""
PREFIX = "base_model.model."
"""peft's key prefix on disk (what `PeftModel.save_pretrained` writes and vLLM expects)."""
CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter_model.safetensors"
LORA_INSTALL_HINT = "LoRA needs peft: pip install 'r1zero[lora]' (or pip install peft)"


def _peft():
    """peft, imported only when adapters are used (the optional r1zero[lora] extra)."""
    try:
        import peft
    except ImportError as err:  # one line on the command line (a user error, not a bug)
        raise MissingDependency(LORA_INSTALL_HINT) from err
    return peft


def peft_config(cfg: LoraConfig, base: str | None = None):
    """peft's `LoraConfig` for ``cfg`` (``base``: the base model, recorded on disk; a local
    directory as an absolute path, so that `r1zero export` finds it from anywhere)."""
    if base is not None and Path(base).expanduser().is_dir():
        base = str(Path(base).expanduser().resolve())
    return _peft().LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules=list(cfg.targets),
                              lora_dropout=cfg.dropout, bias="none", task_type="CAUSAL_LM",
                              base_model_name_or_path=base)


def add_lora(model: torch.nn.Module, cfg: LoraConfig, base: str | None = None) -> torch.nn.Module:
    """Inject LoRA layers into ``model`` in place and return it: every weight but the
    adapters' A and B stops requiring gradients; B = 0, so the model computes what it did."""
    try:
        return _peft().inject_adapter_in_model(peft_config(cfg, base), model, adapter_name=ADAPTER)
    except ValueError as err:  # peft: none of the target modules exists in this model
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ConfigError(f"--lora.targets {list(cfg.targets)}: {err}; this model's linear layers "
                          f"are {names}") from None


def has_adapters(model: torch.nn.Module) -> bool:
    """Whether LoRA adapters were injected into ``model`` (peft records its config on it)."""
    return hasattr(model, "peft_config")


def is_adapter_tensor(name: str) -> bool:
    """An adapter parameter's module name (``...q_proj.lora_A.default.weight``)."""
    return ".lora_A." in name or ".lora_B." in name


def adapter_tensors(model: torch.nn.Module, state_dict: dict[str, torch.Tensor] | None = None
                    ) -> dict[str, torch.Tensor]:
    """The adapter's tensors under peft's on-disk names (``base_model.model.<module>.lora_A
    .weight``), from ``model`` or from ``state_dict`` (its full, e.g. FSDP-gathered, tensors)."""
    sd = _peft().get_peft_model_state_dict(model, state_dict=state_dict, adapter_name=ADAPTER)
    return {PREFIX + k: v for k, v in sd.items()}


def load_adapter_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy adapter tensors (peft's on-disk names) into ``model``'s adapter in place."""
    plain = {k.removeprefix(PREFIX): v for k, v in tensors.items()}
    result = _peft().set_peft_model_state_dict(model, plain, adapter_name=ADAPTER)
    if result.unexpected_keys:
        raise KeyError(f"adapter tensors the model has no place for: {result.unexpected_keys[:4]}")


def write_adapter(path: Path, config, tensors: dict[str, torch.Tensor]) -> None:
    """peft's layout in ``path``: ``config`` (peft's LoraConfig) and the tensors."""
    from safetensors.torch import save_file

    Path(path).mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(path))
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(Path(path) / WEIGHTS_FILE))


def save_model_adapter(model: torch.nn.Module, path: Path) -> None:
    """The adapter of ``model`` (its config, with the base model's path) into ``path``."""
    write_adapter(path, model.peft_config[ADAPTER], adapter_tensors(model))


def is_adapter_dir(path: Path) -> bool:
    return (Path(path) / CONFIG_FILE).is_file()


def read_adapter(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of an adapter directory (peft's on-disk names)."""
    from safetensors.torch import load_file

    return load_file(str(Path(path) / WEIGHTS_FILE))


def adapter_base(path: Path) -> str | None:
    """The base model an adapter directory was trained on (its config's record)."""
    return json.loads((Path(path) / CONFIG_FILE).read_text()).get("base_model_name_or_path")


def merge_adapter(model: torch.nn.Module, adapter_dir: Path) -> torch.nn.Module:
    """``model`` (the base) with the adapter of ``adapter_dir`` merged into its weights:
    W = W_0 + (alpha / r) B A, as a plain transformers model (peft's merge_and_unload)."""
    peft = _peft()
    return peft.PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()


def tensor_bytes(tensors) -> int:
    """Bytes of ``(name, tensor)`` pairs (what a weight sync moves)."""
    return sum(t.numel() * t.element_size() for _, t in tensors)
