# Two user commands: `make demo` and `make test`. Both create .venv and install the project first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hf-session-installed
# CPU machines get this CPU build of torch before the project, so pip never pulls a multi-GB CUDA wheel.
# Elsewhere, point pip at a CPU wheel index: make test TORCH_PIP_ARGS="--index-url <cpu wheel index>"
TORCH_CPU_VERSION ?= 2.13.0
TORCH_PIP_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if ! $(PY) -c "import torch" >/dev/null 2>&1; then \
	  if command -v nvidia-smi >/dev/null 2>&1; then \
	    echo "GPU found: installing torch from the package index"; $(PY) -m pip install torch; \
	  else \
	    echo "No GPU: installing the CPU build torch==$(TORCH_CPU_VERSION)"; \
	    $(PY) -m pip install "torch==$(TORCH_CPU_VERSION)" $(TORCH_PIP_ARGS); \
	  fi; \
	fi
	$(PY) -m pip install -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/hf-session demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)
