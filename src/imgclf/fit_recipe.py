"""Run a recipe's stages in order with one Trainer: one logger run, one global step.

Each stage is its own `trainer.fit` call on the same Trainer, with `max_epochs` raised by
the stage's epochs. Lightning then continues the epoch and step counters and the logger
run, calls `configure_optimizers` again (the stage's groups, LRs and schedule), and under
DDP wraps the model afresh, so freezing changes between stages are safe (toggling
requires_grad inside one DDP fit is not).
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn

from imgclf.callbacks import MetricsHistory
from imgclf.lr_finder import agree_across_ranks, lr_find
from imgclf.lr_suggest import plot_lr_find
from imgclf.precompute import feature_loaders, precompute_features
from imgclf.recipe import Stage
from imgclf.resume import ResumePoint
from imgclf.summary import stage_regression


def log_image(trainer: L.Trainer, key: str, path: Path) -> None:
    """Send a PNG to the loggers that take images (W&B, TensorBoard)."""
    for logger in trainer.loggers:
        if isinstance(logger, L.pytorch.loggers.WandbLogger):
            logger.log_image(key=key, images=[str(path)])
        elif isinstance(logger, L.pytorch.loggers.TensorBoardLogger):
            import numpy as np
            from PIL import Image

            image = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(key, image, dataformats="HWC")


def find_stage_lr(
    trainer,
    model,
    loader,
    stage: Stage,
    run_dir: Path,
    lr_find_cfg: dict,
    plot_name: str | None = None,
) -> dict:
    """LR finder for a stage with `lr: auto`: sets the stage's LRs, saves and logs the plot."""
    settings = {k: v for k, v in lr_find_cfg.items() if k != "stage"}
    result = lr_find(model, loader, stage, device=trainer.strategy.root_device, **settings)
    top = agree_across_ranks(result.suggestion)
    lrs = model.set_stage(stage, lrs=result.group_lrs(top))
    record = {
        "suggestion": top,
        "method": result.method,
        "iterations": len(result.lrs),
        "group_lrs": dict(zip(model.group_names, lrs, strict=True)),
    }
    if trainer.is_global_zero:
        path = plot_lr_find(
            result.lrs,
            result.losses,
            top,
            result.method,
            run_dir / (plot_name or f"lr_find_{stage.name}.png"),
        )
        log_image(trainer, f"lr_find/{stage.name}", path)
        record["plot"] = str(path)
    print(
        f"LR finder ({stage.name}): {result.method} suggests {top:.2e}; group LRs {[f'{lr:.1e}' for lr in lrs]}"
    )
    return record


def stage_loaders(
    trainer, model, datamodule, stage: Stage, cache_dir: Path, record: dict, seed_offset: int = 0
) -> dict:
    """`trainer.fit` data arguments for a stage: the image data module, or cached features."""
    if not stage.precompute:
        return {"datamodule": datamodule}
    features = precompute_features(
        model, datamodule, stage.precompute_aug, cache_dir, device=trainer.strategy.root_device
    )
    train, valid = feature_loaders(features, datamodule.batch_size, datamodule.seed + seed_offset)
    record["precompute"] = {"cache": str(features.directory), "reused": features.reused}
    return {"train_dataloaders": train, "val_dataloaders": valid}


def stage_metrics(trainer: L.Trainer) -> dict:
    """The last validation metrics: this fit's, or, when a resumed fit had nothing left to
    do, the last ones the restored history holds."""
    if "valid/acc" in trainer.callback_metrics:
        return trainer.callback_metrics
    for callback in trainer.callbacks:
        if isinstance(callback, MetricsHistory) and callback.history:
            return callback.history[-1]
    return {}


def fit_recipe(
    trainer: L.Trainer,
    model,
    datamodule,
    stages: list[Stage],
    run_dir: Path,
    cache_dir: Path,
    lr_find_cfg: dict | None = None,
    resume: ResumePoint | None = None,
) -> list[dict]:
    """Fit every stage; return one summary record per stage.

    With `resume`, the stages before the interrupted one are skipped (their records come
    from the checkpoint), and the interrupted one keeps its learning rates (no LR finder)
    and continues from the checkpoint: epoch, step, optimizer, schedule, data order, RNG.
    """
    base_image_size = datamodule.requested_image_size
    records = []
    for index, stage in enumerate(stages, start=1):
        if resume and index < resume.stage_index:
            records.append(resume.records[index - 1])
            continue
        resuming = resume is not None and index == resume.stage_index
        started = time.perf_counter()
        datamodule.requested_image_size = stage.image_size or base_image_size
        known_lrs = resume.stage_lrs if resuming else None
        if known_lrs:
            model.set_stage(stage, lrs=known_lrs)
        elif stage.lr == "auto":  # freeze now; the LRs come from the finder below
            model.set_stage(stage, lrs=[1.0] * len(model.groups))
        else:
            model.set_stage(stage)
        model.image_size = datamodule.image_size
        model.stage_index = index
        record: dict = {
            "name": stage.name,
            "epochs": stage.num_epochs,
            "image_size": datamodule.image_size,
        }
        if resuming and len(resume.records) >= index:
            record = {**resume.records[index - 1], "resumed_from": str(resume.checkpoint)}
        model.recipe_records = [*records, record]  # saved in checkpoints, for resume

        loaders = stage_loaders(
            trainer, model, datamodule, stage, cache_dir, record, seed_offset=index
        )
        if stage.lr == "auto" and not known_lrs:
            loader = loaders.get("train_dataloaders") or datamodule.train_dataloader()
            record["lr_find"] = find_stage_lr(
                trainer, model, loader, stage, run_dir, lr_find_cfg or {}
            )
        lrs = model.stage_lrs

        # Epochs count on across stages: this stage ends after all epochs up to it.
        trainer.fit_loop.max_epochs = sum(s.num_epochs for s in stages[:index])
        if resuming:  # weights-only load: a checkpoint can carry no code
            trainer.fit(model, **loaders, ckpt_path=resume.checkpoint, weights_only=True)
        else:
            trainer.fit(model, **loaders)
        checkpoint = run_dir / "checkpoints" / f"stage{index}-{stage.name}.ckpt"
        trainer.save_checkpoint(checkpoint, weights_only=False)
        metrics = stage_metrics(trainer)
        record.update(
            lr=dict(zip(model.group_names, lrs, strict=True)),
            seconds=round(time.perf_counter() - started, 2),
            valid_acc=float(metrics["valid/acc"]) if "valid/acc" in metrics else None,
            valid_logloss=float(metrics["valid/logloss"]) if "valid/logloss" in metrics else None,
            checkpoint=str(checkpoint),
        )
        records.append(record)
        warning = stage_regression(records)
        if warning:
            record["warning"] = warning
            rank_zero_warn(warning)
    datamodule.requested_image_size = base_image_size
    return records
