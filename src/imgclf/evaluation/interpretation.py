"""`interpret(model, datamodule)`: what `imgclf evaluate` computes, as a Python object.

One prediction pass (plus TTA) over the validation images gives an N x C probability
matrix; everything else (metrics with and without TTA, clipped log-loss, per-class
precision/recall, the confusion matrix, the most confused pairs, the five
misclassification views and top losses) is computed from it once, so nothing is predicted
or counted twice. The object draws the grids and the confusion matrix as matplotlib
Figures (Jupyter shows them inline) and writes them to disk and loggers like the CLI does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import numpy as np

from imgclf.data import UNLABELLED, FolderDataModule, Item
from imgclf.errors import UserError
from imgclf.evaluation.collect import prediction_trainer
from imgclf.evaluation.metrics import class_metrics, confusion_matrix, variant_metrics
from imgclf.evaluation.tag_interpretation import interpret_tags
from imgclf.evaluation.tta import TTAResult, predict_with_tta
from imgclf.evaluation.views import ErrorAnalysis, misclassification_views


@dataclass
class Interpretation(ErrorAnalysis):
    """Predictions on labelled images and everything the course looks at afterwards.

    probs: the probabilities used for the views and per-class numbers (TTA when it ran,
    else the plain pass), N x C, in item order. plain/tta: both passes. metrics: the dict
    `imgclf evaluate` writes to metrics.json (accuracy and log-loss raw and clipped per
    variant, per-class precision/recall, confusion matrix, most confused). The views,
    confusion matrix, `rows`, `plot_view` and `plot_confusion` come from ErrorAnalysis.
    """

    plain: np.ndarray = None
    tta: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)
    k: int = 12
    seed: int = 0
    written: dict = field(default_factory=dict)

    @property
    def clip_eps(self) -> float | None:
        """The eps chosen (clip="auto") or given for the TTA (else plain) probabilities;
        pass it to `predict(clip=...)` to clip the test set the same way."""
        return (self.metrics.get("tta") or self.metrics["plain"]).get("clip_eps")

    def report(self) -> str:
        """The console report of `imgclf evaluate`."""
        return format_report(self.metrics)

    def write(self, out_dir: str | Path, loggers: list = (), prefix: str = "evaluate") -> dict:
        """`out_dir/views/<view>.png|csv`, `out_dir/confusion.png|csv`, and the grids (and
        W&B tables) to `loggers`. Returns {"views": {view: rows}, "confusion": matrix}."""
        from imgclf.evaluation.report import write_error_analysis

        self.written = write_error_analysis(self, Path(out_dir), loggers=loggers, prefix=prefix)
        return self.written


def labelled_items(datamodule: FolderDataModule, items: list[Item] | None) -> list[Item]:
    items = datamodule.valid_items if items is None else list(items)
    if not items:
        raise UserError("no labelled images to interpret (the validation set is empty)")
    if any(label == UNLABELLED for _, label in items):
        raise UserError("interpret needs labelled images; use predict for unlabelled ones")
    return items


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

    trainer: any Trainer with a `CollectPredictions` callback (devices, DDP); default a
    quiet one-device Trainer. tta_n passes with the training augmentation, blended
    `(1 - tta_beta) * augmented + tta_beta * plain`; 0 turns TTA off. clip: "auto"
    (eps from a grid by the lowest log-loss on these images), a number, or None; it only
    changes the reported clipped log-loss. k: images per view. seed: TTA and random views
    (default: the data module's seed). image_size: input size (default: the size the model
    last trained at). Under DDP every rank must call this. A multi-label model gets
    `interpret_tags`'s TagInterpretation (per-tag scores, top losses with tag sets).
    """
    if model.task.name == "multi":
        return interpret_tags(
            model, datamodule, trainer, tta_n, tta_beta, clip, k, seed, image_size
        )
    datamodule.setup("validate")
    datamodule.set_data_config(model.data_config)
    items = labelled_items(datamodule, items)
    labels = np.array([label for _, label in items], dtype=np.int64)
    seed = datamodule.seed if seed is None else seed
    size = image_size or model.image_size or datamodule.image_size
    trainer = trainer or prediction_trainer()
    result = predict_with_tta(trainer, model, datamodule, items, size, tta_n, tta_beta, seed)
    classes = model.class_names
    confusion = confusion_matrix(labels, model.task.decode(result.best), len(classes))
    return Interpretation(
        probs=result.best,
        labels=labels,
        paths=[path for path, _ in items],
        classes=classes,
        views=misclassification_views(result.best, labels, k=k, seed=seed, task=model.task),
        confusion=confusion,
        plain=result.plain,
        tta=result.tta,
        metrics={
            "image_size": size,
            **evaluation_metrics(result, labels, classes, confusion, clip),
        },
        k=k,
        seed=seed,
    )


def evaluation_metrics(result: TTAResult, labels, classes: list[str], confusion, clip) -> dict:
    """metrics.json's numbers: per variant (plain, TTA) accuracy and log-loss raw and
    clipped; per class precision and recall; the confusion matrix; the most confused."""
    metrics: dict = {
        "images": len(labels),
        "classes": classes,
        "tta_settings": {"n": result.n, "beta": result.beta},
        "plain": variant_metrics(result.plain, labels, clip),
    }
    if result.tta is not None:
        metrics["tta"] = variant_metrics(result.tta, labels, clip)
    return {**metrics, **class_metrics(confusion, classes)}


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
