"""The default callbacks, defined once: `imgclf train` (configs/callbacks/default.yaml calls
this function) and the Python API's `make_trainer` both build their list here."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor

from imgclf.callbacks.clip import ClipProbabilities
from imgclf.callbacks.console import CompactModelSummary, EpochProgressBar, EpochSummary
from imgclf.callbacks.early_stop import StageEarlyStopping, check_monitor
from imgclf.callbacks.ema import EMAWeights
from imgclf.callbacks.interrupt import SaveOnInterrupt
from imgclf.callbacks.resume_state import ResumeState
from imgclf.callbacks.step_checkpoint import BestAndLastCheckpoint, StepCheckpoint
from imgclf.callbacks.threshold import ChooseThreshold
from imgclf.callbacks.views import MisclassificationViews
from imgclf.evaluation.collect import CollectPredictions
from imgclf.training.divergence import DivergenceGuard
from imgclf.training.progress import RecipeProgress


def checkpoint_callbacks(checkpoints: Path, every_n_train_steps: int) -> list[L.Callback]:
    """best.ckpt by valid/acc, last.ckpt at every epoch end and every N steps, interrupted.ckpt
    on Ctrl-C, and the RNG states an exact resume needs."""
    best_and_last = BestAndLastCheckpoint(
        dirpath=checkpoints,
        filename="best",
        monitor="valid/acc",
        mode="max",
        save_top_k=1,
        save_last=True,
        auto_insert_metric_name=False,
        # Overwrite best.ckpt/last.ckpt in place (atomically) instead of adding -v1 copies;
        # the step checkpoint writes last.ckpt too.
        enable_version_counter=False,
    )
    return [
        best_and_last,
        StepCheckpoint(checkpoints, every_n_train_steps=every_n_train_steps),
        SaveOnInterrupt(checkpoints),
        ResumeState(),
    ]


def console_callbacks() -> list[L.Callback]:
    """The LR monitor, Rich progress bar, model summary and one line per epoch."""
    return [
        LearningRateMonitor(logging_interval="step"),
        EpochProgressBar(),
        CompactModelSummary(max_depth=1),
        EpochSummary(),
    ]


def prediction_callbacks(clip, per_class_thresholds: bool) -> list[L.Callback]:
    """The validation predictions gathered once, and what reads them: the clipped log-loss
    and, for multi-label models only, the thresholds (one for all tags, or per class)."""
    return [CollectPredictions(), ClipProbabilities(clip), ChooseThreshold(per_class_thresholds)]


def default_callbacks(
    run_dir: str | Path | None = None,
    clip="auto",
    views_k: int = 12,
    views_every_n_epochs: int = 0,
    step_checkpoint_every: int = 200,
    console: bool = True,
    checkpoints: bool = True,
    seed: int = 0,
    ema_decay: float | None = None,
    early_stopping_patience: int | None = None,
    early_stopping_monitor: str = "valid/logloss",
    early_stopping_min_delta: float = 0.0,
    per_class_thresholds: bool = False,
) -> list[L.Callback]:
    """Every callback a recipe run uses, in the order they must run.

    Always: CollectPredictions (gathers validation probabilities once for the next two),
    ClipProbabilities(`clip`) (valid/logloss_clipped), DivergenceGuard (a stage whose loss
    explodes goes back to its best weights at lower LRs, before any checkpoint is written) and
    RecipeProgress (stage, LRs and metrics history, for summary.json and resume). With
    `run_dir`: MisclassificationViews writing `run_dir/interpret/` after each validation,
    and (with `checkpoints`) best/last/step/interrupt checkpoints in `run_dir/checkpoints`.
    `console`: the LR monitor, Rich progress bar, model summary and one line per epoch.
    `ema_decay`: an EMA of the weights (EMAWeights), validated, checkpointed and handed
    over instead of the raw weights; `early_stopping_patience`: stop a stage after that
    many validations without improvement of `early_stopping_monitor` (StageEarlyStopping).
    """
    check_monitor(early_stopping_monitor)  # a typo is an error even while it is off
    callbacks: list[L.Callback] = []
    # First: it swaps the EMA weights in before any other callback sees a validation.
    if ema_decay is not None:
        callbacks.append(EMAWeights(ema_decay))
    if console:
        callbacks += console_callbacks()
    callbacks += prediction_callbacks(clip, per_class_thresholds)
    if run_dir is not None:
        interpret_dir = Path(run_dir) / "interpret"
        callbacks.append(MisclassificationViews(interpret_dir, views_k, views_every_n_epochs, seed))
    callbacks.append(DivergenceGuard())
    if early_stopping_patience is not None:
        callbacks.append(
            StageEarlyStopping(
                early_stopping_monitor, early_stopping_patience, early_stopping_min_delta
            )
        )
    if run_dir is not None and checkpoints:
        callbacks += checkpoint_callbacks(Path(run_dir) / "checkpoints", step_checkpoint_every)
    # Last: it records each validation's metrics after the callbacks above have logged theirs.
    callbacks.append(RecipeProgress())
    return callbacks
