"""`imgclf train`: build everything from the config, fit, write summary.json, print the run dir."""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from imgclf.callbacks import MetricsHistory, ResumeState
from imgclf.callbacks.interrupt import raise_if_interrupted
from imgclf.errors import UserError
from imgclf.fit_recipe import find_stage_lr, fit_recipe, stage_loaders
from imgclf.loggers import write_run_summary
from imgclf.recipe import Stage, parse_recipe
from imgclf.resume import load_resume_point
from imgclf.summary import best_epoch, best_weights, write_json
from imgclf.weights import check_image_size


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


def instantiate_user(section: DictConfig, **kwargs):
    """`instantiate`, letting our one-line UserError through instead of Hydra's wrapper
    (InstantiationException with the config path and a hint about HYDRA_FULL_ERROR)."""
    from hydra.errors import InstantiationException

    try:
        return instantiate(section, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, UserError):
            raise err.__cause__ from None
        raise


def build(cfg: DictConfig):
    """Data module (scanned), model sized for its classes, and the data module told the
    backbone's input config."""
    datamodule = instantiate_user(cfg.data)
    datamodule.setup("fit")
    model = instantiate_user(
        cfg.model, num_classes=len(datamodule.classes), class_names=datamodule.classes
    )
    datamodule.set_data_config(model.data_config)
    return datamodule, model


def check_image_sizes(model, datamodule, stages: list[Stage]) -> None:
    """Every input size the run will use must suit the backbone (one-line error if not)."""
    check_image_size(model.body, datamodule.image_size)
    for stage in stages:
        if stage.image_size is not None:
            check_image_size(model.body, stage.image_size, f"stage {stage.name!r} image_size")


def train(cfg: DictConfig) -> Path:
    """Fit the configured model on the configured data with the recipe; return the run dir."""
    started = time.perf_counter()
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)
    stages = parse_recipe(OmegaConf.to_container(cfg.recipe.stages, resolve=True))
    resume = load_resume_point(cfg.resume) if cfg.get("resume") else None
    if resume and resume.stage_index > len(stages):
        raise UserError(
            f"resume: {resume.checkpoint} is from stage {resume.stage_index}, "
            f"but the recipe has {len(stages)} stages"
        )

    datamodule, model = build(cfg)
    check_image_sizes(model, datamodule, stages)
    history = MetricsHistory()
    callbacks = [*instantiate_dict(cfg.get("callbacks")), history, ResumeState()]
    loggers = instantiate_dict(cfg.get("logger"))
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    trainer: L.Trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    try:
        stage_records = fit_recipe(
            trainer,
            model,
            datamodule,
            stages,
            run_dir,
            cache_dir=Path(cfg.paths.cache_dir),
            lr_find_cfg=OmegaConf.to_container(cfg.lr_find, resolve=True),
            resume=resume,
        )
    except (KeyboardInterrupt, SystemExit) as stop:
        raise_if_interrupted(trainer, callbacks, stop)
        raise
    decode_failures = datamodule.report_decode_failures()

    best = best_epoch(history.history)
    best_from = best_weights(history.history, stage_records)
    checkpoint = trainer.checkpoint_callback
    summary = {
        "backbone": model.hparams.backbone,
        "weights": model.hparams.weights,
        "image_size": datamodule.image_size,
        "recipe": cfg.recipe.get("name"),
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "lr": stage_records[-1]["lr"],
        "stages": stage_records,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "resumed_from": str(resume.checkpoint) if resume else None,
        "best_valid_acc": best.get("valid/acc"),
        "best_epoch": best.get("epoch"),
        # The stage and epoch of the weights in best.ckpt (what evaluate/predict/export take).
        "best_weights": best_from,
        "stage_warnings": [r["warning"] for r in stage_records if r.get("warning")],
        "valid_logloss": best.get("valid/logloss"),
        "final_valid_acc": history.history[-1].get("valid/acc") if history.history else None,
        "train_images": len(datamodule.train_items),
        "valid_images": len(datamodule.valid_items),
        "classes": list(datamodule.classes),
        "skipped_files": datamodule.num_skipped,
        "skipped": [{"path": str(p), "reason": why} for p, why in datamodule.skipped],
        # Files that passed the scan but failed to decode in a loader, replaced each time.
        "decode_failures": sum(decode_failures.values()),
        "decode_failed_files": {str(p): n for p, n in decode_failures.items()},
        "best_checkpoint": checkpoint.best_model_path if checkpoint else None,
        "last_checkpoint": checkpoint.last_model_path if checkpoint else None,
        "history": history.history,
    }
    if trainer.is_global_zero:
        write_json(run_dir / "summary.json", summary)
        if best_from:
            print(
                f"best weights (checkpoints/best.ckpt): stage {best_from['stage']!r}, epoch "
                f"{best_from['epoch']}, valid acc {best_from['valid/acc']:.4f}"
            )
        write_run_summary(loggers, summary)
    finish_loggers(loggers)
    return run_dir


def pick_stage(stages: list[Stage], wanted) -> Stage:
    """`lr_find.stage`: a name, an index, or None for the first stage with lr auto."""
    if wanted is None:
        return next((s for s in stages if s.lr == "auto"), stages[0])
    for i, stage in enumerate(stages):
        if str(wanted) in (stage.name, str(i)):
            return stage
    raise UserError(
        f"no stage {wanted!r} in the recipe; stages: {', '.join(s.name for s in stages)}"
    )


def lr_find_run(cfg: DictConfig) -> Path:
    """`imgclf lr-find`: the range test for one recipe stage; plot, suggestion, summary.json."""
    run_dir = Path(cfg.paths.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    L.seed_everything(cfg.seed, workers=True)
    stages = parse_recipe(OmegaConf.to_container(cfg.recipe.stages, resolve=True))
    stage = pick_stage(stages, cfg.lr_find.get("stage"))
    datamodule, model = build(cfg)
    check_image_sizes(model, datamodule, [stage])
    datamodule.requested_image_size = stage.image_size or datamodule.requested_image_size
    loggers = instantiate_dict(cfg.get("logger"))
    trainer: L.Trainer = instantiate(cfg.trainer, logger=loggers or False)
    model.set_stage(stage, lrs=[1.0] * len(model.groups))
    record: dict = {"stage": stage.name}
    loaders = stage_loaders(trainer, model, datamodule, stage, Path(cfg.paths.cache_dir), record)
    loader = loaders.get("train_dataloaders") or datamodule.train_dataloader()
    lr_find_cfg = OmegaConf.to_container(cfg.lr_find, resolve=True)
    record["lr_find"] = find_stage_lr(
        trainer, model, loader, stage, run_dir, lr_find_cfg, "lr_find.png"
    )
    write_json(run_dir / "summary.json", record)
    finish_loggers(loggers)
    return run_dir
