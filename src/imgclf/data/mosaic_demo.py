"""The multi-label demo: mosaics of one to four of scikit-learn's bundled digits, tagged
with the digits they show, written as a Planet-style CSV (no download).

    data/mosaics/train/<id>.png        64x64, a 2x2 grid of 32x32 cells, 1-4 of them inked
    data/mosaics/labels.csv            image_name,tags   (tags space-separated: "3 7")
    data/mosaics/test/<id>.png         unlabelled, made from digits no training image uses
    data/mosaics/test_labels.csv       image_name,tags of the test images

`imgclf demo mosaics [root]` builds it once (marked by `.complete`).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.data.demo import build_once, digit_image

CELL = 32
# Training mosaics drawn from 80 % of the digits, test mosaics from the other 20 %.
TEST_SHARE = 0.2


def mosaic(cells: list[np.ndarray | None]) -> Image.Image:
    """Four cells (an 8x8 digit or None for blank) as one 2x2 greyscale image."""
    image = Image.new("L", (2 * CELL, 2 * CELL), 255)
    for position, pixels in enumerate(cells):
        if pixels is not None:
            image.paste(digit_image(pixels, CELL), ((position % 2) * CELL, (position // 2) * CELL))
    return image


def draw_mosaic(rng: random.Random, data: np.ndarray, targets: np.ndarray, pool: list[int]):
    """(image, sorted tag list): 1-4 digits from `pool` in random cells."""
    count = rng.randint(1, 4)
    chosen = rng.sample(pool, count)
    cells: list = [None] * 4
    for position, index in zip(rng.sample(range(4), count), chosen, strict=True):
        cells[position] = data[index]
    return mosaic(cells), sorted({str(int(targets[i])) for i in chosen})


def write_split(folder: Path, table: Path, mosaics: list) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(table, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_name", "tags"])
        for number, (image, tags) in enumerate(mosaics):
            name = f"m{number:05d}"
            image.save(folder / f"{name}.png")
            writer.writerow([name, " ".join(tags)])


def build_mosaic_demo(
    root: str | Path = "data/mosaics", n_train: int = 1200, n_test: int = 200, seed: int = 0
) -> Path:
    """Write the mosaic folder once (see `build_once`)."""
    return build_once(
        root,
        lambda folder: write_mosaics(folder, n_train, n_test, seed),
        "mosaics of sklearn.datasets.load_digits",
    )


def write_mosaics(folder: Path, n_train: int, n_test: int, seed: int) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = random.Random(seed)
    indices = list(range(len(digits.target)))
    rng.shuffle(indices)
    cut = round(TEST_SHARE * len(indices))
    test_pool, train_pool = indices[:cut], indices[cut:]
    train = [draw_mosaic(rng, digits.data, digits.target, train_pool) for _ in range(n_train)]
    test = [draw_mosaic(rng, digits.data, digits.target, test_pool) for _ in range(n_test)]
    write_split(folder / "train", folder / "labels.csv", train)
    write_split(folder / "test", folder / "test_labels.csv", test)
