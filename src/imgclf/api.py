"""The Python API's Trainer and recipe runner with notebook defaults.

    from imgclf import FolderDataModule, ImageClassifier, Stage, lr_find, fit_recipe

    data = FolderDataModule("data/digits", image_size=64, batch_size=32, num_workers=0)
    data.setup()
    model = ImageClassifier(num_classes=len(data.classes), class_names=data.classes)
    head = Stage("head", freeze_to=-1, epochs=2, lr=1e-2, precompute=True)
    lr_find(model, data, head).plot()
    fit_recipe(model, data, [head])

`imgclf train` runs the same stage runner (`imgclf.training.run_recipe`) with a Trainer
and callbacks built from the Hydra config.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import lightning as L

from imgclf.callbacks.defaults import default_callbacks
from imgclf.data import FolderDataModule
from imgclf.evaluation.collect import quiet_lightning
from imgclf.training.recipe import Stage, parse_recipe
from imgclf.training.runner import run_recipe

DEFAULT_CACHE_DIR = Path("data/cache")


def make_trainer(
    run_dir: str | Path | None = None,
    accelerator: str = "auto",
    devices: int | str = 1,
    clip="auto",
    views_k: int = 12,
    callbacks: Sequence[L.Callback] = (),
    logger=False,
    progress_bar: bool = False,
    quiet: bool = True,
    **trainer_kwargs,
) -> L.Trainer:
    """A Trainer for notebooks: one device (GPU if there is one), no logger, no progress
    bars, no checkpoint callback, no sanity validation.

    Attached: `default_callbacks(run_dir, clip, views_k, console=False, checkpoints=False)`
    (prediction collection, clipped log-loss, the NaN-loss stop, RecipeProgress with
    `.history` of every validation; with `run_dir` the misclassification views written to
    `run_dir/interpret/`). `quiet` silences Lightning's device banner and its warning about
    few DataLoader workers. Extra keyword arguments go to L.Trainer.
    """
    if quiet:
        quiet_lightning()
    every = default_callbacks(run_dir, clip, views_k, console=False, checkpoints=False)
    settings = dict(
        accelerator=accelerator,
        devices=devices,
        logger=logger,
        enable_progress_bar=progress_bar,
        enable_model_summary=False,
        enable_checkpointing=False,
        num_sanity_val_steps=0,
        default_root_dir=str(run_dir) if run_dir is not None else None,
    )
    settings.update(trainer_kwargs)
    return L.Trainer(callbacks=[*every, *callbacks], **settings)


def default_run_dir() -> Path:
    return Path("logs") / "api" / time.strftime("%Y-%m-%d_%H-%M-%S")


def as_stages(stages) -> list[Stage]:
    """One Stage, a list of Stages, or config mappings (as in configs/recipe/*.yaml)."""
    if isinstance(stages, (Stage, Mapping)):
        stages = [stages]
    stages = list(stages)
    if all(isinstance(s, Stage) for s in stages):
        return stages
    return parse_recipe([dict(s) if isinstance(s, Mapping) else asdict(s) for s in stages])


def fit_recipe(
    model,
    datamodule: FolderDataModule,
    stages,
    trainer: L.Trainer | None = None,
    run_dir: str | Path | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    lr_find_settings: dict | None = None,
) -> list[dict]:
    """Train `model` through the recipe's stages in order (what `imgclf train` runs).

    stages: a Stage, a list of them, or config mappings. Each stage freezes/unfreezes,
    sets its per-group LRs (`lr: auto` runs the LR finder and saves its plot to run_dir),
    its schedule (one_cycle, sgdr, constant) and image size, and is its own `trainer.fit`.
    trainer: default `make_trainer(run_dir)`; pass one Trainer to several calls to continue
    one run. run_dir (default logs/api/<date>_<time>) receives stage checkpoints
    (`checkpoints/stage<N>-<name>.ckpt`), LR finder plots and `interpret/`. Returns one
    record per stage: epochs, image size, LR per group, seconds, valid accuracy and
    log-loss, checkpoint.
    """
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir()
    trainer = trainer or make_trainer(run_dir)
    datamodule.setup("fit")
    datamodule.set_data_config(model.data_config)
    return run_recipe(
        trainer,
        model,
        datamodule,
        as_stages(stages),
        run_dir,
        cache_dir=Path(cache_dir),
        lr_find_settings=lr_find_settings,
    )
