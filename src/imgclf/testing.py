"""Small real image folders for tests and benchmarks (PNG/JPEG files written to disk)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# One colour per class so a model can learn the folders apart quickly.
CLASS_COLOURS = ((220, 60, 40), (40, 90, 220), (40, 180, 70), (230, 200, 40), (150, 60, 200))


def make_image(colour: Sequence[int], size: int, rng: np.random.Generator) -> Image.Image:
    """A noisy image of one colour with a random darker square: real pixels, easy labels."""
    pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255)
    top, left = rng.integers(0, size // 2, 2)
    pixels[top : top + size // 3, left : left + size // 3] *= 0.4
    return Image.fromarray(pixels.astype(np.uint8))


def make_image_folder(
    root: str | Path,
    classes: Sequence[str] = ("cats", "dogs"),
    n_train: int = 8,
    n_valid: int = 4,
    n_test: int = 0,
    size: int = 48,
    ext: str = "jpg",
    seed: int = 0,
) -> Path:
    """root/train/<class>/*, root/valid/<class>/* (when n_valid) and root/test/* (when n_test)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("valid", n_valid)):
        for index, name in enumerate(classes):
            folder = root / split / name
            for i in range(count):
                folder.mkdir(parents=True, exist_ok=True)
                colour = CLASS_COLOURS[index % len(CLASS_COLOURS)]
                make_image(colour, size, rng).save(folder / f"{name}.{i}.{ext}")
    for i in range(n_test):
        (root / "test").mkdir(parents=True, exist_ok=True)
        colour = CLASS_COLOURS[i % len(classes) % len(CLASS_COLOURS)]
        make_image(colour, size, rng).save(root / "test" / f"{i}.{ext}")
    return root


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`imgclf <args>` in a subprocess, offline, as a user runs it."""
    env = {**os.environ, "WANDB_MODE": "offline", "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "imgclf.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def small_run_overrides(root: Path, workdir: Path, batch_size: int = 4) -> list[str]:
    """Hydra overrides for a quick run on a generated folder: 32 px, no workers, and logs
    and feature caches kept under `workdir`."""
    return [
        "data=folder",
        f"data.root={root}",
        "data.image_size=32",
        f"data.batch_size={batch_size}",
        "data.num_workers=0",
        f"paths.log_dir={workdir / 'logs'}",
        f"paths.cache_dir={workdir / 'cache'}",
    ]


def small_datamodule_and_model(root: Path, image_size: int = 32):
    """A scanned FolderDataModule (batch 4, no workers) and the default ImageClassifier
    for its classes, with the model's data config applied."""
    from imgclf.data import FolderDataModule
    from imgclf.model import ImageClassifier

    datamodule = FolderDataModule(root, image_size=image_size, batch_size=4, num_workers=0)
    datamodule.setup("fit")
    torch.manual_seed(0)
    model = ImageClassifier(num_classes=len(datamodule.classes), class_names=datamodule.classes)
    datamodule.set_data_config(model.data_config)
    return datamodule, model
