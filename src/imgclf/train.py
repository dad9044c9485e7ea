"""`imgclf train`: build everything from the config, fit, write summary.json, print the run dir."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imgclf.callbacks import MetricsHistory
from imgclf.summary import best_epoch, peak_lrs, write_json


def instantiate_dict(section: DictConfig | None) -> list:
    """Instantiate every entry of a name -> {_target_: ...} mapping (loggers, callbacks)."""
    if not section:
        return []
    return [instantiate(entry) for entry in section.values() if entry and "_target_" in entry]


def finish_loggers(loggers: list) -> None:
    """Close W&B runs now, so their sync messages come before our final line."""
    for logger in loggers:
        if isinstance(logger, L.pytorch.loggers.WandbLogger):
            logger.experiment.finish()


def train(cfg: DictConfig) -> Path:
    """Fit the configured model on the configured data; return the run directory."""
    started = time.perf_counter()
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)

    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    model = instantiate(
        cfg.model, num_classes=len(datamodule.classes), class_names=datamodule.classes
    )
    datamodule.set_data_config(model.data_config)

    history = MetricsHistory()
    callbacks = [*instantiate_dict(cfg.get("callbacks")), history]
    loggers = instantiate_dict(cfg.get("logger"))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    trainer.fit(model, datamodule=datamodule)

    best = best_epoch(history.history)
    checkpoint = trainer.checkpoint_callback
    summary = {
        "backbone": model.hparams.backbone,
        "weights": model.hparams.weights,
        "image_size": datamodule.image_size,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "lr": peak_lrs(trainer.optimizers[0]),
        "scheduler": model.hparams.scheduler,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "best_valid_acc": best.get("valid/acc"),
        "best_epoch": best.get("epoch"),
        "valid_logloss": best.get("valid/logloss"),
        "final_valid_acc": history.history[-1].get("valid/acc") if history.history else None,
        "train_images": len(datamodule.train_items),
        "valid_images": len(datamodule.valid_items),
        "classes": list(datamodule.classes),
        "skipped_files": datamodule.num_skipped,
        "best_checkpoint": checkpoint.best_model_path if checkpoint else None,
        "last_checkpoint": checkpoint.last_model_path if checkpoint else None,
        "history": history.history,
    }
    write_json(run_dir / "summary.json", summary)
    finish_loggers(loggers)
    return run_dir
