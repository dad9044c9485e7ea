"""ClipProbabilities: log-loss before and after clipping, with `auto` eps chosen on validation."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import Callback

from imgclf.evaluation.clip_setting import parse_eps
from imgclf.evaluation.clipping import clip_probs, clipped_report
from imgclf.evaluation.collect import find_collector


class ClipProbabilities(Callback):
    """At validation (and test) end: log `<split>/logloss_clipped` and `<split>/clip_eps`
    next to the raw log-loss. At predict time: clip every returned batch in place.

    `eps="auto"` chooses eps on each validation epoch by minimising log-loss over a grid;
    the last choice is kept in the checkpoint and used for predictions.
    """

    def __init__(self, eps: float | str | None = "auto") -> None:
        self.eps = parse_eps(eps)
        self.chosen_eps: float | None = None if self.eps == "auto" else self.eps

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Reports need the gathered predictions (clipping at predict time does not): a
        # one-line error now, not after the first epoch.
        if self.eps is not None and stage != "predict":
            find_collector(trainer)

    def _report(self, trainer, pl_module, split: str) -> None:
        if self.eps is None or trainer.sanity_checking:
            return
        predictions = find_collector(trainer).result(trainer)
        task = pl_module.task
        labelled = task.labelled(predictions.labels)
        if not labelled.any():
            return
        probs, labels = predictions.probs[labelled], predictions.labels[labelled]
        report = clipped_report(probs, labels, self.eps, task)
        if split == "valid":
            self.chosen_eps = report["clip_eps"]
        pl_module.log(f"{split}/logloss_clipped", report["logloss_clipped"])
        pl_module.log(f"{split}/clip_eps", report["clip_eps"])

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        self._report(trainer, pl_module, "valid")

    def on_test_epoch_end(self, trainer, pl_module) -> None:
        self._report(trainer, pl_module, "test")

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        if self.chosen_eps and isinstance(outputs, torch.Tensor):
            outputs.copy_(clip_probs(outputs, self.chosen_eps, pl_module.task))

    def state_dict(self) -> dict:
        return {"chosen_eps": self.chosen_eps}

    def load_state_dict(self, state_dict: dict) -> None:
        self.chosen_eps = state_dict.get("chosen_eps", self.chosen_eps)
