# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both create .venv and (re)install when it is missing or pyproject.toml changed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# ONNX Runtime flavour: `make install EXTRAS=gpu,dev` on a CUDA machine (onnxruntime-gpu).
EXTRAS ?= cpu,dev
PYTEST_ARGS ?=

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install data run repro test test-all lint format pre-commit clean bench bento serve \
  report gate release-tag release-manifests release-check

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\n"} \
	  /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with EXTRAS (default cpu,dev)

data: $(STAMP) ## Put data/ in place to match data.dvc: keep, dvc pull, else copy the default corpus
	textclf data

repro: data ## Run the pipeline (only the stages whose inputs changed)
	dvc repro

run: repro ## Install, bootstrap data, run the whole pipeline, and show the results
	@echo
	@textclf summary

BASE ?=
BENTO_FILE ?= bentofile.yaml
PORT ?= 3000
BENCH_ARGS ?=

bench: $(STAMP) ## Benchmarks (training, inference, service, pipeline) -> reports/bench.{json,md}
	textclf bench $(BENCH_ARGS)

bento: $(STAMP) ## Build the BentoML bento from the committed model (BENTO_FILE=bentofile.gpu.yaml for CUDA)
	textclf release check
	bentoml build -f $(BENTO_FILE) --version "$$(textclf release tag)" .

serve: $(STAMP) ## Serve artifacts/onnx locally with BentoML on 127.0.0.1:$(PORT)
	bentoml serve textclf.serving.service:TextClassifier --host 127.0.0.1 --port $(PORT)

report: $(STAMP) ## Write the PR review to reports/pr/report.md (BASE=<git ref>, default origin/main or main)
	textclf report $(if $(BASE),--base $(BASE))

gate: $(STAMP) ## Promotion gate against BASE; exits non-zero when the model may not be promoted
	textclf gate $(if $(BASE),--base $(BASE))

release-tag: $(STAMP) ## Print the image tag computed from dvc.lock, the serving code and bentofile.yaml
	@textclf release tag

release-manifests: $(STAMP) ## Write the release tag into deploy/overlays/production (commit the result)
	textclf release manifests

release-check: $(STAMP) ## Fail unless outputs are committed and the production overlay names the computed tag
	textclf release check

test: $(STAMP) ## Run the fast test suite (excludes tests marked slow)
	$(BIN)/pytest $(PYTEST_ARGS)

test-all: $(STAMP) ## Run every test, slow ones included
	$(BIN)/pytest -m "not gpu" $(PYTEST_ARGS)

lint: $(STAMP) ## ruff (lint + format check) and mypy
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

pre-commit: $(STAMP) ## Install the git pre-commit hooks
	$(BIN)/pre-commit install

clean: ## Remove caches (keeps .venv, data and DVC outputs)
	rm -rf .pytest_cache .mypy_cache .ruff_cache dvc_plots
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
