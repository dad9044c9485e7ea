"""`imgclf evaluate ckpt=PATH`: metrics, TTA, clipping and error analysis on the validation set."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from imgclf.commands.startup import (
    inference_trainer,
    load_model_and_data,
    start_run,
    tta_arguments,
)
from imgclf.evaluation.interpretation import format_report, interpret
from imgclf.evaluation.report import write_predictions
from imgclf.evaluation.tag_interpretation import format_tag_report, interpret_tags
from imgclf.reporting import write_json
from imgclf.training.checkpoints import find_checkpoint


def evaluate(cfg: DictConfig) -> Path:
    """`interpret` on the checkpoint's model, then metrics.json, predictions.csv, the views,
    the confusion matrix and the console report."""
    run = start_run(cfg, begin=False)
    model, datamodule = load_model_and_data(cfg)
    run.begin()  # the checkpoint and the data are fine: the run's files and loggers
    trainer = inference_trainer(cfg, run.loggers)
    if model.task.name == "multi":
        evaluate_tags(cfg, run.directory, model, datamodule, trainer)
        return run.finish()
    analysis = interpret(model, datamodule, trainer, k=cfg.interpret.k, **tta_arguments(cfg, model))
    metrics = {"checkpoint": str(find_checkpoint(cfg.ckpt)), **analysis.metrics}
    if trainer.is_global_zero:
        written = analysis.write(run.directory, loggers=trainer.loggers, prefix="evaluate")
        metrics["views"] = {name: len(rows) for name, rows in written["views"].items()}
        metrics["skipped_files"] = datamodule.num_skipped
        # Replaced by another image when loaded: their rows are that image's prediction.
        items = datamodule.valid_items
        metrics["decode_failed"] = [str(items[i][0]) for i in datamodule.decode_failed_rows(items)]
        write_predictions(
            run.directory / "predictions.csv", items, analysis.probs, analysis.classes
        )
        write_json(run.directory / "metrics.json", metrics)
        for logger in trainer.loggers:
            logger.log_metrics(flat_metrics(metrics))
        print(format_report(metrics))
    return run.finish()


def evaluate_tags(cfg, out_dir: Path, model, datamodule, trainer) -> None:
    """The multi-label evaluation: metrics.json, predictions.csv, per_tag.csv, the top
    losses with their tag sets, and the console report."""
    analysis = interpret_tags(
        model, datamodule, trainer, k=cfg.interpret.k, **tta_arguments(cfg, model)
    )
    if not trainer.is_global_zero:
        return
    metrics = {"checkpoint": str(find_checkpoint(cfg.ckpt)), **analysis.metrics}
    analysis.write(out_dir, loggers=trainer.loggers, prefix="evaluate")
    metrics["skipped_files"] = datamodule.num_skipped
    analysis.write_predictions(out_dir / "predictions.csv")
    write_json(out_dir / "metrics.json", metrics)
    for logger in trainer.loggers:
        logger.log_metrics(flat_metrics(metrics))
    print(format_tag_report(metrics))


def flat_metrics(metrics: dict) -> dict[str, float]:
    """The headline numbers, as logger metrics: evaluate/plain/accuracy, evaluate/tta/logloss..."""
    flat = {}
    for variant in ("plain", "tta"):
        for key, value in (metrics.get(variant) or {}).items():
            flat[f"evaluate/{variant}/{key}"] = float(value)
    return flat
