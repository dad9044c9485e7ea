"""What a hyperparameter search needs, without training: the value `train` returns to the
sweeper, and a sweep's mistakes found before its first trial (one line, exit status 2)."""

from __future__ import annotations

import math
import sys

import pytest
from omegaconf import OmegaConf

from imgclf.cli import config_dir, main
from imgclf.commands.config_check import sweep_checked
from imgclf.commands.sweep import OPTIMIZABLE, check_optimized_metric, optimized_value
from imgclf.errors import UserError

SUMMARY = {"best_valid_acc": 0.975, "valid_logloss": 0.104, "valid_logloss_clipped": None}


def test_optimized_value_is_the_summary_value():
    assert optimized_value(SUMMARY, "valid_logloss") == 0.104
    assert optimized_value(SUMMARY, "best_valid_acc") == 0.975
    assert optimized_value(SUMMARY, None) is None  # a plain run returns nothing


@pytest.mark.parametrize("summary", [SUMMARY, {**SUMMARY, "best_valid_acc": math.nan}])
def test_a_run_without_a_finite_value_fails_its_trial(summary):
    name = "valid_logloss_clipped" if summary is SUMMARY else "best_valid_acc"
    with pytest.raises(UserError, match=f"optimized_metric {name}: the run ended without"):
        optimized_value(summary, name)


def test_an_unknown_optimized_metric_is_refused():
    with pytest.raises(UserError, match="optimized_metric='val/acc': choose one of best_valid_acc"):
        check_optimized_metric("val/acc")
    assert all(check_optimized_metric(name) is None for name in OPTIMIZABLE)


def test_the_optuna_search_composes_with_a_seeded_sampler_and_a_real_search_space():
    cfg = sweep_checked(config_dir(), "train", ["hparams_search=optuna", "experiment=digits"])
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert (sweeper.direction, cfg.optimized_metric) == ("minimize", "valid_logloss")
    assert sweeper.sampler._target_ == "optuna.samplers.TPESampler"
    assert sweeper.sampler.seed == 42
    assert set(sweeper.params) == {
        "recipe.finetune_lr",
        "recipe.lr_mult",
        "recipe.stages.0.epochs",
        "recipe.finetune_image_size",
    }
    sweep = OmegaConf.to_container(cfg.hydra.sweep)  # unresolved: no job runs here
    assert sweep["subdir"] == "${hydra.job.num}"  # a directory per trial


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["hparams_search=optuna", "recipe=fine_tune"],
            "the search space: recipe.finetune_lr: no such setting",
        ),
        (
            ["recipe.lr_mul=3,10"],
            "the search space: recipe.lr_mul: no such setting; did you mean recipe.lr_mult?",
        ),
        (["hparams_search=optuna", "data.batch_size=0"], "data.batch_size=0: must be a whole"),
        (["hparams_search=optuna", "optimized_metric=val/acc"], "optimized_metric='val/acc'"),
    ],
)
def test_sweep_mistakes_are_one_line_errors_before_any_trial(
    overrides, message, tmp_path, capsys, monkeypatch
):
    monkeypatch.setattr(sys, "argv", ["imgclf"])
    monkeypatch.setenv("IMGCLF_COMMAND", "")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "-m", *overrides, f"paths.log_dir={tmp_path / 'logs'}"])
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2, stderr[-2000:]
    assert stderr.strip().splitlines()[-1].startswith("error: ")
    assert message in stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr
    assert not (tmp_path / "logs").exists()  # no trial started
