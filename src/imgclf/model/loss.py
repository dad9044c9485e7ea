"""The training loss: cross-entropy with optional label smoothing and class weights.

Only the training loss changes with these settings: validation and test log-loss stay the
plain mean cross-entropy, the number the course (and Kaggle) compares.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from imgclf.errors import UserError


def check_label_smoothing(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise UserError(f"model.label_smoothing={value!r}: must be a number in [0, 1)")
    return float(value)


def check_class_weights(weights: Sequence[float] | None, num_classes: int) -> list[float] | None:
    """Plain floats (checkpoints stay weights-only loadable), one positive weight per class."""
    if weights is None:
        return None
    weights = [float(w) for w in weights]
    if len(weights) != num_classes or not all(w > 0 for w in weights):
        raise UserError(f"class weights must be {num_classes} positive numbers, got {weights[:10]}")
    return weights


def training_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    label_smoothing: float = 0.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of `logits` against class indices or soft targets (mixed batches),
    with `label_smoothing` and per-class `class_weights` (torch's own arguments)."""
    return F.cross_entropy(logits, targets, weight=class_weights, label_smoothing=label_smoothing)
