# `make train` and `make test` set the project up on first use (a virtualenv in .venv,
# installed from requirements.lock) and reuse it afterwards.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1
# pre-commit's local hooks and the tests' subprocesses find the project's tools first.
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install train serve demo test test-fast bench bench-gpu bench-contention bench-quality lint docs lock clean

# `make help` (the default target): every target with its `##` description.
help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 12

install: $(INSTALLED) ## create .venv and install the pinned dependencies

# Reinstall only when the dependency declarations change.
$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable ".[dev]"
	touch $@

demo: $(INSTALLED) ## build the embedded digits demo folder (data/digits)
	$(BIN)/imgclf demo data/digits

# The main job: the lesson-1 recipe with tf_efficientnet_lite0 on the embedded digits demo.
# ARGS adds Hydra overrides.
train: demo ## the lesson-1 recipe on the demo digits (ARGS: more overrides)
	$(BIN)/imgclf train experiment=digits $(ARGS)

# The web page of the newest run under logs/train (what `make train` made) on
# http://127.0.0.1:7860 until Ctrl-C. ARGS adds overrides (port=8080, host=0.0.0.0).
serve: $(INSTALLED) ## the web page of the newest training run (ARGS: e.g. port=8080)
	@run=$$(ls -d logs/train/*/checkpoints 2>/dev/null | sort | tail -n 1); \
	if [ -z "$$run" ]; then echo "error: no trained run in logs/train: run make train first" >&2; exit 2; fi; \
	$(BIN)/imgclf serve ckpt=$$(dirname $$run) $(ARGS)

# Two pytest workers, one test module each at a time (modules share trained runs): about
# 9 minutes on 2 idle cores against 16 for one worker. TEST_WORKERS=0: one process.
TEST_WORKERS ?= 2
test: $(INSTALLED) ## the whole test suite, what CI runs (ARGS: pytest options; TEST_WORKERS)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(ARGS)

# The inner loop: everything but the end-to-end training tests (marked slow).
test-fast: $(INSTALLED) ## the tests that train no model end to end (-m "not slow")
	$(BIN)/python -m pytest -m "not slow" $(ARGS)

# Speed and memory benchmarks -> benchmarks/results.json and results.md (about 8 minutes
# on 2 CPU cores). ARGS=--quick: fewer rounds, no demo recipe run.
bench: $(INSTALLED) ## speed and memory benchmarks (ARGS=--quick: fewer rounds)
	$(BIN)/python benchmarks/run.py $(ARGS)

# The workflow on a GPU -> benchmarks/results-gpu.json and results-gpu.md (about 8 minutes
# on one H200). ARGS="--only overhead,feeding" for a subset.
bench-gpu: $(INSTALLED) ## the GPU benchmark (needs a GPU) -> benchmarks/results-gpu.md
	$(BIN)/python benchmarks/gpu.py $(ARGS)

# Training images/s with and without a competing busy process, per torch threads and
# loader workers -> benchmarks/results-contention.json and a section of results.md.
bench-contention: $(INSTALLED) ## CPU contention figures -> benchmarks/results.md
	$(BIN)/python benchmarks/contention.py $(ARGS)

# Quality on six real data sets that packages ship (small: digits, faces, icons; large,
# 5,000 training images: glyphs, scripts, themes), three seeds each, in two halves (defaults
# chosen on one, confirmed on the other): the default `imgclf train` against fastai 2.8 (own
# virtualenv, made on first use) and a plain PyTorch loop -> benchmarks/results-quality.json
# and .md. ARGS: --quick (small sets, one seed, imgclf), --half confirm, --seeds 0,
# --sets icons --only imgclf.
bench-quality: $(INSTALLED) ## imgclf vs fastai vs a plain loop on real data -> benchmarks/results-quality.md
	$(BIN)/python benchmarks/quality.py $(ARGS)

lint: $(INSTALLED) ## pre-commit: ruff, nbstripout, hygiene hooks (offline)
	$(BIN)/pre-commit run --all-files

# The documentation site (mkdocs.yml, pages in docs/) -> site/. --strict: a broken link, a
# missing page or an anchor no heading makes fails the build.
docs: $(INSTALLED) ## build the documentation site into site/ (strict link checks)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# Re-pin requirements.lock from what the virtualenv holds (after changing pyproject.toml).
lock: $(INSTALLED) ## re-pin requirements.lock from the virtualenv
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^imgclf' > requirements.lock

clean: ## remove logs, outputs and tool caches
	rm -rf logs outputs site .pytest_cache .ruff_cache
