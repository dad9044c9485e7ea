"""Precomputed activations: a head-only epoch on cached features versus one epoch of the
same head training through the frozen body (images decoded and augmented by the workers).

Both are bare loops with the model's own optimizer; the body side freezes norm layers too
(`train_bn: false`), its cheapest form, so the backward pass stops at the head. The cache's
one-off build time is reported beside the ratio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from benchmarks.overhead import apply_stage
from benchmarks.timing import alternate
from imgclf.data import FolderDataModule
from imgclf.model import ImageClassifier
from imgclf.training.precompute import feature_loaders, precompute_features
from imgclf.training.recipe import Stage

THROUGH_BODY = Stage(name="head", freeze_to=-1, train_bn=False, lr=1e-3, schedule="constant")
ON_FEATURES = Stage(name="head", freeze_to=-1, lr=1e-3, schedule="constant", precompute=True)


def train_epoch(model: ImageClassifier, stage: Stage, loader) -> float:
    """Images per second of one training epoch over `loader` in `stage`."""
    apply_stage(model, stage)
    model.train()
    optimizer = model.build_optimizer(model.plan.lrs)
    started = time.perf_counter()
    images = 0
    for inputs, labels in loader:
        loss = F.cross_entropy(model.logits(inputs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        images += len(labels)
    return images / (time.perf_counter() - started)


def precompute_benchmark(
    root: Path, rounds: int, per_class: int, size: int = 224, batch_size: int = 64, workers: int = 2
) -> dict:
    datamodule = FolderDataModule(
        root, image_size=size, batch_size=batch_size, num_workers=workers, per_class=per_class
    )
    datamodule.setup("fit")
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=len(datamodule.classes))
    datamodule.set_data_config(model.data_config)
    with tempfile.TemporaryDirectory() as cache_dir:
        apply_stage(model, ON_FEATURES)
        started = time.perf_counter()
        features = precompute_features(model, datamodule, 1, cache_dir, datamodule.image_size)
        build_seconds = time.perf_counter() - started
        feature_train, _ = feature_loaders(features, batch_size, seed=0)
        # One untimed epoch: the first steps pay one-off allocation costs that would
        # otherwise dominate an epoch this short.
        train_epoch(model, ON_FEATURES, feature_train)
        result = alternate(
            lambda: train_epoch(model, ON_FEATURES, feature_train),
            lambda: train_epoch(model, THROUGH_BODY, datamodule.train_dataloader()),
            rounds,
        )
    result.update(
        a_name="head epoch on cached features",
        b_name="head epoch through the frozen body",
        unit="images/s",
        images=len(datamodule.train_items),
        image_size=size,
        batch_size=batch_size,
        workers=workers,
        cache_build_seconds=build_seconds,
        cache_images=len(datamodule.train_items) + len(datamodule.valid_items),
    )
    return result
