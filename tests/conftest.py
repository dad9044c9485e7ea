import os

import pytest

# Tests never reach for the network: W&B runs offline, albumentations skips its version check.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

# Modules that train models end to end (through the CLI, a Trainer or a notebook): the
# `slow` marker, so that `make test-fast` (`-m "not slow"`) leaves them out.
SLOW_MODULES = {
    "test_api",
    "test_bad_input",
    "test_benchmarks",
    "test_benchmarks_gpu",
    "test_ddp_interrupt",
    "test_ddp_multilabel",
    "test_ddp_recipe",
    "test_disk_full",
    "test_evaluate",
    "test_hparams_search",
    "test_notebook",
    "test_options_training",
    "test_precision",
    "test_readme_runs",
    "test_resume",
    "test_serve",
    "test_train_cli",
    "test_trained_run",
    "test_training_safety",
}


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
