"""The pictures of error analysis: view grids (predicted / actual, probability / loss)
and the confusion matrix, as matplotlib Figures. Images are loaded only for rows shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.reporting.figures import new_figure

THUMBNAIL = 160


def thumbnail(path: Path, size: int = THUMBNAIL) -> Image.Image:
    """The image shrunk to fit size x size; a grey tile if it cannot be read any more."""
    from imgclf.data.images import load_rgb

    try:
        image = Image.fromarray(load_rgb(Path(path)))
    except Exception:  # shown images must never break an epoch
        return Image.new("RGB", (size, size), (128, 128, 128))
    image.thumbnail((size, size))
    return image


def view_grid_figure(
    rows: list[dict],
    title: str,
    columns: int = 6,
    legend: str = "predicted / actual, probability / loss",
):
    """A grid of the rows' images titled predicted / actual / probability / loss (what
    `legend` says the two lines are)."""
    n = len(rows)
    columns = max(1, min(columns, n))
    lines = max(1, -(-n // columns))
    # Fixed margins in inches: room for the two-line suptitle and each image's two-line
    # title. A layout engine (constrained) did the same at twice the drawing time, and
    # training draws these grids at the end of every run.
    cell, title_room, top_room = 2.3, 0.45, 0.45
    width = max(cell * columns, 4.6)  # the suptitle fits over a single image too
    height = lines * (cell + title_room) + top_room + 0.1
    fig = new_figure((width, height))
    fig.subplots_adjust(
        left=0.01,
        right=0.99,
        bottom=0.1 / height,
        top=1 - (top_room + title_room) / height,
        wspace=0.05,
        hspace=title_room / cell,
    )
    axes = fig.subplots(lines, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, row in zip(axes.flat, rows, strict=False):
        ax.imshow(thumbnail(row["path"]))
        ax.set_title(
            f"{row['predicted']} / {row['true']}\n{row['probability']:.2f} / {row['loss']:.2f}",
            fontsize=8,
            color="green" if row["predicted"] == row["true"] else "red",
        )
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no images", ha="center", va="center")
    fig.suptitle(f"{title} ({n})\n{legend}", fontsize=10, y=1 - 0.05 / height, va="top")
    return fig


def confusion_figure(matrix: np.ndarray, classes: list[str]):
    """Counts per (actual, predicted); numbers written in the cells up to 30 classes."""
    n = len(classes)
    size = min(4 + 0.45 * n, 30)
    fig = new_figure((size, size))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title("Confusion matrix")
    if n <= 30:
        ax.set_xticks(range(n), classes, rotation=90)
        ax.set_yticks(range(n), classes)
        threshold = matrix.max() / 2 if matrix.size else 0
        for i in range(n):
            for j in range(n):
                ax.text(
                    j,
                    i,
                    int(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if matrix[i, j] > threshold else "black",
                )
    fig.tight_layout()
    return fig


def augmented_samples(datamodule, image_size: int | None = None, n: int = 16, seed: int = 0):
    """`n` training images as the model sees them (the training augmentation at
    `image_size`, uint8 HWC) and their class names; seeded, and drawn on a dataset of
    their own, so training's random streams are untouched."""
    from imgclf.data.dataset import ImageFileDataset

    items = datamodule.train_items
    rng = np.random.default_rng(seed)
    chosen = [items[i] for i in sorted(rng.choice(len(items), min(n, len(items)), replace=False))]
    transform = datamodule.train_transform(seed=seed, image_size=image_size)
    dataset = ImageFileDataset(chosen, transform, datamodule.max_pixels, item_seed=seed)
    samples = [dataset[i] for i in range(len(dataset))]
    images = [np.asarray(image).transpose(1, 2, 0) for image, _ in samples]
    return images, [datamodule.label_text(label) for _, label in chosen]


def batch_figure(images: list[np.ndarray], labels: list[str], columns: int = 4):
    """fastai's `show_batch`: a grid of images titled with their labels."""
    n = len(images)
    columns = max(1, min(columns, n))
    lines = max(1, -(-n // columns))
    fig = new_figure((2.2 * columns, 2.4 * lines))
    axes = fig.subplots(lines, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        ax.imshow(image)
        ax.set_title(label, fontsize=10)
    fig.tight_layout()
    return fig


def history_figure(history: list[dict], stage_starts: dict[str, int] | None = None):
    """Train and valid loss (left axis) and valid accuracy (right axis) per epoch (the
    records' `epoch`, counted from 1), with a dashed line where each stage after the first
    begins (`stage_starts`: the epochs before it)."""
    fig = new_figure((7, 4))
    ax = fig.subplots()
    epochs = [int(h["epoch"]) for h in history]  # counted from 1
    for key, label, style in (
        ("train/loss_epoch", "train loss", "-o"),
        ("valid/logloss", "valid loss", "-s"),
    ):
        points = [(e, h[key]) for e, h in zip(epochs, history, strict=True) if key in h]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    accuracy = ax.twinx()
    points = [(e, h["valid/acc"]) for e, h in zip(epochs, history, strict=True) if "valid/acc" in h]
    if points:
        accuracy.plot(*zip(*points, strict=True), "-^", color="tab:green", label="valid acc")
    accuracy.set_ylabel("valid accuracy")
    for name, start in (stage_starts or {}).items():
        ax.axvline(start + 0.5, color="grey", linestyle="--")
        ax.annotate(name, (start + 0.55, 1.0), xycoords=("data", "axes fraction"), va="top")
    lines = ax.get_legend_handles_labels()
    more = accuracy.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], loc="center right")
    fig.tight_layout()
    return fig
