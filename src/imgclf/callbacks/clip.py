"""ClipProbabilities: log-loss before and after clipping, with `auto` eps chosen on validation."""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from imgclf.callbacks.predictions import find_collector
from imgclf.clipping import DEFAULT_EPS, EPS_GRID, best_eps, clip_probs, log_loss
from imgclf.errors import UserError


def parse_eps(eps) -> float | str | None:
    """`clip:` config value: auto, a number in [0, 0.5), or null/false/0 for no clipping."""
    if eps is None or eps is False or str(eps).lower() in ("none", "null", "false", "off"):
        return None
    if str(eps).lower() == "auto":
        return "auto"
    if str(eps).lower() == "course":
        return DEFAULT_EPS
    try:
        value = float(eps)
    except (TypeError, ValueError):
        raise UserError(f"clip must be auto, a number like 0.05, or null; got {eps!r}") from None
    if not 0.0 <= value < 0.5:
        raise UserError(f"clip eps must be in [0, 0.5), got {value}")
    return value


def clipped_report(probs: np.ndarray, labels: np.ndarray, eps) -> dict:
    """Log-loss raw and clipped; `eps="auto"` picks it from the grid on these labels."""
    p, y = torch.from_numpy(np.asarray(probs, dtype=np.float64)), torch.from_numpy(labels)
    chosen = best_eps(p, y, EPS_GRID) if eps == "auto" else float(eps or 0.0)
    return {
        "logloss": log_loss(p, y),
        "logloss_clipped": log_loss(clip_probs(p, chosen), y),
        "clip_eps": chosen,
    }


class ClipProbabilities(Callback):
    """At validation (and test) end: log `<split>/logloss_clipped` and `<split>/clip_eps`
    next to the raw log-loss. At predict time: clip every returned batch in place.

    `eps="auto"` chooses eps on each validation epoch by minimising log-loss over a grid;
    the last choice is kept in the checkpoint and used for predictions.
    """

    def __init__(self, eps: float | str | None = "auto") -> None:
        self.eps = parse_eps(eps)
        self.chosen_eps: float | None = None if self.eps == "auto" else self.eps

    def _report(self, trainer, pl_module, split: str) -> None:
        if self.eps is None or trainer.sanity_checking:
            return
        predictions = find_collector(trainer).result(trainer)
        labelled = predictions.labels >= 0
        if not labelled.any():
            return
        report = clipped_report(predictions.probs[labelled], predictions.labels[labelled], self.eps)
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
            outputs.copy_(clip_probs(outputs, self.chosen_eps))

    def state_dict(self) -> dict:
        return {"chosen_eps": self.chosen_eps}

    def load_state_dict(self, state_dict: dict) -> None:
        self.chosen_eps = state_dict.get("chosen_eps", self.chosen_eps)
