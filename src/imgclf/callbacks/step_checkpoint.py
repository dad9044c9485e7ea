"""last.ckpt every N training steps, so a run killed in the middle of an epoch resumes there."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from imgclf.training.checkpoints import link_checkpoint


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
    """ModelCheckpoint(save_last=True) that writes last.ckpt after every validation.

    Lightning 2.6 writes last.ckpt only when it has just saved a top-k checkpoint, that is
    when best.ckpt improved; an epoch that did not improve would leave last.ckpt an epoch
    (or a stage) behind. Here it is written at every epoch end (after the epoch's validation,
    so a resumed run does not repeat it), whatever best.ckpt does.
    """

    _last_written_step = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # best.ckpt ranks by the task's metric: valid/acc, or valid/fbeta for multi-label
        # (both higher is better, the mode set at construction).
        task = getattr(pl_module, "task", None)
        if task is not None:
            self.monitor = task.monitor
        super().setup(trainer, pl_module, stage)

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
