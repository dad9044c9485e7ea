"""last.ckpt every N training steps, so a run killed in the middle of an epoch resumes there."""

from __future__ import annotations

from pathlib import Path

import lightning as L


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
