"""`interpret(model, datamodule)`: what `imgclf evaluate` computes, as a Python object.

One prediction pass (plus TTA) over the validation images gives an N x C probability
matrix; everything else (metrics with and without TTA, clipped log-loss, per-class
precision/recall, the confusion matrix, the most confused pairs, the five
misclassification views and top losses) is computed from it, so nothing is predicted
twice. The object draws the grids and the confusion matrix as matplotlib Figures
(Jupyter shows them inline) and writes them to disk and loggers like the CLI does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np

from imgclf.data import UNLABELLED, FolderDataModule, Item
from imgclf.errors import UserError
from imgclf.inference import class_metrics, class_names, input_size, variant_metrics
from imgclf.interpret import VIEWS, confusion_matrix, misclassification_views, most_confused
from imgclf.tta import predict_with_tta


@dataclass
class Interpretation:
    """Predictions on labelled images and everything the course looks at afterwards.

    probs: the probabilities used for the views and per-class numbers (TTA when it ran,
    else the plain pass), N x C, in item order. plain/tta: both passes. labels: true class
    per row. paths: the image file of each row. metrics: the dict `imgclf evaluate` writes
    to metrics.json (accuracy and log-loss raw and clipped per variant, per-class
    precision/recall, confusion matrix, most confused). views: row indices per view.
    """

    probs: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    classes: list[str]
    plain: np.ndarray
    tta: np.ndarray | None
    metrics: dict
    views: dict[str, np.ndarray]
    k: int = 12
    seed: int = 0
    written: dict = field(default_factory=dict)

    @property
    def clip_eps(self) -> float | None:
        """The eps chosen (clip="auto") or given for the TTA (else plain) probabilities;
        pass it to `predict(clip=...)` to clip the test set the same way."""
        return (self.metrics.get("tta") or self.metrics["plain"]).get("clip_eps")

    @property
    def confusion(self) -> np.ndarray:
        """counts[actual, predicted]."""
        return confusion_matrix(self.labels, self.probs.argmax(axis=1), len(self.classes))

    def most_confused(self, min_count: int = 1, limit: int | None = 20) -> list:
        """(actual, predicted, count) pairs off the diagonal, most frequent first."""
        return most_confused(self.confusion, self.classes, min_count, limit)

    def rows(self, view: str) -> list[dict]:
        """The images of one view: index, path, true, predicted, probability, loss."""
        from imgclf.report import view_rows

        if view not in VIEWS:
            raise UserError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
        return view_rows(self.views[view], self.probs, self.labels, self.paths, self.classes)

    def plot_view(self, view: str, columns: int = 6):
        """A matplotlib Figure of one view's images, titled predicted / actual,
        p(predicted) / loss (green right, red wrong). A notebook cell shows it inline."""
        from imgclf.report import view_grid_figure

        return view_grid_figure(self.rows(view), VIEWS[view], columns)

    def plot_confusion(self):
        """The confusion matrix as a matplotlib Figure (rows actual, columns predicted)."""
        from imgclf.report import confusion_figure

        return confusion_figure(self.confusion, self.classes)

    def report(self) -> str:
        """The console report of `imgclf evaluate`."""
        return format_report(self.metrics)

    def write(self, out_dir: str | Path, loggers: list = (), prefix: str = "evaluate") -> dict:
        """`out_dir/views/<view>.png|csv`, `out_dir/confusion.png|csv`, and the grids (and
        W&B tables) to `loggers`. Returns {"views": {view: rows}, "confusion": matrix}."""
        from imgclf.report import write_error_analysis

        self.written = write_error_analysis(
            self.probs,
            self.labels,
            self.paths,
            self.classes,
            Path(out_dir),
            k=self.k,
            seed=self.seed,
            loggers=loggers,
            prefix=prefix,
        )
        return self.written


def interpret(
    model,
    datamodule: FolderDataModule,
    trainer: L.Trainer | None = None,
    items: list[Item] | None = None,
    tta_n: int = 4,
    tta_beta: float = 0.25,
    clip="auto",
    k: int = 12,
    seed: int | None = None,
    image_size: int | None = None,
) -> Interpretation:
    """Predict labelled images (default: the validation set) with and without TTA and
    compute the metrics and misclassification views.

    trainer: any Trainer with a `CollectPredictions` callback (devices, DDP); default
    `make_trainer()` (one device, quiet). tta_n passes with the training augmentation,
    blended `(1 - tta_beta) * augmented + tta_beta * plain`; 0 turns TTA off. clip: "auto"
    (eps from a grid by the lowest log-loss on these images), a number, or None; it only
    changes the reported clipped log-loss. k: images per view. seed: TTA and random views
    (default: the data module's seed). image_size: input size (default: the size the model
    last trained at). Under DDP every rank must call this.
    """
    from imgclf.api import make_trainer

    datamodule.setup("validate")
    datamodule.set_data_config(model.data_config)
    items = datamodule.valid_items if items is None else list(items)
    if not items:
        raise UserError("no labelled images to interpret (the validation set is empty)")
    labels = np.array([label for _, label in items], dtype=np.int64)
    if (labels == UNLABELLED).any():
        raise UserError("interpret needs labelled images; use predict for unlabelled ones")
    seed = datamodule.seed if seed is None else seed
    trainer = trainer or make_trainer()
    with input_size(datamodule, image_size or model.image_size):
        result = predict_with_tta(
            trainer, model, datamodule, items, n=tta_n, beta=tta_beta, seed=seed
        )
        size = datamodule.image_size
    classes = class_names(model)
    metrics: dict = {
        "images": len(items),
        "classes": classes,
        "image_size": size,
        "tta_settings": {"n": result.n, "beta": result.beta},
        "plain": variant_metrics(result.plain, labels, clip),
    }
    if result.tta is not None:
        metrics["tta"] = variant_metrics(result.tta, labels, clip)
    metrics.update(class_metrics(result.best, labels, classes))
    return Interpretation(
        probs=result.best,
        labels=labels,
        paths=[path for path, _ in items],
        classes=classes,
        plain=result.plain,
        tta=result.tta,
        metrics=metrics,
        views=misclassification_views(result.best, labels, k=k, seed=seed),
        k=k,
        seed=seed,
    )


def format_report(metrics: dict) -> str:
    """The console report: metrics with and without TTA, per class, the most confused pairs."""
    lines = [f"{metrics['images']} validation images, {len(metrics['classes'])} classes"]
    for variant in ("plain", "tta"):
        m = metrics.get(variant)
        if not m:
            continue
        clipped = (
            f", clipped (eps {m['clip_eps']:g}) {m['logloss_clipped']:.4f}"
            if "clip_eps" in m
            else ""
        )
        label = "plain" if variant == "plain" else f"TTA x{metrics['tta_settings']['n']}"
        lines.append(
            f"  {label:8s} accuracy {m['accuracy']:.4f}  log-loss {m['logloss']:.4f}{clipped}"
        )
    lines.append("  class            precision  recall  images")
    for name, c in metrics["per_class"].items():
        lines.append(f"  {name[:16]:16s} {c['precision']:9.3f} {c['recall']:7.3f} {c['images']:7d}")
    if metrics["most_confused"]:
        pairs = ", ".join(
            f"{m['actual']}->{m['predicted']} ({m['count']})" for m in metrics["most_confused"][:5]
        )
        lines.append(f"  most confused (actual->predicted): {pairs}")
    return "\n".join(lines)
