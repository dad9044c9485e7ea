"""`imgclf evaluate ckpt=PATH`: metrics, TTA, clipping and error analysis on the validation set."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf

from imgclf.inference import (
    checkpoint_path,
    class_metrics,
    class_names,
    decode_failures_of,
    inference_trainer,
    load_model_and_data,
    variant_metrics,
)
from imgclf.report import write_error_analysis
from imgclf.summary import write_json
from imgclf.train import finish_loggers, instantiate_dict
from imgclf.tta import predict_with_tta


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


def evaluate(cfg: DictConfig) -> Path:
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)
    model, datamodule = load_model_and_data(cfg)
    classes = class_names(model)
    loggers = instantiate_dict(cfg.get("logger"))
    trainer = inference_trainer(cfg, loggers)
    items = datamodule.valid_items
    result = predict_with_tta(
        trainer, model, datamodule, items, n=cfg.tta.n, beta=cfg.tta.beta, seed=cfg.seed
    )
    labels = np.array([label for _, label in items], dtype=np.int64)
    metrics: dict = {
        "checkpoint": str(checkpoint_path(cfg.ckpt)),
        "images": len(items),
        "classes": classes,
        "image_size": datamodule.image_size,
        "tta_settings": {"n": result.n, "beta": result.beta},
        "plain": variant_metrics(result.plain, labels, cfg.clip),
    }
    if result.tta is not None:
        metrics["tta"] = variant_metrics(result.tta, labels, cfg.clip)
    metrics.update(class_metrics(result.best, labels, classes))
    if trainer.is_global_zero:
        analysis = write_error_analysis(
            result.best,
            labels,
            [path for path, _ in items],
            classes,
            run_dir,
            k=cfg.interpret.k,
            seed=cfg.seed,
            loggers=trainer.loggers,
            prefix="evaluate",
        )
        metrics["views"] = {name: len(rows) for name, rows in analysis["views"].items()}
        metrics["skipped_files"] = datamodule.num_skipped
        # Replaced by another image when loaded: their rows are that image's prediction.
        metrics["decode_failed"] = [str(items[i][0]) for i in decode_failures_of(datamodule, items)]
        write_predictions(run_dir / "predictions.csv", items, result.best, classes)
        write_json(run_dir / "metrics.json", metrics)
        for logger in trainer.loggers:
            logger.log_metrics(flat_metrics(metrics))
        print(format_report(metrics))
    finish_loggers(loggers)
    return run_dir


def write_predictions(path: Path, items, probs: np.ndarray, classes: list[str]) -> Path:
    """Every validation image once: file, true and predicted class, one column per class."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "true", "predicted", *classes])
        for (file, label), row in zip(items, probs, strict=True):
            predicted = classes[int(row.argmax())]
            writer.writerow([file, classes[label], predicted, *(f"{p:.6f}" for p in row)])
    return path


def flat_metrics(metrics: dict) -> dict[str, float]:
    """The headline numbers, as logger metrics: evaluate/plain/accuracy, evaluate/tta/logloss..."""
    flat = {}
    for variant in ("plain", "tta"):
        for key, value in (metrics.get(variant) or {}).items():
            flat[f"evaluate/{variant}/{key}"] = float(value)
    return flat
