"""The embedded demo dataset: scikit-learn's bundled handwritten digits as a dogscats folder.

1,797 real 8x8 scans (no download) become 64x64 greyscale PNGs, dark ink on white:

    data/digits/train/<0..9>/*.png      70 %
    data/digits/valid/<0..9>/*.png      20 %
    data/digits/test/*.png              10 %, unlabelled, as in a Kaggle competition
    data/digits/test_labels.csv         id,label for the test images (beside test/, not in it)

Run `python -m imgclf.data.demo [root]` or `imgclf demo [root]`; a finished build is marked by
`.complete` and not repeated.
"""

from __future__ import annotations

import csv
import random
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

DEMO_IMAGE_SIZE = 64
SPLITS = {"train": 0.7, "valid": 0.2, "test": 0.1}


def digit_image(pixels: np.ndarray, size: int = DEMO_IMAGE_SIZE) -> Image.Image:
    """An 8x8 array of 0..16 ink values -> a size x size greyscale image, dark ink on white."""
    ink = (pixels.reshape(8, 8).astype(np.float32) * (255.0 / 16.0)).round().astype(np.uint8)
    return Image.fromarray(255 - ink, mode="L").resize((size, size), Image.Resampling.BICUBIC)


def split_indices(labels: np.ndarray, seed: int) -> dict[str, list[int]]:
    """A stratified split of the indices into train/valid/test by SPLITS, seeded."""
    rng = random.Random(seed)
    splits: dict[str, list[int]] = {name: [] for name in SPLITS}
    for label in sorted(set(labels.tolist())):
        indices = [i for i, y in enumerate(labels.tolist()) if y == label]
        rng.shuffle(indices)
        n_valid = round(SPLITS["valid"] * len(indices))
        n_test = round(SPLITS["test"] * len(indices))
        splits["valid"] += indices[:n_valid]
        splits["test"] += indices[n_valid : n_valid + n_test]
        splits["train"] += indices[n_valid + n_test :]
    return {name: sorted(ids) for name, ids in splits.items()}


def build_once(root: str | Path, write: Callable[[Path], None], source: str) -> Path:
    """`root`, built once by `write(folder)`: into a `.partial` folder beside it, marked
    `.complete` (saying `source`), then renamed, so an interrupted build is never taken
    for a finished one. A finished `root` is returned as it is."""
    root = Path(root)
    if (root / ".complete").exists():
        return root
    staging = root.with_name(root.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    (staging / ".complete").write_text(source + "\n")
    shutil.rmtree(root, ignore_errors=True)
    staging.rename(root)
    return root


def build_digits_demo(root: str | Path = "data/digits", seed: int = 0) -> Path:
    """Write the demo folder once (see `build_once`)."""
    return build_once(
        root, lambda folder: write_digits(folder, seed), "built from sklearn.datasets.load_digits"
    )


def write_digits(folder: Path, seed: int) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    splits = split_indices(digits.target, seed)
    for split in ("train", "valid"):
        for index in splits[split]:
            label = int(digits.target[index])
            (folder / split / str(label)).mkdir(parents=True, exist_ok=True)
            digit_image(digits.data[index]).save(folder / split / str(label) / f"{index:04d}.png")
    (folder / "test").mkdir(parents=True)
    with open(folder / "test_labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "label"])
        for index in splits["test"]:
            digit_image(digits.data[index]).save(folder / "test" / f"{index:04d}.png")
            writer.writerow([f"{index:04d}", int(digits.target[index])])


if __name__ == "__main__":
    print(build_digits_demo(sys.argv[1] if len(sys.argv) > 1 else "data/digits"))
