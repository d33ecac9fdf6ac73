#!/usr/bin/env bash
# GPU check on a lent CUDA machine (no network): install the few pure-Python wheels the
# image lacks from .gpu/whl, point the model cache at the carried tokenizer, run the
# gpu-marked tests and the trainer tests on the GPU's python. Results land in $OUT.
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:src:. R1ZERO_CACHE=$PWD/.gpu/cache PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "${OUT:-/tmp}/gpu.txt"
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)" | tee -a "${OUT:-/tmp}/gpu.txt"
python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 | tee "${OUT:-/tmp}/gpu_tests.log"
python3 -m pytest -q -p no:cacheprovider tests/test_core_losses.py tests/test_core_algorithms.py tests/test_train_batching.py 2>&1 | tail -3 | tee -a "${OUT:-/tmp}/gpu_tests.log"
# Packed micro-batches on the GPU: compiled FlexAttention vs the dense segment mask
# (log-probs and gradients), then the long-context learner benchmark (1.5B, ~3,000 tokens).
python3 -m pytest -q -p no:cacheprovider -m gpu tests/test_varlen_attention.py 2>&1 | tee -a "${OUT:-/tmp}/gpu_tests.log"
timeout 420 python3 bench/bench_learner_gpu.py --json "${OUT:-/tmp}/bench_learner_gpu.json" 2>&1 | tee "${OUT:-/tmp}/bench_learner_gpu.txt"
