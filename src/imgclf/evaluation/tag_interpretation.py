"""`interpret_tags(model, datamodule)`: what `imgclf evaluate` computes for a multi-label
model: metrics with and without TTA at the model's thresholds, per-tag precision, recall
and F-score, the tags most often missed and added, and the top-loss images with their
predicted and true tag sets; written as metrics, CSV tables, a grid and a W&B table."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.errors import UserError
from imgclf.evaluation.clip_setting import parse_eps
from imgclf.evaluation.clipping import clipped_report
from imgclf.evaluation.collect import prediction_trainer
from imgclf.evaluation.pictures import view_grid_figure
from imgclf.evaluation.report import log_view, write_rows_csv
from imgclf.evaluation.tags import (
    most_often,
    per_tag_scores,
    tag_set,
    tag_variant_metrics,
    top_loss_rows,
)
from imgclf.evaluation.tta import predict_with_tta
from imgclf.reporting import save_figure

TOP_LOSSES_TITLE = "Top losses (highest binary cross-entropy)"
TAG_COLUMNS = ["tag", "precision", "recall", "fbeta", "images", "missed", "added"]


@dataclass
class TagInterpretation:
    """probs (TTA when it ran), labels (N x C 0/1), paths, classes, thresholds (one per
    class), metrics (what metrics.json holds) and the top-loss rows."""

    probs: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    classes: list[str]
    thresholds: list[float]
    metrics: dict
    top_losses: list[dict]

    def write(self, out_dir: str | Path, loggers: list = (), prefix: str = "evaluate") -> dict:
        """views/top_losses.png|csv and per_tag.csv; the grid and tables to the loggers."""
        out_dir = Path(out_dir)
        legend = "predicted / actual tags, the image's F2 / loss"
        figure = view_grid_figure(self.top_losses, TOP_LOSSES_TITLE, legend=legend)
        grid = save_figure(figure, out_dir / "views" / "top_losses.png")
        write_rows_csv(self.top_losses, out_dir / "views" / "top_losses.csv")
        log_view(loggers, f"{prefix}/views/top_losses", self.top_losses, grid, None)
        per_tag = self.metrics["per_tag"]
        rows = [[name, *(scores[c] for c in TAG_COLUMNS[1:])] for name, scores in per_tag.items()]
        with open(out_dir / "per_tag.csv", "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([TAG_COLUMNS, *rows])
        for logger in loggers:  # W&B's per-tag table
            if hasattr(logger, "log_table"):
                logger.log_table(key=f"{prefix}/per_tag", columns=TAG_COLUMNS, data=rows)
        return {"views": {"top_losses": self.top_losses}}

    def write_predictions(self, path: Path) -> Path:
        """Every labelled image: file, true and predicted tags, one probability per tag."""
        predicted = self.probs >= np.asarray(self.thresholds)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["path", "true", "predicted", *self.classes])
            for file, label, guess, row in zip(
                self.paths, self.labels, predicted, self.probs, strict=True
            ):
                true = tag_set(np.asarray(label, bool), self.classes)
                writer.writerow(
                    [file, true, tag_set(guess, self.classes), *(f"{p:.6f}" for p in row)]
                )
        return path


def interpret_tags(
    model,
    datamodule,
    trainer=None,
    tta_n=4,
    tta_beta=0.25,
    clip="auto",
    k=12,
    seed=None,
    image_size=None,
) -> TagInterpretation:
    """Predict the validation images (with TTA) and compute the multi-label analysis at the
    thresholds the model was validated with (0.5 for a model without)."""
    datamodule.setup("validate")
    datamodule.set_data_config(model.data_config)
    items = datamodule.valid_items
    if not items:
        raise UserError("no labelled images to interpret (the validation set is empty)")
    classes = model.class_names
    labels = model.task.encode_all([y for _, y in items], len(classes)).astype(np.int64)
    seed = datamodule.seed if seed is None else seed
    size = image_size or model.image_size or datamodule.image_size
    trainer = trainer or prediction_trainer()
    result = predict_with_tta(trainer, model, datamodule, items, size, tta_n, tta_beta, seed)
    thresholds = model.thresholds or [0.5] * len(classes)
    beta = model.task.beta
    metrics = {
        "images": len(items),
        "classes": classes,
        "task": "multi",
        "thresholds": dict(zip(classes, thresholds, strict=True)),
        "tta_settings": {"n": result.n, "beta": result.beta},
    }
    for variant, probs in (("plain", result.plain), ("tta", result.tta)):
        if probs is not None:
            metrics[variant] = variant_report(probs, labels, thresholds, beta, clip, model.task)
    per_tag = per_tag_scores(model.task.decode(result.best, thresholds), labels, classes, beta)
    metrics.update(
        per_tag=per_tag,
        most_missed=most_often(per_tag, "missed"),
        most_added=most_often(per_tag, "added"),
    )
    paths = [path for path, _ in items]
    rows = top_loss_rows(result.best, labels, paths, classes, thresholds, k)
    return TagInterpretation(result.best, labels, paths, classes, thresholds, metrics, rows)


def variant_report(probs, labels, thresholds, beta, clip, task) -> dict:
    report = tag_variant_metrics(probs, labels, thresholds, beta)
    eps = parse_eps(clip)
    if eps is not None:
        clipped = clipped_report(probs, labels, eps, task)
        report.update(logloss_clipped=clipped["logloss_clipped"], clip_eps=clipped["clip_eps"])
    return report


def format_tag_report(metrics: dict) -> str:
    """The console report: F2, exact match and log-loss per variant, per-tag scores, the
    tags most often missed and added."""
    lines = [f"{metrics['images']} validation images, {len(metrics['classes'])} tags"]
    for variant in ("plain", "tta"):
        m = metrics.get(variant)
        if m:
            label = "plain" if variant == "plain" else f"TTA x{metrics['tta_settings']['n']}"
            lines.append(
                f"  {label:8s} F2 {m['fbeta']:.4f}  exact match {m['exact_match']:.4f}  "
                f"accuracy_multi {m['accuracy_multi']:.4f}  log-loss {m['logloss']:.4f}"
            )
    lines.append("  tag              precision  recall     F2  images  missed  added")
    for name, t in metrics["per_tag"].items():
        lines.append(
            f"  {name[:16]:16s} {t['precision']:9.3f} {t['recall']:7.3f} {t['fbeta']:6.3f} "
            f"{t['images']:7d} {t['missed']:7d} {t['added']:6d}"
        )
    for key, title in (("most_missed", "most often missed"), ("most_added", "most often added")):
        if metrics[key]:
            shown = ", ".join(f"{m['tag']} ({m[key.split('_')[1]]})" for m in metrics[key])
            lines.append(f"  {title}: {shown}")
    return "\n".join(lines)
