"""One count: epochs and steps from 1 wherever a person reads them. The conversions from
Lightning's counters, our loggers, and resuming an older checkpoint; a trained run's console,
progress bar, summary.json, CSV, TensorBoard and W&B agree in tests/test_train_cli.py, and
its image sizes are checked in tests/test_multilabel.py (a head at 32 px, then 64 px)."""

from __future__ import annotations

import csv

import pytest

from imgclf.callbacks.console import bar_description
from imgclf.commands.train import handed_over_size
from imgclf.reporting.counting import epoch_number, lightning_step, step_number
from imgclf.reporting.loggers import CSVLogger, TensorBoardLogger
from imgclf.training.progress import RecipeProgress


def test_the_count_conversions():
    assert [epoch_number(e) for e in (0, 1, 14)] == [1, 2, 15]
    assert [step_number(s) for s in (0, 3)] == [1, 4]
    assert [lightning_step(step_number(s)) for s in (-1, 0, 7)] == [-1, 0, 7]
    assert bar_description(3, 15) == "Epoch 3/15"
    assert bar_description(1, None, width=10) == "Epoch 1   "


@pytest.mark.parametrize("logger_class", [CSVLogger, TensorBoardLogger])
def test_our_loggers_turn_lightnings_counts_into_numbers(tmp_path, logger_class):
    """What Lightning hands a logger (epoch 0, step 3: after the 4th step of the first
    epoch) is recorded as epoch 1, step 4; pictures' rows without an epoch keep theirs."""
    logger = logger_class(save_dir=str(tmp_path), name="log", version="")
    logger.log_metrics({"epoch": 0, "valid/acc": 0.5}, step=3)
    logger.log_metrics({"lr": 0.1}, step=7)
    logger.save()
    if logger_class is CSVLogger:
        with open(tmp_path / "log" / "metrics.csv", newline="") as stream:
            rows = list(csv.DictReader(stream))
        assert [(r["epoch"], r["step"]) for r in rows] == [("1", "4"), ("", "8")]
    else:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        logger.finalize("success")
        events = EventAccumulator(str(tmp_path / "log"))
        events.Reload()
        assert [(e.value, e.step) for e in events.Scalars("epoch")] == [(1.0, 4)]
        assert [e.step for e in events.Scalars("lr")] == [8]


def test_a_resumed_run_continues_the_count_of_an_older_checkpoint():
    """History saved counting from 0 (before the count from 1) is renumbered on load; a
    saved state that counts from 1 is loaded as it is."""
    progress = RecipeProgress()
    progress.history = [{"epoch": 1, "step": 4}, {"epoch": 2, "step": 8}]
    state = progress.state_dict()
    again = RecipeProgress()
    again.load_state_dict(state)
    assert [h["epoch"] for h in again.history] == [1, 2]
    older = {k: v for k, v in state.items() if k != "epochs_from"}
    older["history"] = [{"epoch": 0, "step": 4}, {"epoch": 1, "step": 8}]
    again.load_state_dict(older)
    assert [(h["epoch"], h["step"]) for h in again.history] == [(1, 4), (2, 8)]


def test_summary_image_size_is_the_size_of_the_handed_over_weights():
    stages = [{"name": "head", "image_size": 64}, {"name": "finetune", "image_size": 96}]
    assert handed_over_size({"stage": "finetune", "image_size": 96}, stages, 64) == 96
    assert handed_over_size({"stage": "head", "image_size": 64}, stages, 32) == 64
    assert handed_over_size({}, stages, 32) == 96  # no validation: the last stage's
    assert handed_over_size({}, [], 32) == 32


def test_the_closing_line_names_the_metric_the_best_weights_were_chosen_by():
    from imgclf.commands.train import closing_block

    common = {"best_valid_acc": 0.9, "best_epoch": 15, "valid_logloss": 0.24, "wall_seconds": 70}
    single = closing_block({**common, "task": "single"}, "run").splitlines()[0]
    assert single.startswith("best valid accuracy 0.9000 at epoch 15; valid log-loss 0.2400")
    multi = closing_block({**common, "task": "multi", "best_valid_fbeta": 0.83}, "run")
    assert multi.splitlines()[0].startswith(
        "best valid F2 0.8300 at epoch 15; accuracy_multi 0.9000; valid log-loss 0.2400"
    )


def test_the_progress_bar_shows_the_running_loss_only():
    from imgclf.callbacks.console import bar_metrics

    lightning = {"v_num": "bebe", "train/loss": 0.216, "valid/acc": 0.944, "valid/logloss": 0.2}
    assert bar_metrics(lightning) == {"loss": 0.216}
    assert bar_metrics({"v_num": "bebe"}) == {}
