"""SingleLabel: one class per image, as the course's Dogs vs. Cats (softmax, cross-entropy,
argmax)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgclf.task import rules

if TYPE_CHECKING:  # imported when a metric is made: predicting needs none
    from torchmetrics.classification import MulticlassAccuracy


class SingleLabel:
    """Labels are class indices (-1: unlabelled); probabilities sum to one per row."""

    name = "single"
    # The metric best.ckpt, sweeps and summaries rank by, and its direction.
    monitor = "valid/acc"
    monitor_mode = "max"
    output_meaning = "softmax probabilities, in the order of `classes`"

    def training_loss(self, logits, targets, label_smoothing=0.0, class_weights=None):
        """Mean cross-entropy against class indices or soft targets (mixed batches)."""
        return F.cross_entropy(
            logits, targets, weight=class_weights, label_smoothing=label_smoothing
        )

    def sample_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-image cross-entropy (the log-loss Kaggle and the course compare)."""
        return F.cross_entropy(logits, labels, reduction="none")

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.softmax(dim=1)

    def activation_layer(self) -> nn.Module:
        """The activation as a layer, for exported models."""
        return nn.Softmax(dim=1)

    def accuracy(self, num_classes: int) -> MulticlassAccuracy:
        """The share of images right (micro average: torchmetrics' default is macro)."""
        from torchmetrics.classification import MulticlassAccuracy

        return MulticlassAccuracy(num_classes, average="micro")

    def labelled(self, labels):
        """Per row: does it carry a label (test images carry -1)?"""
        return labels >= 0

    def decode(self, probs: np.ndarray, thresholds=None) -> np.ndarray:
        """The predicted class index of each row."""
        return np.asarray(probs).argmax(axis=1)

    def correct(self, probs: np.ndarray, labels: np.ndarray, thresholds=None) -> np.ndarray:
        """Per row: is the prediction right? (The views' notion of wrong is its negation.)"""
        return self.decode(probs) == np.asarray(labels)

    def encode(self, label, num_classes: int):
        """A data item's label as the batch carries it: the class index itself."""
        return label

    def encode_all(self, labels: list, num_classes: int) -> np.ndarray:
        """Many items' labels as one array (the precompute cache stores it)."""
        return np.array(labels, dtype=np.int64)

    def uninformed(self, num_classes: int) -> float:
        """The answer for an image that could not be read: 1/C each."""
        return rules.uninformed(self.name, num_classes)

    def clip(self, probs: torch.Tensor, eps: float) -> torch.Tensor:
        """Two classes: clip to [eps, 1 - eps]. More classes: raise every p to at least eps,
        then renormalise so rows still sum to one."""
        return rules.clip_one_of(probs, eps)

    def eps_fits(self, eps: float, num_classes: int) -> bool:
        """Can rows of `num_classes` probabilities be clipped at `eps`?"""
        return eps * max(num_classes, 2) < 1.0

    def log_loss(self, probs: torch.Tensor, labels: torch.Tensor) -> float:
        """Mean negative log-probability of the true class (Kaggle's log-loss)."""
        picked = probs.gather(1, labels.view(-1, 1)).squeeze(1)
        return float(-picked.clamp_min(1e-15).log().mean())
