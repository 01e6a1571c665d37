# brainscan — the two commands a newcomer needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= uv
PY := .venv/bin/python
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
MLFLOW_PORT ?= 5000
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION := false

.PHONY: help install demo mlflow test test-fast lint format bench bench-reference wrk clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

install: ## Install uv (from PyPI) and every workspace package into .venv
	@command -v $(UV) >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --all-packages --frozen

lint: install ## ruff lint + format check
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

format: install ## Apply ruff fixes and formatting
	$(UV) run --frozen ruff check --fix .
	$(UV) run --frozen ruff format .

test-fast: install ## Unit tests only (skips the slow ones)
	$(UV) run --frozen pytest -m "not slow"

test: lint ## Lint, then every test (slow ones included)
	$(UV) run --frozen pytest

demo: install ## Train, evaluate, export and register a model end to end (params.yaml profile)
	$(PY) -m brainscan_localstack.demo --mlflow-port $(MLFLOW_PORT)

mlflow: install ## Serve the demo's MLflow store (UI + registry) on MLFLOW_PORT
	$(if $(wildcard .mlflow/webhook-encryption.key),MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY=$$(cat .mlflow/webhook-encryption.key)) \
	$(UV) run --frozen mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
		--backend-store-uri sqlite:///$(CURDIR)/.mlflow/mlflow.db \
		--artifacts-destination $(CURDIR)/.mlflow/artifacts

bench: install wrk ## Benchmark serving with wrk: raw onnxruntime limit, naive baseline, inference, gateway, the guard's cost
	$(PY) loadtest/bench/run.py $(BENCH_ARGS)

bench-reference: install wrk ## The same on the model size the serving targets assume (MobileNetV2 a1.0, 224 px)
	$(PY) loadtest/bench/run.py --reference-model $(BENCH_ARGS)

wrk: ## Install wrk (Debian package), the bench's load generator, when missing
	@command -v wrk >/dev/null 2>&1 || { \
		echo "installing wrk (apt-get)"; \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# Each area (images, Kubernetes, observability, load tests) keeps its targets in mk/<area>.mk.
-include mk/*.mk

clean: ## Remove generated data, models and caches (not the DVC remote)
	rm -rf data artifacts reports .demo .pytest_cache .ruff_cache
