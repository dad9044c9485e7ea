"""Class imbalance: a warning when classes are very unbalanced, and the two remedies.

`data.balance`:
- `none`: train as the folder is;
- `sampler`: torch's `WeightedRandomSampler` draws each training image with probability
  proportional to 1 / (its class's count), with replacement, seeded by the loader's
  generator: every class comes up equally often on average, an epoch has as many draws as
  images;
- `loss_weights`: CrossEntropy `weight=` of n / (k * count) per class (scikit-learn's
  "balanced"), so each class adds the same total weight to the training loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from imgclf.errors import UserError

BALANCE_MODES = ("none", "sampler", "loss_weights")
# Largest class / smallest class above which setup warns (whatever data.balance says).
IMBALANCE_RATIO = 10.0


def check_balance(mode: str) -> str:
    if mode not in BALANCE_MODES:
        raise UserError(f"unknown data.balance {mode!r}: choose one of {', '.join(BALANCE_MODES)}")
    return mode


def imbalance_message(counts: Mapping[str, int], ratio: float = IMBALANCE_RATIO) -> str | None:
    """A warning naming the largest and smallest class when largest/smallest > `ratio`;
    None otherwise (and for empty classes, which have their own warning)."""
    present = {name: n for name, n in counts.items() if n > 0}
    if len(present) < 2:
        return None
    largest = max(present, key=present.get)
    smallest = min(present, key=present.get)
    if present[largest] <= ratio * present[smallest]:
        return None
    return (
        f"classes are very unbalanced: {largest!r} has {present[largest]} training images, "
        f"{smallest!r} {present[smallest]} ({present[largest] / present[smallest]:.0f}x); "
        "data.balance=sampler or data.balance=loss_weights evens them out"
    )


def class_weights(labels: Sequence[int], num_classes: int) -> list[float]:
    """n / (k * count) per class; a class without images gets weight 1."""
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes)
    total = float(counts.sum())
    return [total / (num_classes * float(c)) if c > 0 else 1.0 for c in counts]


def balanced_sampler(
    labels: Sequence[int], num_classes: int, generator: torch.Generator
) -> torch.utils.data.WeightedRandomSampler:
    """Draws len(labels) images per epoch, each class equally likely, from `generator`."""
    per_class = torch.tensor(class_weights(labels, num_classes), dtype=torch.double)
    weights = per_class[torch.as_tensor(list(labels), dtype=torch.long)]
    return torch.utils.data.WeightedRandomSampler(
        weights, num_samples=len(labels), replacement=True, generator=generator
    )
