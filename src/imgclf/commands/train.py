"""`imgclf train`: build everything from the config, run the recipe, write summary.json."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from imgclf.callbacks.interrupt import StopRequested, raise_if_interrupted
from imgclf.commands.startup import (
    build_data_and_model,
    build_trainer,
    instantiate_dict,
    start_run,
)
from imgclf.commands.sweep import check_optimized_metric, optimized_value
from imgclf.errors import UserError
from imgclf.evaluation.clip_setting import recorded_eps
from imgclf.evaluation.export import cache_onnx
from imgclf.evaluation.pictures import augmented_samples, batch_figure, history_figure
from imgclf.model.backbone import check_image_size
from imgclf.reporting import log_picture, save_figure, write_json, write_run_summary
from imgclf.training.checkpoints import find_checkpoint, load_network, read_checkpoint
from imgclf.training.progress import RecipeProgress, best_record, best_weights
from imgclf.training.recipe import Stage, parse_recipe
from imgclf.training.resume import (
    ResumePoint,
    check_resume_fits,
    load_resume_point,
    run_dir_of,
)
from imgclf.training.resume_config import check_resume_config
from imgclf.training.runner import run_recipe


def check_image_sizes(model, datamodule, stages: list[Stage]) -> None:
    """Every input size the run will use must suit the backbone (one-line error if not)."""
    check_image_size(model.body, datamodule.image_size)
    for stage in stages:
        if stage.image_size is not None:
            check_image_size(model.body, stage.image_size, f"stage {stage.name!r} image_size")


def recipe_of(cfg: DictConfig) -> list[Stage]:
    return parse_recipe(OmegaConf.to_container(cfg.recipe.stages, resolve=True))


def train(cfg: DictConfig) -> float | None:
    """`imgclf train`, the Hydra task: fit the configured model on the configured data with
    the recipe, in the run directory `paths.output_dir`; return the run's value of
    `optimized_metric` for a sweeper (None when that key is null)."""
    check_optimized_metric(cfg.get("optimized_metric"))
    summary = run_training(cfg)
    return optimized_value(summary, cfg.get("optimized_metric"))


def run_training(cfg: DictConfig) -> dict:
    """Run the recipe, write the run's files; return its summary (summary.json)."""
    started = time.perf_counter()
    stages = recipe_of(cfg)
    resume = load_resume_point(cfg.resume) if cfg.get("resume") else None
    if resume and resume.finished(len(stages)):
        print(f"resume: {resume.checkpoint} ends a finished run: nothing to do", flush=True)
        return saved_summary(Path(cfg.paths.output_dir))
    if resume:
        check_resume_matches_run(cfg, resume, stages)
    another_run_ok = bool(resume) or bool(cfg.get("exist_ok"))
    # Every check before the run begins: a command refused here writes no run files.
    run = start_run(cfg, begin=False, another_run_ok=another_run_ok)
    datamodule, model = build_data_and_model(cfg)
    check_image_sizes(model, datamodule, stages)
    if resume:
        check_resume_fits(resume, model)
    callbacks = instantiate_dict(cfg.get("callbacks"))
    build_trainer(cfg.trainer, logger=False)  # a trainer mistake, before any file
    run.begin()
    for logger in run.loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer: L.Trainer = build_trainer(
        cfg.trainer, callbacks=callbacks, logger=run.loggers or False
    )
    if trainer.is_global_zero:
        first_size = stages[0].image_size or datamodule.image_size
        write_batch_picture(datamodule, first_size, run.directory, run.loggers, cfg.seed)
    try:
        stage_records = run_recipe(
            trainer,
            model,
            datamodule,
            stages,
            run.directory,
            cache_dir=Path(cfg.paths.cache_dir),
            lr_find_settings=OmegaConf.to_container(cfg.lr_find, resolve=True),
            resume=resume,
        )
    except (KeyboardInterrupt, SystemExit, StopRequested) as stop:
        raise_if_interrupted(trainer, callbacks, stop)
        raise
    summary = run_summary(cfg, trainer, model, datamodule, stage_records, resume)
    if trainer.is_global_zero:
        cache_for_predict(run.directory)
    summary["wall_seconds"] = round(time.perf_counter() - started, 2)
    if trainer.is_global_zero:
        write_json(run.directory / "summary.json", summary)
        write_run_summary(run.loggers, summary)
        write_history_picture(summary, run.directory, run.loggers, trainer.global_step)
    directory = run.finish()
    if trainer.is_global_zero:
        print(closing_block(summary, directory), flush=True)
    return summary


def cache_for_predict(run_dir: Path) -> None:
    """The network of the checkpoint predict takes (best.ckpt, else last.ckpt) cached as ONNX
    beside it (`evaluation.export.cache_onnx`, about 1 s), so that the run's first
    `imgclf predict` of one image already runs without torch."""
    try:
        checkpoint = find_checkpoint(run_dir)
    except UserError:  # no checkpoint was written (checkpointing turned off)
        return
    cache_onnx(load_network(checkpoint), checkpoint, recorded_eps(read_checkpoint(checkpoint)))


def check_resume_matches_run(cfg: DictConfig, resume: ResumePoint, stages: list[Stage]) -> None:
    """The recipe has the checkpoint's stage and the config is the run's own (but for the
    keys a resume may change): checked before the run's directory is even locked."""
    if resume.stage_index > len(stages):
        raise UserError(
            f"resume: {resume.checkpoint} is from stage {resume.stage_index}, "
            f"but the recipe has {len(stages)} stages"
        )
    check_resume_config(run_dir_of(resume.checkpoint), OmegaConf.to_container(cfg, resolve=True))


def saved_summary(run_dir: Path) -> dict:
    """The summary.json a finished run wrote; {} if it has none."""
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_batch_picture(datamodule, image_size: int, run_dir: Path, loggers, seed: int) -> Path:
    """`batch.png`: 16 augmented training images as the model sees them, with labels."""
    images, labels = augmented_samples(datamodule, image_size, n=16, seed=seed)
    path = save_figure(batch_figure(images, labels), run_dir / "batch.png")
    log_picture(loggers, "train/batch", path, step=0)
    return path


def write_history_picture(summary: dict, run_dir: Path, loggers, step: int) -> Path:
    """`history.png`: losses and accuracy per epoch, stage boundaries marked."""
    starts, epoch = {}, 0
    for index, stage in enumerate(summary["stages"]):
        if index:
            starts[stage["name"]] = epoch
        epoch += int(stage.get("epochs") or 0)
    path = save_figure(history_figure(summary["history"], starts), run_dir / "history.png")
    log_picture(loggers, "train/history", path, step=step)
    return path


def closing_block(summary: dict, run_dir: Path) -> str:
    """What the run achieved and what to run next (the run directory line follows it)."""

    def number(key: str) -> str:
        value = summary.get(key)
        return "n/a" if value is None else f"{value:.4f}"

    clipped = summary.get("valid_logloss_clipped")
    clipped_text = f" (clipped {clipped:.4f})" if clipped is not None else ""
    best_epoch = summary.get("best_epoch")  # counted from 1, as everywhere
    epoch_text = f" at epoch {best_epoch}" if best_epoch is not None else ""
    origin = summary.get("best_weights") or {}
    if origin.get("stage"):
        epoch_text += (
            f" (best weights: stage {origin['stage']!r}, epoch {origin['epoch']}; "
            "checkpoints/best.ckpt)"
        )
    if summary.get("task") == "multi":  # best.ckpt is chosen by samples-F2 there
        best = f"best valid F2 {number('best_valid_fbeta')}{epoch_text}; accuracy_multi "
        best += f"{number('best_valid_acc')}"
    else:
        best = f"best valid accuracy {number('best_valid_acc')}{epoch_text}"
    return "\n".join(
        [
            f"{best}; valid log-loss {number('valid_logloss')}{clipped_text}; "
            f"{summary['wall_seconds']:.0f} s",
            f"run directory: {run_dir}",
            "next:",
            f"  imgclf evaluate ckpt={run_dir}",
            f"  imgclf predict ckpt={run_dir} input=<image, folder or glob>",
            f"  imgclf export ckpt={run_dir} format=onnx",
        ]
    )


def run_summary(
    cfg, trainer, model, datamodule, stage_records: list[dict], resume: ResumePoint | None
) -> dict:
    """summary.json: the facts of a finished run, for people and scripts."""
    history = RecipeProgress.of(trainer).history
    decode_failures = datamodule.report_decode_failures()
    monitor = model.task.monitor  # valid/acc, or valid/fbeta for multi-label
    best = best_record(history, monitor)
    origin = best_weights(history, stage_records, monitor)
    checkpoint = trainer.checkpoint_callback
    return {
        "backbone": model.hparams.backbone,
        "weights": model.hparams.weights,
        # The size the handed-over weights were trained at (evaluate, predict and export use
        # it); each stage's is in its record.
        "image_size": handed_over_size(origin, stage_records, datamodule.image_size),
        # data.image_size=auto: the size chosen and the originals' median shorter side.
        "image_size_auto": datamodule.image_size_auto,
        "recipe": cfg.recipe.get("name"),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "lr": stage_records[-1]["lr"],
        "stages": stage_records,
        "resumed_from": str(resume.checkpoint) if resume else None,
        "best_valid_acc": best.get("valid/acc"),
        "best_epoch": best.get("epoch"),
        # The stage and epoch of the weights in best.ckpt (what evaluate/predict/export take).
        "best_weights": origin,
        "stage_warnings": [r["warning"] for r in stage_records if r.get("warning")],
        "valid_logloss": best.get("valid/logloss"),
        "valid_logloss_clipped": best.get("valid/logloss_clipped"),
        "final_valid_acc": history[-1].get("valid/acc") if history else None,
        "train_images": len(datamodule.train_items),
        "valid_images": len(datamodule.valid_items),
        "classes": list(datamodule.classes),
        "task": model.task.name,
        **task_summary(model, best, checkpoint.best_model_path if checkpoint else None),
        "skipped_files": datamodule.num_skipped,
        "skipped": [{"path": str(p), "reason": why} for p, why in datamodule.skipped],
        # Files that passed the scan but failed to decode in a loader, replaced each time.
        "decode_failures": sum(decode_failures.values()),
        "decode_failed_files": {str(p): n for p, n in decode_failures.items()},
        "best_checkpoint": checkpoint.best_model_path if checkpoint else None,
        "last_checkpoint": checkpoint.last_model_path if checkpoint else None,
        "history": history,
    }


def handed_over_size(origin: dict, stage_records: list[dict], default: int) -> int:
    """The image size of the weights a run hands over: best.ckpt's (`origin`, from
    `best_weights`), else the last stage's (no validation ran), else `default`."""
    sizes = [origin.get("image_size")] + [r.get("image_size") for r in reversed(stage_records)]
    return next((int(size) for size in sizes if size), int(default))


def task_summary(model, best: dict, best_checkpoint: str | None) -> dict:
    """Multi-label: the best samples-F-beta and the thresholds best.ckpt decodes with
    (the model's own, the last validation's, when there is no best.ckpt)."""
    if model.task.name != "multi":
        return {}
    thresholds = model.thresholds
    if best_checkpoint and Path(best_checkpoint).is_file():
        saved = torch.load(best_checkpoint, map_location="cpu", weights_only=True)
        thresholds = (saved.get("imgclf") or {}).get("thresholds", thresholds)
    return {"best_valid_fbeta": best.get("valid/fbeta"), "thresholds": thresholds}
