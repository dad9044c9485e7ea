"""MultiLabel: any number of tags per image, as Planet's satellite tiles (sigmoid per tag,
binary cross-entropy on logits, a threshold chosen on validation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from imgclf.task import rules
from imgclf.task.fbeta import samples_fbeta

if TYPE_CHECKING:  # imported when a metric is made: predicting needs none
    from torchmetrics.classification import MultilabelAccuracy

# A tag counts as predicted at p >= 0.5 until a threshold is chosen on validation.
DEFAULT_THRESHOLD = 0.5


class MultiLabel:
    """Labels are N x C multi-hot rows (all -1: unlabelled); each probability is its own
    yes/no. `beta`: the F-beta score the threshold is chosen for (2, as Planet)."""

    name = "multi"
    monitor = "valid/fbeta"
    monitor_mode = "max"
    output_meaning = (
        "sigmoid probabilities, one per tag on its own, in the order of `classes`; a tag is "
        "predicted when its probability is at least its threshold (`thresholds`)"
    )

    def __init__(self, beta: float = 2.0) -> None:
        self.beta = beta

    def training_loss(self, logits, targets, label_smoothing=0.0, class_weights=None):
        """Mean binary cross-entropy on logits over every image and tag."""
        return F.binary_cross_entropy_with_logits(logits, targets.float())

    def sample_losses(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per-image binary cross-entropy, averaged over the tags."""
        losses = F.binary_cross_entropy_with_logits(logits, labels.float(), reduction="none")
        return losses.mean(dim=1)

    def activation(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.sigmoid()

    def activation_layer(self) -> nn.Module:
        """The activation as a layer, for exported models."""
        return nn.Sigmoid()

    def accuracy(self, num_classes: int) -> MultilabelAccuracy:
        """fastai's accuracy_multi: the share of (image, tag) yes/no decisions right."""
        from torchmetrics.classification import MultilabelAccuracy

        return MultilabelAccuracy(num_classes, threshold=DEFAULT_THRESHOLD, average="micro")

    def labelled(self, labels):
        return (labels >= 0).all(axis=1)

    def decode(self, probs: np.ndarray, thresholds=None) -> np.ndarray:
        """N x C booleans: the tags at or above their threshold."""
        limit = DEFAULT_THRESHOLD if thresholds is None else np.asarray(thresholds)
        return np.asarray(probs) >= limit

    def correct(self, probs: np.ndarray, labels: np.ndarray, thresholds=None) -> np.ndarray:
        """Per row: is the predicted tag set exactly the true one?"""
        return (self.decode(probs, thresholds) == np.asarray(labels, bool)).all(axis=1)

    def fbeta(self, probs: np.ndarray, labels: np.ndarray, thresholds=None) -> np.ndarray:
        """Per-image F-beta of the decoded tag sets."""
        return samples_fbeta(self.decode(probs, thresholds), labels, self.beta)

    def encode(self, label, num_classes: int) -> torch.Tensor:
        """A data item's tag indices (or -1: unlabelled) as a float multi-hot row."""
        if isinstance(label, int):  # -1: unlabelled; a class index: that one tag
            if label < 0:
                return torch.full((num_classes,), -1.0)
            label = (label,)
        row = torch.zeros(num_classes)
        row[list(label)] = 1.0
        return row

    def encode_all(self, labels: list, num_classes: int) -> np.ndarray:
        """Many items' labels as one N x C float32 array (the precompute cache stores it)."""
        rows = [self.encode(label, num_classes) for label in labels]
        return torch.stack(rows).numpy() if rows else np.zeros((0, num_classes), np.float32)

    def uninformed(self, num_classes: int) -> float:
        """The answer for an image that could not be read: 0.5, yes or no alike."""
        return rules.uninformed(self.name, num_classes)

    def clip(self, probs: torch.Tensor, eps: float) -> torch.Tensor:
        """Each tag's probability to [eps, 1 - eps] (they are independent yes/no answers)."""
        return rules.clip_each(probs, eps)

    def eps_fits(self, eps: float, num_classes: int) -> bool:
        return eps < 0.5

    def log_loss(self, probs: torch.Tensor, labels: torch.Tensor) -> float:
        """Mean binary cross-entropy over every image and tag."""
        p = probs.clamp(1e-15, 1 - 1e-15)
        y = labels.to(p.dtype)
        return float(-(y * p.log() + (1 - y) * (1 - p).log()).mean())
