"""CollectPredictions: every validation/test/predict probability, by dataset index,
gathered from all DDP ranks.

TTA, `interpret`, `predict` and the clipping and misclassification-view callbacks read the
gathered result from here, so an epoch's predictions are collected and gathered once. Only the
index, label and probability row of each image are kept; never pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from imgclf.errors import required_callback


@dataclass
class Predictions:
    """Dataset row indices (sorted), their true labels (-1 when unlabelled) and probabilities."""

    indices: np.ndarray
    labels: np.ndarray
    probs: np.ndarray

    def __len__(self) -> int:
        return len(self.indices)


def dedupe_by_index(indices: np.ndarray, labels: np.ndarray, probs: np.ndarray) -> Predictions:
    """Sort by dataset index and keep the first copy of each: DistributedSampler pads the
    last ranks with repeats of the first images so every rank gets the same count."""
    indices = np.asarray(indices)
    order = np.argsort(indices, kind="stable")
    first = np.ones(len(order), dtype=bool)
    first[1:] = indices[order][1:] != indices[order][:-1]
    keep = order[first]
    return Predictions(indices[keep], np.asarray(labels)[keep], np.asarray(probs)[keep])


def first_loader(loaders):
    if isinstance(loaders, (list, tuple)):
        return loaders[0] if loaders else None
    return loaders


def gather_rows(trainer: L.Trainer, rows: torch.Tensor) -> torch.Tensor:
    """Concatenate a per-rank tensor over all ranks (lengths may differ by rank)."""
    if trainer.world_size == 1:
        return rows
    strategy = trainer.strategy
    length = torch.tensor([rows.shape[0]], device=strategy.root_device)
    lengths = strategy.all_gather(length).view(-1).tolist()
    padded = torch.zeros((max(lengths), *rows.shape[1:]), dtype=rows.dtype)
    padded[: rows.shape[0]] = rows
    gathered = strategy.all_gather(padded.to(strategy.root_device)).cpu()
    return torch.cat([gathered[rank, :n] for rank, n in enumerate(lengths)])


def batch_indices(loader) -> list[list[int]]:
    """The dataset indices of each batch the loader will yield, without touching its data.
    Lightning's predict loop wraps the batch sampler in an iterator that must not be
    restarted, so the wrapped sampler is read instead."""
    sampler = loader.batch_sampler
    sampler = getattr(sampler, "_batch_sampler", sampler)
    return [list(batch) for batch in sampler]


class CollectPredictions(Callback):
    """Records (index, label, probabilities) of each validation, test and predict batch.

    The dataset index of every sample comes from the loader's batch sampler, which is
    deterministic for evaluation loaders (plain or DistributedSampler without shuffling).
    `result(trainer)` gathers from every rank once per epoch; every rank must call it.
    """

    def __init__(self) -> None:
        self._reset(None)

    def _reset(self, loader) -> None:
        self._batches = batch_indices(loader) if loader is not None else []
        self._indices: list[np.ndarray] = []
        self._labels: list[torch.Tensor] = []
        self._probs: list[torch.Tensor] = []
        self._result: Predictions | None = None
        self.kind: str | None = None

    def _record(self, probs: torch.Tensor, batch, batch_idx: int, dataloader_idx: int) -> None:
        if dataloader_idx != 0 or batch_idx >= len(self._batches):
            return
        labels = batch[1] if isinstance(batch, (list, tuple)) and len(batch) > 1 else None
        self._indices.append(np.asarray(self._batches[batch_idx], dtype=np.int64))
        # A copy: later callbacks may change the returned predictions in place (clipping).
        self._probs.append(probs.detach().float().cpu().clone())
        if labels is None:
            labels = torch.full((len(probs),), -1)
        self._labels.append(labels.detach().cpu().long())

    # -- Lightning hooks -----------------------------------------------------------------
    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._reset(first_loader(trainer.val_dataloaders))
        self.kind = "valid"

    def on_test_epoch_start(self, trainer, pl_module) -> None:
        self._reset(first_loader(trainer.test_dataloaders))
        self.kind = "test"

    def on_predict_epoch_start(self, trainer, pl_module) -> None:
        self._reset(first_loader(trainer.predict_dataloaders))
        self.kind = "predict"

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        self._record(outputs, batch, batch_idx, dataloader_idx)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._record(outputs, batch, batch_idx, dataloader_idx)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._record(outputs, batch, batch_idx, dataloader_idx)

    # -- the gathered result -------------------------------------------------------------
    def result(self, trainer: L.Trainer) -> Predictions:
        """This epoch's predictions from every rank, deduplicated, sorted by dataset index."""
        if self._result is None:
            num_classes = self._probs[0].shape[1] if self._probs else 0
            indices = torch.from_numpy(np.concatenate(self._indices or [np.zeros(0, np.int64)]))
            labels = torch.cat(self._labels) if self._labels else torch.zeros(0, dtype=torch.long)
            probs = torch.cat(self._probs) if self._probs else torch.zeros(0, num_classes)
            self._result = dedupe_by_index(
                gather_rows(trainer, indices).numpy(),
                gather_rows(trainer, labels).numpy(),
                gather_rows(trainer, probs).numpy(),
            )
        return self._result


def find_collector(trainer: L.Trainer) -> CollectPredictions:
    return required_callback(
        trainer, CollectPredictions, "clipping, the misclassification views, TTA and predict"
    )


def prediction_trainer(accelerator: str = "auto", devices: int | str = 1) -> L.Trainer:
    """A quiet Trainer for TTA, `interpret` and `predict` when none is given: one device
    (the GPU if there is one), no logger, no progress bar, with CollectPredictions."""
    quiet_lightning()
    return L.Trainer(
        accelerator=accelerator,
        devices=devices,
        logger=False,
        callbacks=[CollectPredictions()],
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
    )


def quiet_lightning() -> None:
    """Silence Lightning's device banner and its warning about few DataLoader workers
    (notebooks and one-off prediction Trainers)."""
    import logging
    import warnings

    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
