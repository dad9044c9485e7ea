"""last.ckpt every N training steps, so a run killed in the middle of an epoch resumes there."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import Tensor

from imgclf.training.checkpoints import link_checkpoint
from imgclf.training.progress import TIE_BREAK


class StepCheckpoint(L.Callback):
    """Overwrite `dirpath/filename.ckpt` after every `every_n_train_steps` optimizer steps.

    ModelCheckpoint's `save_last` writes last.ckpt at epoch ends; this one writes the same
    file inside epochs. Together with ReplayDataLoader (sample order and augmentation) and
    ResumeState (RNG states) a resumed run continues as if it had never stopped. 0 turns it off.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 200, filename: str = "last"):
        if every_n_train_steps < 0:
            raise ValueError(f"every_n_train_steps must be >= 0, got {every_n_train_steps}")
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.filename = filename
        self._last_saved_step = -1

    @property
    def path(self) -> Path:
        return self.dirpath / f"{self.filename}.ckpt"

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = self.every_n_train_steps
        step = trainer.global_step
        # With gradient accumulation several batches end at one step: save once.
        if n and step > 0 and step % n == 0 and step != self._last_saved_step:
            trainer.save_checkpoint(self.path, weights_only=False)
            self._last_saved_step = step


class BestAndLastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint(save_last=True) that writes last.ckpt after every validation and
    breaks ties of best.ckpt's score by the valid log-loss.

    Lightning 2.6 writes last.ckpt only when it has just saved a top-k checkpoint, that is
    when best.ckpt improved; an epoch that did not improve would leave last.ckpt an epoch
    (or a stage) behind. Here it is written at every epoch end (after the epoch's validation,
    so a resumed run does not repeat it), whatever best.ckpt does.

    Lightning keeps the first of equal scores; with `save_top_k=1` an epoch whose score
    equals best.ckpt's and whose valid log-loss is lower replaces it (`validation_rank`, by
    which the summary names best.ckpt's epoch too).
    """

    _last_written_step = -1
    best_model_loss = math.nan  # best.ckpt's valid log-loss; NaN: unknown, no tie replaces it

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # best.ckpt ranks by the task's metric: valid/acc, or valid/fbeta for multi-label
        # (both higher is better, the mode set at construction).
        task = getattr(pl_module, "task", None)
        if task is not None:
            self.monitor = task.monitor
        super().setup(trainer, pl_module, stage)

    def check_monitor_top_k(self, trainer: L.Trainer, current: Tensor | None = None) -> bool:
        if super().check_monitor_top_k(trainer, current):
            return True
        # Every rank takes this branch (the decision above is reduced over ranks).
        tie = current is not None and self._ties_with_lower_loss(trainer, float(current))
        return trainer.strategy.reduce_boolean_decision(tie)

    def _ties_with_lower_loss(self, trainer: L.Trainer, current: float) -> bool:
        if self.save_top_k != 1 or self.best_model_score is None or not self.best_k_models:
            return False
        loss = trainer.callback_metrics.get(TIE_BREAK)
        if loss is None:
            return False
        return current == float(self.best_model_score) and float(loss) < self.best_model_loss

    def _update_best_and_save(
        self, current: Tensor, trainer: L.Trainer, monitor_candidates: dict[str, Tensor]
    ) -> None:
        loss = monitor_candidates.get(TIE_BREAK)
        self.best_model_loss = math.nan if loss is None else float(loss)
        super()._update_best_and_save(current, trainer, monitor_candidates)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "best_model_loss": self.best_model_loss}

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        # A checkpoint of an earlier version does not know it: no tie replaces its best.
        self.best_model_loss = state_dict.get("best_model_loss", math.nan)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._should_save_on_train_epoch_end(trainer):
            self._save_last_every_epoch(trainer)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_validation_end(trainer, pl_module)
        if not self._should_save_on_train_epoch_end(trainer):
            self._save_last_every_epoch(trainer)

    def _save_last_every_epoch(self, trainer: L.Trainer) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit" or not self.save_last:
            return
        if self._last_written_step != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        # best.ckpt written at this very step: last.ckpt is a second name of it (a hard
        # link) instead of the same megabytes written again. (Lightning's save_last="link"
        # links to the newest save even when that is an older best.)
        last = self.format_checkpoint_name(monitor_candidates, self.CHECKPOINT_NAME_LAST)
        best = Path(self.best_model_path)
        if self._best_saved_at(trainer.global_step) and link_checkpoint(trainer, best, Path(last)):
            self.last_model_path = last
        else:
            super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_written_step = trainer.global_step

    def _best_saved_at(self, step: int) -> bool:
        return bool(self.best_model_path) and (
            self._last_checkpoint_saved == self.best_model_path
            and self._last_global_step_saved == step
            and not self._enable_version_counter
        )
