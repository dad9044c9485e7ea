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

.PHONY: install train demo test bench bench-quality lint lock clean

install: $(INSTALLED)

# Reinstall only when the dependency declarations change.
$(INSTALLED): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --constraint requirements.lock --editable ".[dev]"
	touch $@

demo: $(INSTALLED)
	$(BIN)/imgclf demo data/digits

# The main job: the lesson-1 recipe with tf_efficientnet_lite0 on the embedded digits demo.
# ARGS adds Hydra overrides.
train: demo
	$(BIN)/imgclf train experiment=digits $(ARGS)

test: $(INSTALLED)
	$(BIN)/python -m pytest $(ARGS)

# Speed and memory benchmarks -> benchmarks/results.json and results.md (about 8 minutes
# on 2 CPU cores). ARGS=--quick: fewer rounds, no demo recipe run.
bench: $(INSTALLED)
	$(BIN)/python benchmarks/run.py $(ARGS)

# Quality on real data sets that packages ship (digits, faces, icons): the default
# `imgclf train` against fastai 2.8 (own virtualenv, made on first use) and a plain PyTorch
# loop -> benchmarks/results-quality.json and .md. ARGS: e.g. --sets icons --only imgclf.
bench-quality: $(INSTALLED)
	$(BIN)/python benchmarks/quality.py $(ARGS)

lint: $(INSTALLED)
	$(BIN)/pre-commit run --all-files

# Re-pin requirements.lock from what the virtualenv holds (after changing pyproject.toml).
lock: $(INSTALLED)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^imgclf' > requirements.lock

clean:
	rm -rf logs outputs .pytest_cache .ruff_cache
