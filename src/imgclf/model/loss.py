"""The training loss's options: label smoothing and class weights, checked.

The loss itself is the task's (imgclf.task). Only the training loss changes with these
settings: validation and test log-loss stay the plain mean cross-entropy, the number the
course (and Kaggle) compares.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def check_task_options(
    task: str, label_smoothing: float, mixup_alpha: float, cutmix_alpha: float, class_weights
) -> None:
    """Multi-label training takes none of the single-label loss options: a one-line error."""
    if task != "multi":
        return
    used = {
        "model.label_smoothing": label_smoothing,
        "model.mixup_alpha": mixup_alpha,
        "model.cutmix_alpha": cutmix_alpha,
        "class weights (data.balance=loss_weights)": class_weights,
    }
    on = [name for name, value in used.items() if value]
    if on:
        raise UserError(f"{', '.join(on)}: not available for multi-label training; turn it off")
