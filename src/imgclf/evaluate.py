"""`imgclf evaluate ckpt=PATH`: metrics, TTA, clipping and error analysis on the validation set."""

from __future__ import annotations

import csv
from pathlib import Path

import lightning as L
import numpy as np
from omegaconf import DictConfig, OmegaConf

from imgclf.inference import (
    checkpoint_path,
    decode_failures_of,
    inference_trainer,
    load_model_and_data,
)
from imgclf.interpretation import format_report, interpret
from imgclf.summary import write_json
from imgclf.train import finish_loggers, instantiate_dict

__all__ = ["evaluate", "flat_metrics", "format_report"]


def evaluate(cfg: DictConfig) -> Path:
    """`imgclf evaluate`: `interpret` on the checkpoint's model, then metrics.json, the
    views, the confusion matrix and the console report."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)
    model, datamodule = load_model_and_data(cfg)
    loggers = instantiate_dict(cfg.get("logger"))
    trainer = inference_trainer(cfg, loggers)
    analysis = interpret(
        model,
        datamodule,
        trainer,
        tta_n=cfg.tta.n,
        tta_beta=cfg.tta.beta,
        clip=cfg.clip,
        k=cfg.interpret.k,
        seed=cfg.seed,
        image_size=datamodule.image_size,
    )
    metrics = {"checkpoint": str(checkpoint_path(cfg.ckpt)), **analysis.metrics}
    if trainer.is_global_zero:
        written = analysis.write(run_dir, loggers=trainer.loggers, prefix="evaluate")
        metrics["views"] = {name: len(rows) for name, rows in written["views"].items()}
        metrics["skipped_files"] = datamodule.num_skipped
        # Replaced by another image when loaded: their rows are that image's prediction.
        items = datamodule.valid_items
        metrics["decode_failed"] = [str(items[i][0]) for i in decode_failures_of(datamodule, items)]
        write_predictions(run_dir / "predictions.csv", items, analysis.probs, analysis.classes)
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
