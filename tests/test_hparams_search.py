"""End to end: a real Optuna search (`imgclf train -m hparams_search=optuna`) of two tiny
trials on the demo digits, and a search whose trials fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from helpers.cli import run_cli

from imgclf.data.demo import build_digits_demo

SEARCHED = {"recipe.finetune_lr", "recipe.lr_mult"}


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    return build_digits_demo(tmp_path_factory.mktemp("demo") / "digits")


def sweep_overrides(digits: Path, tmp: Path, finetune_size: int) -> list[str]:
    """Two trials at 32 px on 4 images per class, one epoch per stage; the head epochs and
    the unfrozen stage's size are fixed here, so the trials search the LR and lr_mult."""
    return [
        "-m",
        "hparams_search=optuna",
        "experiment=digits",
        f"data.root={digits}",
        "data.per_class=4",
        "data.image_size=32",
        "data.batch_size=8",
        "data.num_workers=0",
        "logger=csv",
        "lr_find.num_iter=5",
        "recipe.stages.0.epochs=1",
        "recipe.stages.1.epochs=1",
        f"recipe.finetune_image_size={finetune_size}",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={tmp / 'sweep'}",
        f"paths.log_dir={tmp / 'logs'}",
        f"paths.cache_dir={tmp / 'cache'}",
    ]


def test_a_two_trial_search_finds_the_best_trial(digits, tmp_path):
    result = run_cli("train", *sweep_overrides(digits, tmp_path, 32), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    trials = {}
    for number in (0, 1):
        trial = sweep / str(number)
        summary = json.loads((trial / "summary.json").read_text())
        config = yaml.safe_load((trial / "config.yaml").read_text())
        # data.per_class=4 caps the whole folder (40 images) before the 25 % validation split
        assert (summary["train_images"], summary["valid_images"]) == (30, 10)
        assert summary["image_size"] == 32
        assert config["optimized_metric"] == "valid_logloss"
        params = {"recipe.finetune_lr": config["recipe"]["finetune_lr"]}
        params["recipe.lr_mult"] = config["recipe"]["lr_mult"]
        trials[number] = (summary["valid_logloss"], params)
    assert trials[0][1] != trials[1][1]  # the sampler proposed two points
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    best_value = min(value for value, _ in trials.values())
    assert results["best_value"] == pytest.approx(best_value, rel=1e-9)
    assert set(results["best_params"]) == SEARCHED
    # The best parameters are those of a trial that reached the best value (tiny trials may tie).
    assert any(
        value == pytest.approx(best_value, rel=1e-9)
        and params == pytest.approx(results["best_params"], rel=1e-9)
        for value, params in trials.values()
    )
    assert f"Best value: {results['best_value']}" in result.stdout


def test_failed_trials_are_reported_and_the_search_goes_on(digits, tmp_path):
    result = run_cli("train", *sweep_overrides(digits, tmp_path, 16), cwd=tmp_path)
    assert result.returncode == 2  # no trial completed: there is no best one
    reason = "stage 'finetune' image_size=16 is too small for tf_efficientnet_lite0"
    for number in (0, 1):  # the second trial ran after the first had failed
        trial = tmp_path / "sweep" / str(number)
        line = f"trial {number} failed ({trial}): {reason}"
        assert line in result.stdout
        assert line in (trial / "cli.log").read_text()
        assert not (trial / "summary.json").exists()
    assert result.stderr.strip().splitlines()[-1] == (
        "error: the search ended without a completed trial: every trial failed (each "
        "'trial N failed' line above says why)"
    )
    assert "Traceback" not in result.stderr
