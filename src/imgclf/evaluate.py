"""`imgclf evaluate ckpt=PATH`: metrics, TTA, clipping and error analysis on the validation set."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from imgclf.inference import checkpoint_path, inference_trainer, load_model_and_data
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
        write_json(run_dir / "metrics.json", metrics)
        for logger in trainer.loggers:
            logger.log_metrics(flat_metrics(metrics))
        print(format_report(metrics))
    finish_loggers(loggers)
    return run_dir


def flat_metrics(metrics: dict) -> dict[str, float]:
    """The headline numbers, as logger metrics: evaluate/plain/accuracy, evaluate/tta/logloss..."""
    flat = {}
    for variant in ("plain", "tta"):
        for key, value in (metrics.get(variant) or {}).items():
            flat[f"evaluate/{variant}/{key}"] = float(value)
    return flat
