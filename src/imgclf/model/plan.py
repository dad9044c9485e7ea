"""StagePlan: what the model trains with during one recipe stage, fully resolved.

A recipe stage in config may say `lr: auto` or leave its image size to the data; the stage
runner resolves those (LR finder, data defaults) and hands the model a plan of plain
numbers: which layer groups train, one learning rate per group, the schedule and the input
size. The model applies it with `ImageClassifier.set_stage(plan)`.
"""

from __future__ import annotations

from dataclasses import dataclass

from imgclf.model.schedules import Schedule

NORM_STATS = ("train", "frozen", "adapt")


@dataclass(frozen=True)
class StagePlan:
    name: str
    # One learning rate per layer group, first group first (the head last).
    lrs: tuple[float, ...]
    # Train layer groups freeze_to.. only: 0 trains everything, -1 only the head.
    freeze_to: int = 0
    # Keep norm layers of frozen groups trainable (fastai v2's default).
    train_bn: bool = True
    # "frozen": every norm layer of the body normalises with its running statistics, which
    # stay as they are (its weights still train); "train": batch statistics; "adapt": as
    # frozen, after the stage runner re-estimated them on the stage's training images.
    norm_stats: str = "train"
    # Batches hold pooled body features (a precompute stage), not images.
    on_features: bool = False
    schedule: Schedule = Schedule("one_cycle", epochs=1)
    # The input size the stage trains at (recorded in checkpoints for inference).
    image_size: int | None = None
