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


def view_grid_figure(rows: list[dict], title: str, columns: int = 6):
    """A grid of the rows' images titled predicted / actual / probability / loss."""
    n = len(rows)
    columns = max(1, min(columns, n))
    lines = max(1, -(-n // columns))
    fig = new_figure((2.3 * columns, 2.6 * lines + 0.4))
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
    fig.suptitle(f"{title} ({n})\npredicted / actual, probability / loss", fontsize=10)
    fig.tight_layout()
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
