"""A small scanned data module and the default model for it, built in-process."""

from __future__ import annotations

from pathlib import Path

import torch

from imgclf.data import FolderDataModule
from imgclf.model import ImageClassifier


def small_datamodule_and_model(root: Path, image_size: int = 32):
    """A scanned FolderDataModule (batch 4, no workers) and the default ImageClassifier
    for its classes, with the model's data config applied."""
    datamodule = FolderDataModule(root, image_size=image_size, batch_size=4, num_workers=0)
    datamodule.setup("fit")
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=len(datamodule.classes), class_names=datamodule.classes)
    datamodule.set_data_config(model.data_config)
    return datamodule, model


def apply_stage(model: ImageClassifier, stage) -> None:
    """Put `model` in a numeric-LR recipe stage (freezing, LRs, schedule), as the runner does."""
    model.set_stage(stage.plan(stage.group_lrs(len(model.groups)), None))
