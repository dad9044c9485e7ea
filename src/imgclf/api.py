"""The Python API for notebooks and scripts: the CLI's building blocks with defaults.

    from imgclf import FolderDataModule, ImageClassifier, Stage, lr_find, fit_recipe

    data = FolderDataModule("data/digits", image_size=64, batch_size=32, num_workers=0)
    data.setup()
    model = ImageClassifier(num_classes=len(data.classes), class_names=data.classes)
    head = Stage("head", freeze_to=-1, epochs=2, lr=1e-2, precompute=True)
    lr_find(model, data, head).plot()
    fit_recipe(model, data, [head])

`imgclf train` runs the same `fit_recipe` with a Trainer built from the Hydra config.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from imgclf.callbacks import (
    ClipProbabilities,
    CollectPredictions,
    MetricsHistory,
    MisclassificationViews,
)
from imgclf.data import FolderDataModule
from imgclf.fit_recipe import fit_recipe as fit_stages
from imgclf.inference import input_size
from imgclf.lr_finder import LRFindResult
from imgclf.lr_finder import lr_find as range_test
from imgclf.precompute import feature_loaders, precompute_features
from imgclf.recipe import Stage, parse_recipe

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

    Always attached: CollectPredictions (needed by TTA, predict and interpret),
    ClipProbabilities(`clip`) (valid/logloss_clipped) and MetricsHistory (`.history` of
    every validation). With `run_dir`, also MisclassificationViews writing
    `run_dir/interpret/` after each validation. `quiet` silences Lightning's device banner
    and its warning about few DataLoader workers. Extra keyword arguments go to L.Trainer.
    """
    if quiet:
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    every = [CollectPredictions(), ClipProbabilities(clip), MetricsHistory()]
    if run_dir is not None:
        every.append(MisclassificationViews(Path(run_dir) / "interpret", k=views_k))
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


def lr_find(
    model,
    datamodule: FolderDataModule,
    stage: Stage | None = None,
    cache_dir: str | Path = DEFAULT_CACHE_DIR,
    device=None,
    **settings,
) -> LRFindResult:
    """fastai's `learn.lr_find()`: the LR range test for `stage` (default: the head only,
    frozen body), sweeping the stage's own per-group LR ratios (`lr_mult`).

    A precompute stage sweeps on the cached body features (computed into `cache_dir` if
    missing), a stage with `image_size` at that size. Weights, freezing and buffers are
    restored afterwards. `settings`: start_lr, end_lr, num_iter, beta, stop_factor,
    suggestion. Returns the result: `.suggestion`, `.method`, `.lrs`, `.losses`,
    `.group_lrs()` and `.plot()` (a Figure). device: default the GPU if there is one.
    """
    stage = stage or Stage(name="head", freeze_to=-1)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    datamodule.setup("fit")
    datamodule.set_data_config(model.data_config)
    device = torch.device(device)
    with input_size(datamodule, stage.image_size):
        model.set_stage(stage, lrs=[1.0] * len(model.groups))
        if stage.precompute:
            features = precompute_features(
                model, datamodule, stage.precompute_aug, cache_dir, device=device
            )
            loader, _ = feature_loaders(features, datamodule.batch_size, datamodule.seed)
        else:
            loader = datamodule.train_dataloader()
        return range_test(model, loader, stage, device=device, **settings)


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
    return fit_stages(
        trainer,
        model,
        datamodule,
        as_stages(stages),
        run_dir,
        cache_dir=Path(cache_dir),
        lr_find_cfg=lr_find_settings,
    )
