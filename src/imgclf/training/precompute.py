"""Precomputed activations (fastai 0.7's `precompute=True`), with augmentation kept.

While the body is frozen its output for an image never changes, so a head-only stage can
compute the pooled body features once and train the head on them: an epoch then costs a
few matrix multiplies instead of a pass through the CNN. fastai silently dropped
augmentation here; we cache `precompute_aug` augmented views per training image and draw
one at random each time an image is used.

The cache is a folder of memory-mapped .npy files, keyed by everything that changes the
features: backbone, weights, image size, transform settings, augmentation views and the
file list (paths, sizes, modification times). Any change gives a new key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from imgclf.data.balance import balanced_sampler
from imgclf.data.dataset import Item
from imgclf.data.replay_loader import ReplayDataLoader
from imgclf.model.head import HEAD_FEATURES_INDEX
from imgclf.processes import pid_alive

# 2: one-warp augmentation (RandomCropWarp), OpenCV JPEG decoding.
PIPELINE_VERSION = 2


class FeatureDataset(Dataset):
    """Rows of a (views, images, dim) feature array; a random view per access when views > 1.

    The views are drawn from the dataset's own seeded generator, not the global one, so the
    draws neither disturb nor depend on the model's dropout, and a resumed run can put the
    generator back where it was (`rng_state`, used by ReplayDataLoader).
    """

    def __init__(
        self,
        features: np.ndarray,
        labels: np.ndarray,
        random_view: bool = True,
        seed: int = 0,
        items: list[Item] | None = None,
    ) -> None:
        self.features = features
        self.labels = labels
        # The image files the rows came from, in order (for views that show the images).
        self.items = items
        self.random_view = random_view and features.shape[0] > 1
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return self.features.shape[1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        view = 0
        if self.random_view:
            view = int(torch.randint(self.features.shape[0], (), generator=self.generator))
        label = self.labels[index]  # a class index, or a multi-hot row (multi-label)
        label = int(label) if label.ndim == 0 else torch.from_numpy(np.array(label))
        return torch.from_numpy(np.array(self.features[view, index])), label

    def rng_state(self) -> torch.Tensor:
        return self.generator.get_state()

    def set_rng_state(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)


@dataclass
class PrecomputedFeatures:
    train: FeatureDataset
    valid: FeatureDataset
    directory: Path
    reused: bool


def file_fingerprint(items: list[Item]) -> str:
    """A hash of the file list: path, size, modification time and label of each file."""
    digest = hashlib.sha256()
    for path, label in items:
        stat = path.stat()
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{label}\n".encode())
    return digest.hexdigest()


def weights_fingerprint(weights: str) -> str:
    path = Path(str(weights)).expanduser()
    if path.is_file():
        stat = path.stat()
        return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    return str(weights)


def cache_key(model, datamodule, views: int, image_size: int, norms: str | None = None) -> str:
    parts = {
        "backbone": model.hparams.backbone,
        "weights": weights_fingerprint(model.hparams.weights),
        "image_size": image_size,
        "data_config": datamodule.data_config,
        "augment": [datamodule.augment, datamodule.min_scale, datamodule.do_flip, datamodule.seed],
        "views": views,
        # Bump when the pipelines change what they produce for the same settings.
        "pipeline": PIPELINE_VERSION,
        "train": file_fingerprint(datamodule.train_items),
        "valid": file_fingerprint(datamodule.valid_items),
    }
    # Norm statistics adapted to the data change the features (the key leaves the pretrained
    # ones out, so caches made before adaptation existed keep their keys).
    if norms:
        parts["norm_stats"] = norms
    # TrivialAugment/RandAugment change the augmented views (the key leaves it out when off,
    # so caches made before the option existed keep their keys).
    auto_augment = getattr(datamodule, "auto_augment", "none")
    if views and auto_augment != "none":
        parts["auto_augment"] = auto_augment
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@torch.no_grad()
def write_features(model, loader: DataLoader, out: np.ndarray, view: int, device) -> None:
    row = 0
    for images, _ in loader:
        features = model.pooled_features(images.to(device)).float().cpu().numpy()
        out[view, row : row + len(features)] = features
        row += len(features)


def precompute_features(
    model,
    datamodule,
    views: int,
    cache_dir: str | Path,
    image_size: int,
    device=None,
    norm_key: str | None = None,
) -> PrecomputedFeatures:
    """Cached pooled body features for the train and valid sets at `image_size`, computed
    if missing.

    `views` = 0 caches the plain (eval-transformed) training images; K > 0 caches K
    augmented views of each, drawn with the data module's train augmentation (seeded).
    `norm_key`: a fingerprint of norm statistics adapted to the data (`norm_fingerprint`).
    """
    device = device or next(model.parameters()).device
    directory = Path(cache_dir) / cache_key(model, datamodule, views, image_size, norm_key)
    reused = (directory / "complete").exists()
    if not reused:
        build_cache(model, datamodule, views, image_size, directory, device)

    def load(name: str) -> np.ndarray:
        return np.load(directory / name, mmap_mode="r")

    return PrecomputedFeatures(
        train=FeatureDataset(
            load("train.npy"), load("train_labels.npy"), items=datamodule.train_items
        ),
        valid=FeatureDataset(
            load("valid.npy"),
            load("valid_labels.npy"),
            random_view=False,
            items=datamodule.valid_items,
        ),
        directory=directory,
        reused=reused,
    )


def remove_dead_partials(cache_dir: Path) -> list[Path]:
    """Remove `<key>.partial-<pid>` folders whose process no longer runs (a kill during a
    build); another process's build in progress is left alone."""
    removed = []
    for staging in cache_dir.glob("*.partial-*"):
        pid = staging.name.rsplit(".partial-", 1)[1]
        if not pid.isdigit() or pid_alive(int(pid)):
            continue
        shutil.rmtree(staging, ignore_errors=True)
        removed.append(staging)
    return removed


def build_cache(model, datamodule, views: int, image_size: int, directory: Path, device) -> None:
    """Write the cache into a temporary folder and rename it, so a half-written cache is never used."""
    # Per-process staging name: DDP ranks may build the same cache at the same time.
    staging = directory.with_name(f"{directory.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    remove_dead_partials(directory.parent)
    staging.mkdir(parents=True)
    was_training = model.training
    model.eval()
    try:
        # No views: the plain eval pipeline; K views: K seeded draws of the augmentation.
        seeds = [datamodule.seed + view for view in range(max(views, 1))]
        train_loaders = [
            datamodule.loader(
                datamodule.train_items,
                datamodule.train_transform(seed, image_size)
                if views
                else datamodule.eval_transform(image_size),
                seed=seed,
            )
            for seed in seeds
        ]
        write_split(model, staging, "train", datamodule.train_items, train_loaders, device)
        valid_loader = datamodule.loader(
            datamodule.valid_items, datamodule.eval_transform(image_size)
        )
        write_split(model, staging, "valid", datamodule.valid_items, [valid_loader], device)
        (staging / "complete").write_text("ok\n")
        if (directory / "complete").exists():  # another process finished first: use its cache
            shutil.rmtree(staging)
        else:
            shutil.rmtree(directory, ignore_errors=True)
            staging.rename(directory)
    finally:
        model.train(was_training)


def write_split(model, staging: Path, name: str, items: list[Item], loaders: list, device) -> None:
    """`<name>.npy`, views x images x features (one view per loader), and `<name>_labels.npy`."""
    # The BatchNorm right after pooling: 2 x body features.
    dim = model.head[HEAD_FEATURES_INDEX].num_features
    out = np.lib.format.open_memmap(
        staging / f"{name}.npy", mode="w+", dtype=np.float32, shape=(len(loaders), len(items), dim)
    )
    for view, loader in enumerate(loaders):
        write_features(model, loader, out, view, device)
    out.flush()
    labels = model.task.encode_all([y for _, y in items], model.hparams.num_classes)
    np.save(staging / f"{name}_labels.npy", labels)


def feature_loaders(
    features: PrecomputedFeatures,
    batch_size: int,
    seed: int,
    balance_by: list[int] | None = None,
    num_classes: int = 0,
) -> tuple[DataLoader, DataLoader]:
    """Loaders over cached features; in-process (reading a memory map needs no workers).
    `balance_by`: the training labels, drawn class-balanced (data.balance=sampler)."""
    features.train.generator.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    sampler = None
    if balance_by is not None:
        sampler = balanced_sampler(balance_by, num_classes, generator)
    train = ReplayDataLoader(
        features.train,
        batch_size=batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        drop_last=len(features.train) > batch_size,  # no batch of one through BatchNorm
        generator=generator,
    )
    valid = DataLoader(features.valid, batch_size=batch_size, shuffle=False)
    return train, valid
