"""A stage whose loss explodes is caught within the epoch, put back on its best (or start)
weights, and goes on at lower learning rates; every recovery is one line and a record."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from helpers.cli import run_small
from helpers.folders import make_image_folder
from helpers.models import small_datamodule_and_model

from imgclf.model.schedules import Schedule
from imgclf.training.checkpoints import read_checkpoint
from imgclf.training.divergence import (
    DivergenceGuard,
    DivergenceRules,
    chance_loss,
    train_divergence,
    valid_divergence,
)

RULES = DivergenceRules()


def test_a_non_finite_training_loss_is_a_divergence():
    assert train_divergence(float("nan"), 1.0, 0, 0.5, 2.3, RULES) == "the training loss is nan"
    assert train_divergence(float("inf"), 1.0, 0, None, 2.3, RULES) == "the training loss is inf"
    assert train_divergence(0.4, 0.5, 0, 0.5, 2.3, RULES) is None


def test_a_training_loss_at_chance_counts_only_in_a_stage_that_started_below_it():
    chance = chance_loss(10)
    assert chance == pytest.approx(math.log(10))
    # The unfrozen stage started at valid loss 0.6 and its loss sits at ln 10 for 20 steps.
    reason = train_divergence(2.35, 2.31, RULES.chance_steps, 0.6, chance, RULES)
    assert reason.startswith("the training loss sat at chance level (2.31, chance 2.3) for 20")
    # 19 steps are not enough; a head stage that starts at chance is never judged by it.
    assert train_divergence(2.35, 2.31, RULES.chance_steps - 1, 0.6, chance, RULES) is None
    assert train_divergence(2.35, 2.31, 100, 2.2, chance, RULES) is None
    assert train_divergence(2.35, 2.31, 100, None, chance, RULES) is None


def test_a_valid_loss_far_above_the_stage_start_is_a_divergence():
    assert valid_divergence(12361.0, 0.52, RULES) == (
        "the valid loss rose to 1.236e+04 from 0.52 at the stage's start"
    )
    assert valid_divergence(float("nan"), 0.52, RULES) == "the valid loss is nan"
    # Ten times the start but less than 2.0 above it is noise near zero, not a divergence.
    assert valid_divergence(0.9, 0.04, RULES) is None
    # A peak-LR epoch whose valid loss doubles (glyphs, 2.2 -> 5.0) is not one either.
    assert valid_divergence(5.03, 2.209, RULES) is None
    assert valid_divergence(5.3, 0.52, RULES) == (
        "the valid loss rose to 5.3 from 0.52 at the stage's start"
    )


class ExplodesAtStep(L.Callback):
    """Turns the model's weights to NaN just before optimizer step `step` (the loss at the
    next step is NaN), as an LR far too high does, but at a known step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for param in pl_module.head.parameters():
                    param.fill_(float("nan"))


def test_a_nan_in_the_weights_goes_back_to_the_stage_start_at_a_tenth_of_the_lrs(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=6, n_valid=2, size=32)
    datamodule, model = small_datamodule_and_model(root)
    lr = 1e-3
    model.set_stage(
        model.plan.__class__(
            name="all", lrs=(lr,) * 3, schedule=Schedule("constant", epochs=2), image_size=32
        )
    )
    start = {k: v.clone() for k, v in model.state_dict().items()}
    guard = DivergenceGuard()
    guard.begin_stage()
    trainer = L.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        callbacks=[ExplodesAtStep(1), guard],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(model, datamodule.train_dataloader(), datamodule.val_dataloader())
    # Step 1's update made the head NaN, so step 2's loss (global_step 2 at its end) is NaN.
    (entry,) = guard.stage_recoveries
    assert entry == {
        "step": 3,
        "epoch": 1,
        "reason": "the training loss is nan",
        "restored": "the stage's start",
        "recovery": 1,
        "lr_scale": 0.1,
    }
    assert trainer.global_step == 6  # 12 images in batches of 4: 3 steps an epoch, 2 epochs
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(lr / 10)
    # It trained on after the recovery: the weights moved away from the start again.
    assert not torch.equal(model.state_dict()["head.8.weight"], start["head.8.weight"])


@pytest.mark.slow
def test_an_lr_too_high_is_caught_recovered_and_recorded_in_summary_json(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=6, n_valid=3, size=32)
    result, run_dir, summary = run_small(
        "train",
        root,
        tmp_path,
        "recipe=fine_tune",
        "recipe.stages.1.epochs=3",
        # Adam at LR 100 throws every weight around; a thousandth of it trains.
        "recipe.stages.1.lr=100",
        "recipe.stages.1.lr_mult=null",
        "logger=csv",
    )
    recoveries = summary["stages"][1]["recoveries"]
    assert 1 <= len(recoveries) <= 3
    first = recoveries[0]
    assert first["lr_scale"] == pytest.approx(0.1)
    assert first["restored"].startswith("the stage's")
    lines = [line for line in result.stdout.splitlines() if "diverged at step" in line]
    assert len(lines) == len(recoveries)
    assert lines[0].startswith(f"stage 'unfrozen' diverged at step {first['step']} ")
    assert "learning rates x0.1 (recovery 1 of 3)" in lines[0]
    # Every checkpoint written holds finite weights.
    for path in (run_dir / "checkpoints").glob("*.ckpt"):
        state = read_checkpoint(path)["state_dict"]
        assert all(torch.isfinite(t).all() for t in state.values()), path


def test_going_back_restores_the_weights_and_keeps_the_epochs_metrics(tmp_path):
    from imgclf.training.divergence import _cpu_copy, restore_weights

    root = make_image_folder(tmp_path / "pets", n_train=2, n_valid=1, size=32)
    _, model = small_datamodule_and_model(root)
    saved = _cpu_copy(model)  # a stage's start: its epoch means are still empty
    assert "head.8.weight" in saved
    assert not any(key.startswith(("train_loss_mean.", "train_acc.")) for key in saved)
    start = model.state_dict()["head.8.weight"].clone()
    model.train_loss_mean.update(torch.tensor([0.5, 0.7]))  # two steps of the epoch
    with torch.no_grad():
        for param in model.head.parameters():
            param.add_(1.0)
    restore_weights(model, saved)
    assert torch.equal(model.state_dict()["head.8.weight"], start)
    # Putting back the start's empty mean made the epoch's training loss 0/0 = NaN.
    assert model.train_loss_mean.compute().item() == pytest.approx(0.6)
