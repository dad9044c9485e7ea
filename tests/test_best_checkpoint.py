"""best.ckpt holds the highest valid accuracy and, among equal ones, the lowest valid
log-loss: a real Trainer on a tiny module whose validations report scripted metrics."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch
from torch import nn

from imgclf.callbacks.defaults import checkpoint_callbacks
from imgclf.callbacks.step_checkpoint import BestAndLastCheckpoint
from imgclf.training.progress import best_record

ACC = [0.5, 1.0, 1.0, 1.0, 0.75]
LOSS = [0.9, 0.5, 0.3, 0.4, 0.2]


class ScriptedValidation(L.LightningModule):
    """Trains a linear layer; validation `epoch` reports ACC[epoch] and LOSS[epoch]."""

    def __init__(self, acc: list[float], loss: list[float] | None):
        super().__init__()
        self.layer = nn.Linear(2, 1)
        self.acc, self.loss = acc, loss

    def training_step(self, batch, batch_idx):
        return self.layer(batch).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        self.log("valid/acc", self.acc[self.current_epoch])
        if self.loss is not None:
            self.log("valid/logloss", self.loss[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def fit(tmp_path, acc, loss, callback=None) -> BestAndLastCheckpoint:
    callback = callback or best_checkpoint(tmp_path)
    batches = torch.utils.data.DataLoader(torch.rand(4, 2), batch_size=4)
    trainer = L.Trainer(
        max_epochs=len(acc),
        callbacks=[callback],
        default_root_dir=tmp_path,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(ScriptedValidation(acc, loss), batches, batches)
    return callback


def best_checkpoint(tmp_path) -> BestAndLastCheckpoint:
    """best.ckpt's callback as the default callbacks make it."""
    callback = checkpoint_callbacks(tmp_path / "checkpoints", every_n_train_steps=0)[0]
    assert isinstance(callback, BestAndLastCheckpoint)
    return callback


def saved_epoch(callback: BestAndLastCheckpoint) -> int:
    return torch.load(callback.best_model_path, weights_only=False)["epoch"]


def test_a_tie_in_accuracy_goes_to_the_lower_log_loss(tmp_path):
    callback = fit(tmp_path, ACC, LOSS)
    # Epochs 2 to 4 (counted from 1) reach 1.0; epoch 3's log-loss 0.3 is the lowest of them.
    assert saved_epoch(callback) == 2  # Lightning's count from 0
    assert callback.best_model_score.item() == 1.0
    assert callback.best_model_loss == pytest.approx(0.3)
    # The summary's account of best.ckpt ranks the same way.
    history = [
        {"epoch": n + 1, "valid/acc": a, "valid/logloss": lo}
        for n, (a, lo) in enumerate(zip(ACC, LOSS, strict=True))
    ]
    assert best_record(history)["epoch"] == 3


def test_a_higher_accuracy_wins_whatever_its_loss(tmp_path):
    callback = fit(tmp_path, [0.5, 0.75, 1.0], [0.2, 0.1, 0.9])
    assert saved_epoch(callback) == 2


def test_without_a_log_loss_the_first_of_equal_scores_is_kept(tmp_path):
    callback = fit(tmp_path, ACC, None)
    assert saved_epoch(callback) == 1
    assert math.isnan(callback.best_model_loss)


def test_the_tie_break_survives_a_resume_and_older_checkpoints_keep_their_best(tmp_path):
    state = fit(tmp_path, ACC, LOSS).state_dict()
    assert state["best_model_loss"] == pytest.approx(0.3)
    resumed = best_checkpoint(tmp_path)
    resumed.load_state_dict(state)
    assert resumed.best_model_loss == pytest.approx(0.3)
    older = best_checkpoint(tmp_path)
    older.load_state_dict({k: v for k, v in state.items() if k != "best_model_loss"})
    assert math.isnan(older.best_model_loss)  # unknown: no tie will replace its best
