"""The stage runner: run a recipe's stages in order with one Trainer, one logger run, one
global step.

Each stage is its own `trainer.fit` call on the same Trainer, with `max_epochs` raised by
the stage's epochs. Lightning then continues the epoch and step counters and the logger
run, calls `configure_optimizers` again (the stage's groups, LRs and schedule), and under
DDP wraps the model afresh, so freezing changes between stages are safe (toggling
requires_grad inside one DDP fit is not).

For each stage the recipe loop decides the input size (the stage's own, else the data's)
and the learning rates (from a resumed checkpoint, the LR finder, or the stage's numbers),
and `run_stage` trains with them and returns the stage's summary record.
"""

from __future__ import annotations

import time
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities import rank_zero_warn

from imgclf.training.checkpoints import LAST, link_checkpoint
from imgclf.training.divergence import DivergenceGuard
from imgclf.training.lr_finder import agree_across_ranks, lr_find_figure, range_test
from imgclf.training.norm_adapt import (
    adapt_norm_statistics,
    adaptation_loader,
    norm_fingerprint,
)
from imgclf.training.precompute import feature_loaders, precompute_features
from imgclf.training.progress import RecipeProgress, stage_regression
from imgclf.training.recipe import Stage
from imgclf.training.resume import ResumePoint


def stage_loaders(
    trainer, model, datamodule, stage: Stage, image_size: int, cache_dir: Path, seed_offset: int = 0
) -> tuple[dict, dict | None]:
    """`trainer.fit` loaders for a stage at `image_size` (images, or cached body features
    for a precompute stage), and the precompute record (None without precompute)."""
    if not stage.precompute:
        train = datamodule.train_dataloader(image_size)
        return {
            "train_dataloaders": train,
            "val_dataloaders": datamodule.val_dataloader(image_size),
        }, None
    started = time.perf_counter()
    features = precompute_features(
        model,
        datamodule,
        stage.precompute_aug,
        cache_dir,
        image_size,
        device=trainer.strategy.root_device,
        norm_key=norm_fingerprint(model) if stage.norm_stats == "adapt" else None,
    )
    train, valid = feature_loaders(
        features,
        datamodule.batch_size,
        datamodule.seed + seed_offset,
        balance_by=datamodule.train_labels(),
        num_classes=len(datamodule.classes),
    )
    record = {
        "cache": str(features.directory),
        "reused": features.reused,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return {"train_dataloaders": train, "val_dataloaders": valid}, record


def find_stage_lrs(
    trainer,
    model,
    loader,
    stage: Stage,
    run_dir: Path,
    settings: dict,
    plot_name: str | None = None,
) -> tuple[list[float], dict]:
    """The LR finder for a stage with `lr: auto`: its group LRs (rank 0's suggestion under
    DDP) and the record for summary.json; the plot is saved and sent to the loggers."""
    from imgclf.reporting import log_picture, save_figure

    settings = {k: v for k, v in settings.items() if k != "stage"}
    result = range_test(model, loader, stage, device=trainer.strategy.root_device, **settings)
    top = agree_across_ranks(result.suggestion)
    lrs = result.group_lrs(top)
    record = {
        "suggestion": top,
        "method": result.method,
        "iterations": len(result.lrs),
        "group_lrs": dict(zip(model.group_names, lrs, strict=True)),
    }
    if trainer.is_global_zero:
        figure = lr_find_figure(result.lrs, result.losses, top, result.method)
        path = save_figure(figure, run_dir / (plot_name or f"lr_find_{stage.name}.png"), dpi=100)
        log_picture(trainer.loggers, f"lr_find/{stage.name}", path)
        record["plot"] = str(path)
    print(
        f"LR finder ({stage.name}): {result.method} suggests {top:.2e}; "
        f"group LRs {[f'{lr:.1e}' for lr in lrs]}"
    )
    return lrs, record


def stage_lrs(
    trainer,
    model,
    datamodule,
    stage: Stage,
    loaders: dict,
    image_size: int,
    run_dir: Path,
    lr_find_settings: dict | None,
    record: dict,
) -> list[float]:
    """The stage's LR per group: its own numbers, or the LR finder's (recorded in `record`)."""
    if stage.lr != "auto":
        return stage.group_lrs(len(model.groups))
    # A loader of its own for the finder, so the fit's shuffling starts fresh.
    sweep = (
        loaders["train_dataloaders"]
        if stage.precompute
        else datamodule.train_dataloader(image_size)
    )
    started = time.perf_counter()
    lrs, record["lr_find"] = find_stage_lrs(
        trainer, model, sweep, stage, run_dir, lr_find_settings or {}
    )
    record["lr_find"]["seconds"] = round(time.perf_counter() - started, 2)
    return lrs


def run_stage(
    trainer: L.Trainer,
    model,
    stage: Stage,
    loaders: dict,
    lrs: list[float],
    image_size: int,
    epochs_until: int,
    record: dict,
    checkpoint: Path,
    resume_from: Path | None = None,
) -> dict:
    """Train one stage at `image_size` with `lrs` (one per layer group) until the run has
    done `epochs_until` epochs in all, and return `record` completed with the LRs, the last
    validation's metrics and the path of the stage's `checkpoint` (see `save_stage_end`)."""
    model.set_stage(stage.plan(lrs, image_size))
    # Lightning keeps the modes it finds; an LR finder or precompute after the last fit
    # leaves the model in eval mode (norm statistics frozen, no dropout), a resumed one not.
    model.train()
    trainer.fit_loop.max_epochs = epochs_until
    # A short epoch still logs its loss and LRs: log at least once per epoch.
    trainer.log_every_n_steps = min(trainer.log_every_n_steps, batches_per_epoch(loaders))
    if resume_from is not None:  # weights-only load: a checkpoint can carry no code
        trainer.fit(model, **loaders, ckpt_path=resume_from, weights_only=True)
    else:
        trainer.fit(model, **loaders)
    if "valid/acc" in trainer.callback_metrics:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    else:  # a resumed fit with nothing left to do ran no validation: the last one recorded
        metrics = RecipeProgress.of(trainer).last_metrics
    guard = DivergenceGuard.find(trainer)
    if guard is not None and guard.stage_recoveries:
        record["recoveries"] = list(guard.stage_recoveries)
    record.update(
        lr=dict(zip(model.group_names, lrs, strict=True)),
        valid_acc=metrics.get("valid/acc"),
        valid_logloss=metrics.get("valid/logloss"),
        checkpoint=str(checkpoint),
    )
    return record


def note_early_stop(trainer: L.Trainer, record: dict, epochs_run: int) -> None:
    """A stage that stopped before its planned epochs (early stopping): its record's
    `epochs` become the epochs it ran, `stopped_early` says why, and the console says so."""
    planned = int(record.get("epochs") or 0)
    if not 0 < epochs_run < planned:
        return
    stopper = trainer.early_stopping_callback
    guard = DivergenceGuard.find(trainer)
    if guard is not None and guard.stopped_stage:
        reason = f"it diverged again after {guard.rules.max_recoveries} recoveries"
    else:
        reason = getattr(stopper, "stopping_reason_message", None) or "stopped early"
    record.update(epochs=epochs_run, planned_epochs=planned, stopped_early=reason)
    if trainer.is_global_zero:
        print(
            f"stage {record['name']!r} stopped early after {epochs_run} of {planned} epochs: "
            f"{reason}",
            flush=True,
        )


def save_stage_end(trainer: L.Trainer, checkpoint: Path) -> None:
    """The stage's own checkpoint, and last.ckpt beside it: both say the stage is done, so a
    run stopped before the next stage's first step resumes with that stage, and a finished
    run's last.ckpt says it is finished. last.ckpt is a second name (a hard link) of the
    same file: writing those megabytes twice was a tenth of a small run's time."""
    trainer.save_checkpoint(checkpoint, weights_only=False)
    if not link_checkpoint(trainer, checkpoint, checkpoint.with_name(LAST)):
        trainer.save_checkpoint(checkpoint.with_name(LAST), weights_only=False)


def batches_per_epoch(loaders: dict) -> int:
    try:
        return max(1, len(loaders["train_dataloaders"]))
    except TypeError:  # an iterable without a length
        return 1


def stage_banner(
    index: int, total: int, stage: Stage, group_names: list[str], lrs, image_size: int
) -> str:
    """The line printed when a stage starts: name, epochs, input size, frozen groups and
    the LR of each group, e.g. `stage 1/2 frozen: 1 epoch at 32 px; frozen: body_early,
    body_late; LR body_early 2e-05, body_late 2e-04, head 2e-03`."""
    first_trained = stage.freeze_to % len(group_names) if stage.freeze_to < 0 else stage.freeze_to
    frozen = ", ".join(group_names[:first_trained]) or "none"
    epochs = f"{stage.num_epochs} epoch{'s' if stage.num_epochs != 1 else ''}"
    rates = ", ".join(f"{name} {lr:.1e}" for name, lr in zip(group_names, lrs, strict=True))
    extra = " on precomputed features" if stage.precompute else ""
    return (
        f"stage {index}/{total} {stage.name}: {epochs} at {image_size} px{extra}; "
        f"frozen: {frozen}; LR {rates}"
    )


def begin_stage(
    trainer,
    model,
    datamodule,
    stage: Stage,
    index: int,
    run_dir: Path,
    cache_dir: Path,
    lr_find_settings: dict | None,
    resume: ResumePoint | None,
) -> tuple[dict, dict, list[float], int]:
    """Stage `index` made ready: its summary record, loaders, LRs and input size. `resume`:
    the point this stage continues from (its record and LRs come from there)."""
    image_size = stage.image_size or datamodule.image_size
    record: dict = {"name": stage.name, "epochs": stage.num_epochs, "image_size": image_size}
    if resume and len(resume.records) >= index:
        record = {**resume.records[index - 1], "resumed_from": str(resume.checkpoint)}
    elif stage.norm_stats == "adapt":  # a resumed stage has them in its checkpoint
        record["norm_stats_adapted_on"] = adapt_norm_statistics(
            model, adaptation_loader(datamodule, image_size), trainer.strategy.root_device
        )
    loaders, precomputed = stage_loaders(
        trainer, model, datamodule, stage, image_size, cache_dir, seed_offset=index
    )
    record.update({"precompute": precomputed} if precomputed else {})
    known = resume.stage_lrs if resume else None
    lrs = known or stage_lrs(
        trainer, model, datamodule, stage, loaders, image_size, run_dir, lr_find_settings, record
    )
    return record, loaders, lrs, image_size


def run_recipe(
    trainer: L.Trainer,
    model,
    datamodule,
    stages: list[Stage],
    run_dir: Path,
    cache_dir: Path,
    lr_find_settings: dict | None = None,
    resume: ResumePoint | None = None,
) -> list[dict]:
    """Fit every stage; return one summary record per stage.

    With `resume`, the stages before the interrupted one are skipped (their records come
    from the checkpoint), and the interrupted one keeps its learning rates (no LR finder)
    and continues from the checkpoint: epoch, step, optimizer, schedule, data order, RNG.
    """
    progress = RecipeProgress.of(trainer)
    records: list[dict] = []
    for index, stage in enumerate(stages, start=1):
        if resume and index < resume.stage_index:
            records.append(resume.records[index - 1])
            continue
        started = time.perf_counter()
        resumed = resume if resume is not None and index == resume.stage_index else None
        record, loaders, lrs, image_size = begin_stage(
            trainer, model, datamodule, stage, index, run_dir, cache_dir, lr_find_settings, resumed
        )
        progress.start_stage(index, len(stages), lrs, record, records)
        guard = DivergenceGuard.find(trainer)
        if guard is not None and not resumed:
            guard.begin_stage()
        if trainer.is_global_zero:
            print(stage_banner(index, len(stages), stage, model.group_names, lrs, image_size))
        # Epochs count on across stages: this stage ends after the epochs the stages before
        # it ran (fewer than planned where one stopped early) and its own. A resumed stage's
        # Trainer has not loaded its epoch counter yet: the records say where it stands.
        done = sum(int(r.get("epochs") or 0) for r in records)
        epochs_before = done if resumed else trainer.current_epoch
        epochs_until = epochs_before + stage.num_epochs
        checkpoint = run_dir / "checkpoints" / f"stage{index}-{stage.name}.ckpt"
        resume_from = resumed.checkpoint if resumed else None
        args = (loaders, lrs, image_size, epochs_until, record, checkpoint, resume_from)
        run_stage(trainer, model, stage, *args)
        note_early_stop(trainer, record, trainer.current_epoch - epochs_before)
        progress.finish_stage(index)
        save_stage_end(trainer, checkpoint)
        record["seconds"] = round(time.perf_counter() - started, 2)
        records.append(record)
        warning = stage_regression(records)
        if warning:
            record["warning"] = warning
            rank_zero_warn(warning)
    return records
