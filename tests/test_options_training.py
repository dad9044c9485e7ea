"""The training options that act during a fit: an EMA of the weights (validated, saved in
best.ckpt, evaluated), early stopping per recipe stage, and gradient accumulation with our
step-based LR schedules."""

from __future__ import annotations

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from helpers.cli import run_small
from helpers.folders import make_image_folder
from helpers.models import small_datamodule_and_model

from imgclf.model.schedules import Schedule, one_cycle_factor
from imgclf.training.checkpoints import load_classifier, read_checkpoint


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """fine_tune (3 + 3 planned epochs) with an EMA of the weights and early stopping that
    no validation can satisfy (an improvement of 100 in log-loss): each stage stops after
    its second validation."""
    tmp = tmp_path_factory.mktemp("options")
    root = make_image_folder(tmp / "pets", n_train=6, n_valid=3, size=32)
    result, run_dir, summary = run_small(
        "train",
        root,
        tmp,
        "recipe=fine_tune",
        "recipe.stages.0.epochs=3",
        "recipe.stages.1.epochs=3",
        "callbacks.default.ema_decay=0.9",
        "callbacks.default.early_stopping_patience=1",
        "callbacks.default.early_stopping_min_delta=100",
        "logger=csv",
    )
    return result, run_dir, root, summary


def test_best_ckpt_holds_the_ema_weights_that_were_validated(ema_run):
    _, run_dir, root, summary = ema_run
    best = run_dir / "checkpoints" / "best.ckpt"
    checkpoint = read_checkpoint(best)
    ema, raw = checkpoint["state_dict"], checkpoint["current_model_state"]
    differing = [k for k in raw if raw[k].is_floating_point() and not torch.equal(raw[k], ema[k])]
    assert len(differing) > 10  # the average is not the raw weights
    # What evaluate/export load is what validation scored: the same log-loss.
    model = load_classifier(best)
    from imgclf.data import FolderDataModule

    data = FolderDataModule(root, image_size=32, batch_size=16, num_workers=0)
    data.setup("validate")
    data.set_data_config(model.data_config)
    losses = []
    with torch.no_grad():
        for images, labels in data.val_dataloader():
            losses.append(F.cross_entropy(model(images), labels, reduction="none"))
    epoch = summary["best_weights"]["epoch"]
    (record,) = [h for h in summary["history"] if h["epoch"] == epoch]
    assert float(torch.cat(losses).mean()) == pytest.approx(record["valid/logloss"], abs=1e-4)


def test_a_stage_stopped_early_hands_over_to_the_next_stage(ema_run):
    result, run_dir, _, summary = ema_run
    frozen, unfrozen = summary["stages"]
    assert frozen["epochs"] == 2 and frozen["planned_epochs"] == 3
    assert "did not improve" in frozen["stopped_early"]
    assert unfrozen["epochs"] == 2 and unfrozen["planned_epochs"] == 3
    assert "did not improve" in unfrozen["stopped_early"]
    assert [(h["epoch"], h["stage"]) for h in summary["history"]] == [
        (1, "frozen"),
        (2, "frozen"),
        (3, "unfrozen"),
        (4, "unfrozen"),
    ]
    assert summary["epochs"] == 4
    assert "stage 'frozen' stopped early after 2 of 3 epochs" in result.stdout
    # The last stage stopped early, and so ended the run: its views are drawn.
    assert (run_dir / "interpret" / "views" / "top_losses.png").is_file()


class RecordLR(L.Callback):
    def __init__(self) -> None:
        self.lrs: list[float] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.lrs.append(optimizer.param_groups[-1]["lr"])


def test_accumulation_schedules_count_optimizer_steps_not_batches(tmp_path):
    root = make_image_folder(tmp_path / "pets", n_train=5, n_valid=1, size=32)
    datamodule, model = small_datamodule_and_model(root)
    datamodule.batch_size = 2  # 10 images: 5 batches an epoch, 3 optimizer steps with 2
    lr = 1e-2
    model.set_stage(
        model.plan.__class__(
            name="all", lrs=(lr,) * 3, schedule=Schedule("one_cycle", epochs=2), image_size=32
        )
    )
    recorder = RecordLR()
    trainer = L.Trainer(
        max_epochs=2,
        accumulate_grad_batches=2,
        accelerator="cpu",
        logger=False,
        callbacks=[recorder],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )
    trainer.fit(model, datamodule.train_dataloader(), datamodule.val_dataloader())
    assert trainer.global_step == 6  # ceil(5 / 2) steps per epoch, 2 epochs
    expected = [lr * one_cycle_factor(k, 6) for k in range(6)]
    assert recorder.lrs == pytest.approx(expected, rel=1e-9)
    assert recorder.lrs[-1] == pytest.approx(lr / 1e5)  # the cycle ends on the last step
