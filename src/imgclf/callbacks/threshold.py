"""ChooseThreshold: multi-label decision thresholds chosen on each validation."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback
from torchmetrics.functional.classification import multilabel_average_precision

from imgclf.evaluation.collect import find_collector
from imgclf.task import best_threshold


class ChooseThreshold(Callback):
    """At validation end of a multi-label model: the threshold (one for all tags, or
    `per_class`) with the best samples-F-beta on the gathered validation predictions.
    Logs `valid/fbeta` at it (the metric best.ckpt is chosen by), `valid/threshold` (the
    mean over tags) and `valid/ap` (macro average precision, threshold-free), and gives
    the thresholds to the model (`set_thresholds`), whose checkpoints keep them.
    Single-label models are left alone."""

    def __init__(self, per_class: bool = False) -> None:
        self.per_class = per_class

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        task = pl_module.task
        if task.name != "multi" or trainer.sanity_checking:
            return
        predictions = find_collector(trainer).result(trainer)  # every rank gathers
        labelled = task.labelled(predictions.labels)
        probs, labels = predictions.probs[labelled], predictions.labels[labelled]
        if len(labels) == 0:
            return
        thresholds = best_threshold(probs, labels, task.beta, self.per_class)
        pl_module.set_thresholds(thresholds)
        pl_module.log("valid/fbeta", float(task.fbeta(probs, labels, thresholds).mean()))
        pl_module.log("valid/threshold", sum(thresholds) / len(thresholds))
        average_precision = multilabel_average_precision(
            torch.from_numpy(probs), torch.from_numpy(labels).long(), probs.shape[1]
        )
        pl_module.log("valid/ap", float(average_precision))
