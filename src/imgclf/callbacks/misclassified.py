"""MisclassificationViews: at validation end, the course's five views, top losses and the
confusion matrix, as PNG grids, CSV tables and logger images/tables."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import Callback

from imgclf.callbacks.predictions import find_collector, first_loader
from imgclf.report import write_error_analysis


class MisclassificationViews(Callback):
    """Writes `out_dir/views/<view>.png|csv` and `out_dir/confusion.png|csv` (the latest
    validation) and logs them with the epoch's step. Every rank takes part in gathering the
    predictions; only global rank 0 loads images and writes.

    k: images per view. every_n_epochs: how often (the last epoch of every fit, that is of
    every recipe stage, always); 0: only then.
    """

    def __init__(self, out_dir: str | Path, k: int = 12, every_n_epochs: int = 1, seed: int = 0):
        self.out_dir = Path(out_dir)
        self.k = k
        self.every_n_epochs = max(0, int(every_n_epochs))
        self.seed = seed
        self.last: dict | None = None

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch
        last_epoch = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
        due = self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0
        if not due and not last_epoch:
            return
        predictions = find_collector(trainer).result(trainer)
        if not trainer.is_global_zero or len(predictions) == 0:
            return
        dataset = first_loader(trainer.val_dataloaders).dataset
        items = getattr(dataset, "items", None)
        if items is None:
            return
        paths = [items[i][0] for i in range(len(items))]
        labelled = predictions.labels >= 0
        self.last = write_error_analysis(
            predictions.probs[labelled],
            predictions.labels[labelled],
            [paths[i] for i in predictions.indices[labelled]],
            list(pl_module.hparams.class_names or map(str, range(predictions.probs.shape[1]))),
            self.out_dir,
            k=self.k,
            seed=self.seed + epoch,
            loggers=trainer.loggers,
            step=trainer.global_step,
        )
