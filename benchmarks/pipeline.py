"""Data pipeline: decode + train augmentation, images/s through a DataLoader with workers.

Ours: `FolderDataModule.train_dataloader()` (OpenCV JPEG decode, the side_on preset:
random resized crop, flip, rotation and zoom in one warp, then brightness/contrast; uint8
batches, which the model normalises on its device). Versus: torchvision `ImageFolder` +
transforms v2 (PIL decode, random resized crop, flip, to float, normalize), the pipeline
most PyTorch examples use. Ours does more augmentation work (rotation, zoom, lighting) and
leaves the normalisation (a multiply-add per pixel) to the model. Both read the same files
with the same batch size, workers, crop scale and output size; the rate counts a whole
epoch, worker start-up included, as a training epoch sees it.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision.transforms import v2

from benchmarks.timing import alternate
from imgclf.data import FolderDataModule


def epoch_rate(loader: DataLoader) -> float:
    started = time.perf_counter()
    images = 0
    for batch, _ in loader:
        images += len(batch)
    return images / (time.perf_counter() - started)


def torchvision_loader(
    root: Path, size: int, min_scale: float, batch_size: int, workers: int
) -> DataLoader:
    transform = v2.Compose(
        [
            v2.RandomResizedCrop(size, scale=(min_scale, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=[0.5] * 3, std=[0.5] * 3),
        ]
    )
    return DataLoader(
        datasets.ImageFolder(str(root / "train"), transform=transform),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        generator=torch.Generator().manual_seed(0),
    )


def ours_loader(
    root: Path, size: int, min_scale: float, batch_size: int, workers: int, **settings
) -> DataLoader:
    """The train loader of a FolderDataModule; `settings` go to it (loader knobs)."""
    # valid_pct is tiny: (nearly) every image goes through the train pipeline.
    datamodule = FolderDataModule(
        root,
        image_size=size,
        batch_size=batch_size,
        num_workers=workers,
        min_scale=min_scale,
        valid_pct=0.01,
        **settings,
    )
    datamodule.setup("fit")
    return datamodule.train_dataloader()


def pipeline_benchmark(
    root: Path,
    rounds: int,
    size: int = 224,
    min_scale: float = 0.35,
    batch_size: int = 32,
    workers: int = 2,
) -> dict:
    ours = ours_loader(root, size, min_scale, batch_size, workers)
    theirs = torchvision_loader(root, size, min_scale, batch_size, workers)
    result = alternate(lambda: epoch_rate(ours), lambda: epoch_rate(theirs), rounds)
    result.update(
        a_name="imgclf FolderDataModule (OpenCV decode, one-warp side_on, uint8)",
        b_name="torchvision ImageFolder + transforms.v2",
        unit="images/s",
        images=len(ours.dataset),
        image_size=size,
        min_scale=min_scale,
        batch_size=batch_size,
        workers=workers,
    )
    return result
