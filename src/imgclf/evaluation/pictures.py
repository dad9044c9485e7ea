"""The pictures of error analysis: view grids (predicted / actual, probability / loss)
and the confusion matrix, as matplotlib Figures. Images are loaded only for rows shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.reporting.figures import new_figure

THUMBNAIL = 180  # a view grid's cell at save_figure's dpi (2.3 in at 80 dpi, less a margin)


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
    `legend` says the two lines are), green where the prediction is right, red where not."""
    images = [thumbnail(row["path"]) for row in rows]
    titles = [
        f"{row['predicted']} / {row['true']}\n{row['probability']:.2f} / {row['loss']:.2f}"
        for row in rows
    ]
    colors = ["green" if row["predicted"] == row["true"] else "red" for row in rows]
    # The suptitle fits over a single image too.
    fig = titled_grid(images, titles, colors, columns, top_room=0.45, min_width=4.6)
    if not rows:
        fig.text(0.5, 0.5, "no images", ha="center", va="center")
    height = fig.get_figheight()
    fig.suptitle(f"{title} ({len(rows)})\n{legend}", fontsize=10, y=1 - 0.05 / height, va="top")
    return fig


# Canvas pixels per inch: save_figure's dpi, so a grid's canvas is saved about 1:1.
GRID_PPI = 80


def titled_grid(
    images: list,
    titles: list[str],
    colors: list[str] | None = None,
    columns: int = 6,
    cell: float = 2.3,
    title_room: float = 0.45,
    top_room: float = 0.0,
    min_width: float = 0.0,
    fontsize: int = 8,
):
    """Images (PIL or uint8 arrays) in a grid of `cell`-inch squares, each under its title,
    as one Figure. The images are pasted into one canvas shown on one Axes: an Axes per
    image (`subplots`) built ticks and spines even when hidden, and cost most of the time
    of drawing the grids at the end of every run."""
    n = len(images)
    columns = max(1, min(columns, n))
    lines = max(1, -(-n // columns))
    width = max(cell * columns, min_width)
    height = lines * (cell + title_room) + top_room + 0.1
    canvas = Image.new("RGB", (round(width * GRID_PPI), round(height * GRID_PPI)), "white")
    fig = new_figure((width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.axis("off")
    side = round(cell * GRID_PPI)
    left = (width - cell * columns) / 2 * GRID_PPI
    for k, (image, title) in enumerate(zip(images, titles, strict=True)):
        line, column = divmod(k, columns)
        x = left + column * side
        y = (top_room + title_room + line * (cell + title_room)) * GRID_PPI
        fitted = fit_square(image, side - 4)
        canvas.paste(
            fitted, (round(x + (side - fitted.width) / 2), round(y + (side - fitted.height) / 2))
        )
        color = colors[k] if colors else "black"
        ax.text(x + side / 2, y, title, ha="center", va="bottom", fontsize=fontsize, color=color)
    ax.imshow(
        canvas, extent=(0, canvas.width, canvas.height, 0), aspect="auto", interpolation="none"
    )
    ax.set_xlim(0, canvas.width)
    ax.set_ylim(canvas.height, 0)
    return fig


def fit_square(image, side: int) -> Image.Image:
    """The image scaled to fit a `side` x `side` square: smoothly, or with visible pixels
    (nearest) where it is enlarged 2x or more, as matplotlib shows a small image."""
    if not isinstance(image, Image.Image):
        image = Image.fromarray(np.asarray(image))
    scale = side / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    smooth = Image.Resampling.NEAREST if scale >= 2 else Image.Resampling.LANCZOS
    return image.resize(size, smooth)


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
    return titled_grid(images, list(labels), columns=columns, cell=2.2, title_room=0.3, fontsize=10)


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
    # Fixed margins: tight_layout measured every label and took most of the drawing time.
    fig.subplots_adjust(left=0.09, right=0.9, bottom=0.12, top=0.97)
    return fig
