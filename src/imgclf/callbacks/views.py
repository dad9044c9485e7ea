"""MisclassificationViews: at validation end, the course's five views, top losses and the
confusion matrix, as PNG grids, CSV tables and logger images/tables."""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch.callbacks import Callback

from imgclf.evaluation.collect import find_collector, first_loader
from imgclf.evaluation.report import write_error_analysis
from imgclf.evaluation.views import analyse_errors
from imgclf.training.progress import RecipeProgress


class MisclassificationViews(Callback):
    """Writes `out_dir/views/<view>.png|csv` and `out_dir/confusion.png|csv` (the latest
    validation) and logs them with the epoch's step. Every rank takes part in gathering the
    predictions (CollectPredictions); only global rank 0 loads images and writes.

    k: images per view. every_n_epochs: how often; 0: only at the end of the run (the last
    epoch of the recipe's last stage, or of a fit outside a recipe). The earlier stages'
    views would be overwritten by the last one's, and drawing them took a tenth of a small
    run's time.
    """

    def __init__(self, out_dir: str | Path, k: int = 12, every_n_epochs: int = 1, seed: int = 0):
        self.out_dir = Path(out_dir)
        self.k = k
        self.every_n_epochs = max(0, int(every_n_epochs))
        self.seed = seed
        self.last: dict | None = None
        self.validated_epoch: int | None = None  # the fit's latest validation
        self.drawn_epoch: int | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        find_collector(trainer)  # a one-line error now, not after the first epoch

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        epoch = self.validated_epoch = trainer.current_epoch
        due = self.every_n_epochs and (epoch + 1) % self.every_n_epochs == 0
        if due or run_ends_with(trainer, epoch):
            self.draw(trainer, pl_module, epoch)

    def on_train_end(self, trainer, pl_module) -> None:
        """A last stage that stopped before its last epoch (early stopping, the divergence
        guard) ends the run at its latest validation: the views are drawn from that."""
        if self.validated_epoch is None or self.drawn_epoch == self.validated_epoch:
            return
        if ends_the_recipe(trainer):
            self.draw(trainer, pl_module, self.validated_epoch)

    def draw(self, trainer, pl_module, epoch: int) -> None:
        """The views of the latest validation (gathered from every rank; rank 0 writes)."""
        self.drawn_epoch = epoch
        predictions = find_collector(trainer).result(trainer)
        if not trainer.is_global_zero or len(predictions) == 0:
            return
        items = getattr(first_loader(trainer.val_dataloaders).dataset, "items", None)
        if items is None:
            return
        if pl_module.task.name != "single":
            return  # the tag views are written by `imgclf evaluate`
        labelled = pl_module.task.labelled(predictions.labels)
        analysis = analyse_errors(
            predictions.probs[labelled],
            predictions.labels[labelled],
            [items[i][0] for i in predictions.indices[labelled]],
            pl_module.class_names,
            k=self.k,
            seed=self.seed + epoch,
        )
        self.last = write_error_analysis(
            analysis, self.out_dir, loggers=trainer.loggers, step=trainer.global_step
        )


def run_ends_with(trainer, epoch: int) -> bool:
    """Whether `epoch` is the last of the fit and the fit is the recipe's last stage."""
    last_epoch = trainer.max_epochs is not None and epoch + 1 >= trainer.max_epochs
    return last_epoch and ends_the_recipe(trainer)


def ends_the_recipe(trainer) -> bool:
    """Whether the running fit is the recipe's last stage (or a fit outside a recipe)."""
    progress = next((c for c in trainer.callbacks if isinstance(c, RecipeProgress)), None)
    return progress is None or progress.in_last_stage
