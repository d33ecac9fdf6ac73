#!/usr/bin/env bash
# One-shot device check (docs/benchmarks.md, "GPU check"). On a CUDA machine with no
# network: install the bundle's wheels (`make gpu-bundle` builds .gpu/) into a temporary
# folder, read models from the bundle's cache, and run scripts/gpu_check.py, which prints
# each result as it comes and writes rows, summary and log under $OUT (else runs/gpu_check).
#   bash scripts/gpu_check.sh             # the GPU run
#   bash scripts/gpu_check.sh --dry-run   # the same checks on CPU (gloo, tiny sizes)
# PYTHON picks the interpreter (default: the checkout's .venv if made, else python3),
# GPU_BUNDLE the bundle (default .gpu).
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python ]; then PY=${PYTHON:-.venv/bin/python}; else PY=${PYTHON:-python3}; fi
BUNDLE=${GPU_BUNDLE:-.gpu}
dry=0
for a in "$@"; do [ "$a" = --dry-run ] && dry=1; done

site=""
if [ -d "$BUNDLE" ]; then
    site=$(mktemp -d /tmp/r1zero-site.XXXXXX)
    trap 'rm -rf "$site"' EXIT
    if compgen -G "$BUNDLE/whl/*.whl" >/dev/null; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
            --target "$site" "$BUNDLE"/whl/*.whl \
            || { echo "gpu_check: installing the wheels of $BUNDLE/whl failed" >&2; exit 1; }
    fi
    export R1ZERO_CACHE=$(cd "$BUNDLE" && pwd)/cache
elif [ "$dry" = 0 ]; then
    echo "gpu_check: no bundle at $BUNDLE; run \`make gpu-bundle\` and carry .gpu to this machine" >&2
    exit 1
fi
export PYTHONPATH=$PWD/src${site:+:$site}${PYTHONPATH:+:$PYTHONPATH}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# The runner keeps its own budget (450 s); this outer limit only guards against the runner itself hanging.
timeout -k 10 540 "$PY" scripts/gpu_check.py "$@"
