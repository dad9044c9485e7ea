"""Writing error analysis to disk and loggers: view grids (PNG), view tables (CSV and W&B
tables), the confusion matrix (PNG and CSV). Images are loaded only for the rows shown."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf.interpret import VIEWS, confusion_matrix, losses, misclassification_views

THUMBNAIL = 160
TABLE_COLUMNS = ["image", "true", "predicted", "probability", "loss", "path"]


def thumbnail(path: Path, size: int = THUMBNAIL) -> Image.Image:
    """The image shrunk to fit size x size; a grey tile if it cannot be read any more."""
    from imgclf.images import load_rgb

    try:
        image = Image.fromarray(load_rgb(Path(path)))
    except Exception:  # shown images must never break an epoch
        return Image.new("RGB", (size, size), (128, 128, 128))
    image.thumbnail((size, size))
    return image


def view_rows(
    indices: np.ndarray, probs: np.ndarray, labels: np.ndarray, paths: list, classes: list[str]
) -> list[dict]:
    """One record per shown image: file, true and predicted class, p(predicted), loss."""
    row_loss = losses(probs[indices], labels[indices]) if len(indices) else []
    rows = []
    for index, loss in zip(indices, row_loss, strict=True):
        predicted = int(probs[index].argmax())
        rows.append(
            {
                "index": int(index),
                "path": str(paths[index]),
                "true": classes[int(labels[index])],
                "predicted": classes[predicted],
                "probability": float(probs[index, predicted]),
                "loss": float(loss),
            }
        )
    return rows


def new_figure(figsize: tuple[float, float]):
    """A bare Figure on the Agg canvas: no pyplot global state, so it works headless, in
    threads and DDP ranks, and leaves a notebook's own plotting backend alone. Jupyter shows
    it when it is a cell's value."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


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


def plot_view_grid(rows: list[dict], title: str, path: Path, columns: int = 6) -> Path:
    """The view grid (`view_grid_figure`) saved as a PNG."""
    return save_figure(view_grid_figure(rows, title, columns), path)


def save_figure(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    return path


def write_rows_csv(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(
            f, fieldnames=["index", "path", "true", "predicted", "probability", "loss"]
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


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


def plot_confusion(matrix: np.ndarray, classes: list[str], path: Path) -> Path:
    """The confusion matrix (`confusion_figure`) saved as a PNG."""
    return save_figure(confusion_figure(matrix, classes), path)


def write_confusion_csv(matrix: np.ndarray, classes: list[str], path: Path) -> Path:
    """Rows: actual class; columns: predicted class."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["actual \\ predicted", *classes])
        for name, counts in zip(classes, matrix, strict=True):
            writer.writerow([name, *(int(c) for c in counts)])
    return path


def write_error_analysis(
    probs: np.ndarray,
    labels: np.ndarray,
    paths: list,
    classes: list[str],
    out_dir: Path,
    k: int = 12,
    seed: int = 0,
    loggers: list = (),
    step: int | None = None,
    prefix: str = "valid",
) -> dict:
    """The views, their grids and tables, and the confusion matrix, for labelled predictions.

    `paths[i]` is the file of row i. Returns {view: [row records]} plus the confusion
    matrix, and sends the grids and tables to the loggers.
    """
    out_dir = Path(out_dir)
    views = misclassification_views(probs, labels, k=k, seed=seed)
    shown: dict[str, list[dict]] = {}
    for name, indices in views.items():
        rows = view_rows(indices, probs, labels, paths, classes)
        grid = plot_view_grid(rows, VIEWS[name], out_dir / "views" / f"{name}.png")
        write_rows_csv(rows, out_dir / "views" / f"{name}.csv")
        log_view(loggers, f"{prefix}/views/{name}", rows, grid, step)
        shown[name] = rows
    matrix = confusion_matrix(labels, probs.argmax(axis=1), len(classes))
    confusion_png = plot_confusion(matrix, classes, out_dir / "confusion.png")
    write_confusion_csv(matrix, classes, out_dir / "confusion.csv")
    log_picture(loggers, f"{prefix}/confusion_matrix", confusion_png, step)
    return {"views": shown, "confusion": matrix}


def log_picture(loggers, key: str, path: Path, step: int | None = None) -> None:
    """A PNG to the loggers that take images (W&B, TensorBoard)."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[str(path)], step=step)
        elif isinstance(logger, TensorBoardLogger):
            image = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(key, image, global_step=step or 0, dataformats="HWC")


def log_view(loggers, key: str, rows: list[dict], grid: Path, step: int | None) -> None:
    """The grid as an image, and in W&B also a table: image, true, predicted, probability,
    loss, file path."""
    from lightning.pytorch.loggers import WandbLogger

    log_picture(loggers, key, grid, step)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            data = [
                [
                    wandb.Image(thumbnail(r["path"])),
                    r["true"],
                    r["predicted"],
                    r["probability"],
                    r["loss"],
                    r["path"],
                ]
                for r in rows
            ]
            logger.log_table(key=f"{key}_table", columns=TABLE_COLUMNS, data=data, step=step)
