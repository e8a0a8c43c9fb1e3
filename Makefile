# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both create .venv and (re)install when it is missing or pyproject.toml changed.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
# The review runners' image sets TEXTCLF_VENV to its prebuilt venv (images/review-runner.Containerfile).
VENV ?= $(or $(TEXTCLF_VENV),.venv)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# ONNX Runtime flavour: `make install EXTRAS=gpu,dev` on a CUDA machine (onnxruntime-gpu).
EXTRAS ?= cpu,dev
# LOCK=requirements/review-gpu.txt: install exactly that hash-locked set instead of resolving
# EXTRAS (what the review runners do: their image holds it already, so nothing is downloaded).
LOCK ?=
PYTEST_ARGS ?=

export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install data run repro test test-all lint secrets lock container-setup image test-image format pre-commit clean bench bento runner-image runner-push runner-pin \
  serve report gate release-tag release-manifests release-check release-verify release-pull release-pin release-images release-push release-missing release-verify-image checkout \
  export-checkout promote review-pull review-push review-plots review-traffic replay snapshot-import monitor monitor-pull monitor-ci monitor-verdict \
  retrain-verdict retrain-pull retrain-propose retrain-result

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "Usage: make <target>\n\n"} \
	  /^[a-zA-Z0-9_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml $(LOCK)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
ifeq ($(LOCK),)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
else
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
	  --no-build-isolation -r $(LOCK)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps \
	  --no-build-isolation -e .
	$(BIN)/python -m pip check
endif
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with EXTRAS (default cpu,dev), or exactly LOCK

data: $(STAMP) ## Put data/ in place to match data.dvc: keep, dvc pull, else copy the default corpus
	textclf data

repro: data ## Run the pipeline (only the stages whose inputs changed)
	dvc repro

run: repro ## Install, bootstrap data, run the whole pipeline, and show the results
	@echo
	@textclf summary

BASE ?=
# The checkout the review and release targets read (CI points them at a PR checkout whose code
# never runs: the judging code is this one's). REV: a commit to check instead of the workspace.
ROOT ?= .
# The traffic snapshot `make report` replays (`textclf snapshot import` puts one in traffic/).
TRAFFIC ?= $(ROOT)/traffic
REV ?=
REVIEW_DIR ?=
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

report: $(STAMP) ## Write the PR review to reports/pr/report.md (BASE=<git ref>, default origin/main or main); replays TRAFFIC first when it holds a snapshot
	@if [ -f "$(TRAFFIC)/manifest.json" ]; then \
	  $(MAKE) --no-print-directory replay ROOT="$(ROOT)" TRAFFIC="$(TRAFFIC)"; \
	else \
	  rm -f "$(ROOT)/reports/replay/summary.json" "$(ROOT)/reports/replay/summary.md"; \
	  echo "no traffic snapshot in $(TRAFFIC): the review has no production replay (docs/production.md)"; \
	fi
	@$(MAKE) --no-print-directory export-checkout ROOT="$(ROOT)"
	textclf report --root "$(ROOT)" $(if $(BASE),--base "$(BASE)")

# The review runs the base's behaviour tests on ROOT's export: check it out of ROOT's DVC cache
# (verified against dvc.lock). Without one the gate's behaviour check fails and names the fix.
export-checkout: ## Check ROOT's export out of its DVC cache when it is missing (the review's behaviour tests run on it)
	@test -f "$(ROOT)/artifacts/onnx/textclf.json" || { cd "$(ROOT)" && dvc checkout artifacts/onnx; } || \
	  echo "no export in $(ROOT)/artifacts/onnx: the behaviour check will fail (dvc repro export)"

# The model replayed is ROOT's export; the replay settings are this checkout's params.yaml (in
# the review: the base's, like the gate's thresholds).
replay: $(STAMP) ## Replay TRAFFIC (default ROOT/traffic) through ROOT's export -> ROOT/reports/replay/summary.{json,md}
	@test -f "$(ROOT)/artifacts/onnx/textclf.json" || { cd "$(ROOT)" && dvc checkout artifacts/onnx; }
	textclf replay --root "$(ROOT)" --traffic "$(abspath $(TRAFFIC))" --params "$(CURDIR)/params.yaml"

# The monitor workflow (.github/workflows/monitor.yml): main's reference profile, and the latest
# snapshot of FROM (a prefix or URL; not committed, not pushed) or else main's traffic.dvc.
monitor-pull: $(STAMP) ## (monitor CI) Pull the drift reference profile and the latest snapshot (FROM=<prefix|url>, else traffic.dvc)
	dvc pull -r release drift
	if [ -n "$(FROM)" ]; then textclf snapshot import --from "$(FROM)" --no-commit --no-push; else dvc pull -r release traffic.dvc; fi

monitor: $(STAMP) ## Judge production (TRAFFIC, default ROOT/traffic): drift and live accuracy -> reports/monitor/; exit 1 drift, 3 degraded
	textclf monitor --root "$(ROOT)" --traffic "$(abspath $(TRAFFIC))"

monitor-ci: $(STAMP) ## (monitor CI) As `make monitor`, but only a failed check (exit 2) fails
	textclf monitor --root "$(ROOT)" --traffic "$(abspath $(TRAFFIC))" || [ $$? -ne 2 ]

monitor-verdict: ## (monitor CI) Print verdict=<the last monitor verdict> (for $$GITHUB_OUTPUT)
	@$(PYTHON) -c 'import json, sys; print("verdict=" + json.load(open(sys.argv[1]))["verdict"])' "$(ROOT)/reports/monitor/summary.json"

# Retrain proposals (docs/production.md#retrain-proposals): labelled production rows the data
# lacks, on branch retrain/<UTC date>, pushed to REMOTE for a pull request.
REMOTE ?= origin

retrain-verdict: $(STAMP) ## (monitor CI) Print retrain=true when the last monitor run saw at least monitor.retrain_min_labels labelled requests
	@$(BIN)/python -c 'import json, sys; from textclf.config.params import load_params; n = json.load(open(sys.argv[1]))["labelled"]; print("retrain=" + str(n >= load_params(sys.argv[2]).monitor.retrain_min_labels).lower())' "$(ROOT)/reports/monitor/summary.json" "$(ROOT)/params.yaml"

retrain-pull: $(STAMP) ## (monitor CI) Pull data/ (to de-duplicate and retrain on) and, without FROM, main's traffic.dvc
	dvc pull -r release data.dvc
	if [ -z "$(FROM)" ]; then dvc pull -r release traffic.dvc; fi

retrain-propose: $(STAMP) ## Propose a retrain on the new labelled rows of FROM (prefix, snapshot, URL or traffic dir; else TRAFFIC): branch, repro, dvc push, git push to REMOTE
	textclf retrain propose --root "$(ROOT)" --traffic "$(or $(FROM),$(abspath $(TRAFFIC)))" --remote "$(REMOTE)"

retrain-result: ## (monitor CI) Print proposed=, branch= and title= of the last proposal (for $$GITHUB_OUTPUT)
	@$(PYTHON) -c 'import json, sys; r = json.load(open(sys.argv[1])); print("proposed=" + str(r["proposed"]).lower()); print("branch=" + (r.get("branch") or "")); print("title=" + (r.get("title") or ""))' "$(ROOT)/reports/retrain/result.json"

snapshot-import: $(STAMP) ## Import the latest traffic snapshot of FROM (prefix, snapshot, URL or traffic dir) as traffic/, commit traffic.dvc, dvc push
	@test -n "$(FROM)" || { echo "usage: make snapshot-import FROM=<prefix|snapshot|url|traffic dir>" >&2; exit 2; }
	textclf snapshot import --from "$(FROM)"

gate: $(STAMP) ## Promotion gate against BASE, with BASE's thresholds; non-zero when it fails
	@$(MAKE) --no-print-directory export-checkout ROOT="$(ROOT)"
	textclf gate --root "$(ROOT)" $(if $(BASE),--base "$(BASE)")

release-tag: $(STAMP) ## Print the serving image's tag (content address of what it ships; IMAGE=drift for the drift image)
	@textclf release tag --image "$(or $(IMAGE),serving)"

release-manifests: $(STAMP) ## Write the images' tags into every deploy overlay (commit them with dvc.lock)
	textclf release manifests

release-check: $(STAMP) ## Fail unless outputs are committed and the overlays name the computed tag (REV=<commit>: git only)
	textclf release check --root "$(ROOT)" $(if $(REV),--rev "$(REV)")

release-pin: $(STAMP) ## Write the registry's digests for the pinned tags into the overlays (after the review pushed them)
	textclf release pin --root "$(ROOT)"

release-images: $(STAMP) ## Fail unless every overlay pin's tag@digest is in the registry (REV=<commit>)
	textclf release images --root "$(ROOT)" $(if $(REV),--rev "$(REV)")

# The review's push job and the release: ARCHIVE is an OCI archive a pull-request job built;
# nothing is pushed unless its bytes are what the commit and dvc.lock name.
release-push: $(STAMP) ## (review CI) Verify the VARIANT image in ARCHIVE against dvc.lock and the commit, then push it
	@test -n "$(ARCHIVE)" || { echo "usage: make release-push VARIANT=<v> ARCHIVE=<oci archive>" >&2; exit 2; }
	textclf release verify-archive "$(ARCHIVE)" --root "$(ROOT)" $(if $(REV),--rev "$(REV)") --variant "$(VARIANT)"
	textclf release push "$(ARCHIVE)" --root "$(ROOT)" $(if $(REV),--rev "$(REV)") --variant "$(VARIANT)" \
	  $(if $(GITHUB_OUTPUT),--outputs "$(GITHUB_OUTPUT)")

release-verify-image: $(STAMP) ## (release job) Fetch the pinned VARIANT image by digest; re-hash its files; check provenance in CI
	textclf release verify-image --root "$(ROOT)" $(if $(REV),--rev "$(REV)") --variant "$(VARIANT)" \
	  $(if $(GITHUB_REPOSITORY),--attested-by "$(GITHUB_REPOSITORY)")

release-missing: $(STAMP) ## Print (JSON) the image variants of ROOT/REV whose tag is not in the registry
	@textclf release missing --root "$(ROOT)" $(if $(REV),--rev "$(REV)")

checkout: $(STAMP) ## Check out the shipped outputs dvc.lock names from the local DVC cache
	dvc checkout $$(textclf release outputs)

release-verify: $(STAMP) ## Re-hash the DVC cache and workspace outputs against dvc.lock (data.dvc too)
	textclf release verify --root "$(ROOT)" --dvc-files

release-pull: $(STAMP) ## (release job) Pull the shipped outputs from the release remote; verify every byte
	dvc pull -r release $$(textclf release outputs)
	textclf release verify -r release $$(textclf release outputs)

promote: $(STAMP) ## (main, no PR code) Verify the merged outputs from the review remote, copy them to release
	dvc fetch -r review
	textclf release verify -r review --dvc-files --no-workspace
	dvc push -r release

# The review's credential jobs: REVIEW_DIR holds a PR's DVC pointer files (dvc.yaml, dvc.lock,
# *.dvc, params.yaml) and never its code; DVC runs there with THIS checkout's config.
review-pull: $(STAMP) ## (review CI) Pull data, outputs and run-cache for the DVC files in REVIEW_DIR
	@test -n "$(REVIEW_DIR)" || { echo "usage: make review-pull REVIEW_DIR=<dir>" >&2; exit 2; }
	rm -rf "$(REVIEW_DIR)/.dvc" && mkdir -p "$(REVIEW_DIR)/.dvc" && cp .dvc/config "$(REVIEW_DIR)/.dvc/config"
	@# Production texts never reach the PR's jobs: its traffic.dvc is not pulled (review-traffic is).
	rm -rf "$(REVIEW_DIR)/traffic" "$(REVIEW_DIR)/traffic.dvc"
	cd "$(REVIEW_DIR)" && dvc pull -r review --run-cache --allow-missing

# The snapshot a PR is replayed on is the BASE's (this checkout's traffic.dvc), never the PR's,
# pulled into a DVC project of its own so its texts stay out of the cache the PR's jobs get.
review-traffic: $(STAMP) ## (review CI) Pull this checkout's traffic snapshot into OUT (or write OUT/NONE)
	@test -n "$(OUT)" || { echo "usage: make review-traffic OUT=<dir>" >&2; exit 2; }
	rm -rf "$(OUT)" "$(OUT).dvc-project" && mkdir -p "$(OUT)"
	if [ -f traffic.dvc ]; then \
	  mkdir "$(OUT).dvc-project" && cp traffic.dvc "$(OUT).dvc-project/" && cd "$(OUT).dvc-project" && \
	  dvc init -q --no-scm && cp "$(CURDIR)/.dvc/config" .dvc/config && dvc pull -q -r review traffic.dvc && \
	  textclf snapshot verify traffic && cp traffic/* "$(OUT)/" && rm -rf "$(OUT).dvc-project"; \
	else \
	  echo "$$(git log -1 --format=%h 2>/dev/null || echo 'this checkout') has no traffic.dvc: no production replay" > "$(OUT)/NONE"; \
	fi

review-push: $(STAMP) ## (review CI) Re-hash every object in REVIEW_DIR's DVC cache, then push to the review remote
	@test -n "$(REVIEW_DIR)" || { echo "usage: make review-push REVIEW_DIR=<dir>" >&2; exit 2; }
	rm -f "$(REVIEW_DIR)/.dvc/config.local" && cp .dvc/config "$(REVIEW_DIR)/.dvc/config"
	textclf release verify --root "$(REVIEW_DIR)" --no-workspace --all-objects
	cd "$(REVIEW_DIR)" && dvc push -r review --run-cache

review-plots: $(STAMP) ## (review CI) DVC plots of ROOT vs BASE into ROOT/dvc_plots
	cd "$(ROOT)" && dvc plots diff "$(BASE)" --out dvc_plots

test: $(STAMP) ## Run the fast test suite (excludes tests marked slow)
	$(BIN)/pytest $(PYTEST_ARGS)

test-all: $(STAMP) ## Run every test, slow ones included (not the image tests: make test-image)
	$(BIN)/pytest -m "not gpu and not image" $(PYTEST_ARGS)

container-setup: ## (root) Install podman, runc, mmdebstrap, docker-registry; build the local python:3.11-slim
	bash scripts/containers/setup.sh

VARIANT ?= cpu
ARCHIVE ?=

image: $(STAMP) ## Build an image of the workspace's model with podman (VARIANT=cpu|gpu|drift; runs the pipeline if needed)
	@test -f artifacts/onnx/model.int8.onnx || $(MAKE) repro
	bash scripts/containers/build-image.sh $(VARIANT) $(if $(ARCHIVE),--save "$(ARCHIVE)")

# The review runners' image (images/review-runner.Containerfile): built and pushed on main by
# .github/workflows/runner-image.yml, pinned by digest in deploy/runners/values.yaml.
RUNNER_REPOSITORY ?= ghcr.io/your-org/gitops-text-classifier-runner
RUNNER_BASE ?=
export RUNNER_BASE

runner-image: $(STAMP) ## Build the review runners' image from requirements/review-gpu.txt (RUNNER_BASE=<image> replaces GitHub's runner)
	bash scripts/containers/build-image.sh runner $(if $(ARCHIVE),--save "$(ARCHIVE)")

runner-push: $(STAMP) ## (runner-image CI) Push the runner image in ARCHIVE as RUNNER_REPOSITORY:<r- tag>, never moving a tag
	@test -n "$(ARCHIVE)" || { echo "usage: make runner-push ARCHIVE=<oci archive> RUNNER_REPOSITORY=<repo>" >&2; exit 2; }
	textclf release runner-push "$(ARCHIVE)" --repository "$(RUNNER_REPOSITORY)" \
	  $(if $(GITHUB_OUTPUT),--outputs "$(GITHUB_OUTPUT)") $(if $(GITHUB_STEP_SUMMARY),--summary "$(GITHUB_STEP_SUMMARY)")

runner-pin: $(STAMP) ## Pin the pushed runner image (RUNNER_REPOSITORY:<r- tag>@<registry digest>) in deploy/runners/values.yaml
	textclf release runner-pin --repository "$(RUNNER_REPOSITORY)"

# The runner image (mostly a 3.5 GB download and its install) builds while the other two do.
test-image: $(STAMP) container-setup ## Build the serving, drift and runner images, run them as the pods do, push to a local registry
	$(MAKE) runner-image RUNNER_BASE=$(or $(RUNNER_BASE),python:3.11-slim) & runner=$$!; \
	  { $(MAKE) image VARIANT=cpu && $(MAKE) image VARIANT=drift; } || { wait $$runner; exit 1; }; \
	  wait $$runner
	$(BIN)/pytest -m image tests/image $(PYTEST_ARGS)

lint: $(STAMP) secrets ## ruff (lint + format check), mypy, the secret scan, and the runner lock against pyproject.toml
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	textclf release runner-check

secrets: $(STAMP) ## Scan every file git tracks (or would) for secrets against .secrets.baseline
	git ls-files -z --cached --others --exclude-standard | xargs -0 $(BIN)/detect-secrets-hook --baseline .secrets.baseline

LOCKS := requirements/serving.txt requirements/serving-gpu.txt requirements/drift.txt
UV_COMPILE = $(BIN)/uv pip compile --quiet --native-tls --generate-hashes --python-version 3.11 \
  --python-platform x86_64-manylinux_2_28 --no-header --annotation-style line

lock: $(STAMP) ## Recompile the hash-locked requirements (requirements/*.txt: images, review runners)
	for lock in $(LOCKS); do $(UV_COMPILE) "$${lock%.txt}.in" -o "$$lock"; done
	$(UV_COMPILE) --extra gpu --extra dev pyproject.toml requirements/review-build.in \
	  -o requirements/review-gpu.txt

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

pre-commit: $(STAMP) ## Install the git pre-commit hooks
	$(BIN)/pre-commit install

clean: ## Remove caches (keeps .venv, data and DVC outputs)
	rm -rf .pytest_cache .mypy_cache .ruff_cache dvc_plots
	find . -name __pycache__ -type d -prune -not -path "./$(VENV)/*" -exec rm -rf {} +
