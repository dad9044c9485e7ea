"""Writing error analysis to disk and loggers: view grids (PNG), view tables (CSV and W&B
tables), the confusion matrix (PNG and CSV), and every prediction of evaluate (CSV)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from imgclf.evaluation.pictures import confusion_figure, thumbnail, view_grid_figure
from imgclf.evaluation.views import SINGLE, VIEWS, ErrorAnalysis
from imgclf.reporting import log_picture, save_figure
from imgclf.reporting.loggers import handed_step

TABLE_COLUMNS = ["image", "true", "predicted", "probability", "loss", "path"]


def write_rows_csv(rows: list[dict], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(
            f, fieldnames=["index", "path", "true", "predicted", "probability", "loss"]
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_confusion_csv(matrix: np.ndarray, classes: list[str], path: Path) -> Path:
    """Rows: actual class; columns: predicted class."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["actual \\ predicted", *classes])
        for name, counts in zip(classes, matrix, strict=True):
            writer.writerow([name, *(int(c) for c in counts)])
    return path


def write_error_analysis(
    analysis: ErrorAnalysis,
    out_dir: Path,
    loggers: list = (),
    step: int | None = None,
    prefix: str = "valid",
) -> dict:
    """`out_dir/views/<view>.png|csv` and `out_dir/confusion.png|csv`; the grids (and W&B
    tables) go to the loggers at step number `step` (optimizer steps done). Returns {"views": {view: rows}, "confusion": matrix}."""
    out_dir = Path(out_dir)
    shown: dict[str, list[dict]] = {}
    for name in analysis.views:
        rows = analysis.rows(name)
        grid = save_figure(view_grid_figure(rows, VIEWS[name]), out_dir / "views" / f"{name}.png")
        write_rows_csv(rows, out_dir / "views" / f"{name}.csv")
        log_view(loggers, f"{prefix}/views/{name}", rows, grid, step)
        shown[name] = rows
    picture = save_figure(
        confusion_figure(analysis.confusion, analysis.classes), out_dir / "confusion.png"
    )
    write_confusion_csv(analysis.confusion, analysis.classes, out_dir / "confusion.csv")
    log_picture(loggers, f"{prefix}/confusion_matrix", picture, step)
    return {"views": shown, "confusion": analysis.confusion}


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
            logger.log_table(
                key=f"{key}_table", columns=TABLE_COLUMNS, data=data, step=handed_step(step)
            )


def write_predictions(path: Path, items, probs: np.ndarray, classes: list[str]) -> Path:
    """Every labelled image once: file, true and predicted class, one column per class."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "true", "predicted", *classes])
        decoded = SINGLE.decode(probs)
        for (file, label), row, predicted in zip(items, probs, decoded, strict=True):
            predicted = classes[int(predicted)]
            writer.writerow([file, classes[label], predicted, *(f"{p:.6f}" for p in row)])
    return path
