"""What the console shows while a run trains: one line per epoch (the stage, the epoch,
its mean train loss and the validation metrics, and how long it took), the progress bar
(epochs counted from 1 like the lines) and a one-line model summary."""

from __future__ import annotations

import time

import lightning as L
from lightning.pytorch.callbacks import ModelSummary, RichProgressBar
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from imgclf.reporting.counting import epoch_number

# (metric, label) in the order printed.
EPOCH_METRICS = (
    ("train/loss_epoch", "train loss"),
    ("valid/logloss", "valid loss"),
    ("valid/logloss_clipped", "clipped"),
    ("valid/acc", "valid acc"),
    ("valid/fbeta", "valid F2"),
)


def epoch_line(stage: str, epoch: int, epochs: int | None, metrics: dict, seconds: float) -> str:
    """`epoch 2/5 (unfrozen): train loss 0.412, valid loss 0.351, ..., 3.2 s`."""
    shown = [f"{label} {float(metrics[key]):.4f}" for key, label in EPOCH_METRICS if key in metrics]
    of = f"/{epochs}" if epochs else ""
    return f"epoch {epoch}{of} ({stage}): {', '.join(shown)}; {seconds:.1f} s"


class EpochSummary(L.Callback):
    """Prints `epoch_line` at the end of every training epoch (rank 0 only)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        seconds = time.perf_counter() - self.started
        stage = getattr(getattr(pl_module, "plan", None), "name", "train")
        metrics = {k: v for k, v in trainer.callback_metrics.items()}
        epoch = epoch_number(trainer.current_epoch)
        print(epoch_line(stage, epoch, trainer.max_epochs, metrics, seconds), flush=True)


def bar_description(epoch: int, epochs: int | None, width: int = 0) -> str:
    """The progress bar's `Epoch 3/15`, padded to `width` (the validation bar's label)."""
    text = f"Epoch {epoch}" + (f"/{epochs}" if epochs else "")
    return f"{text:{width}}"


class EpochProgressBar(RichProgressBar):
    """Lightning's Rich progress bar, its epochs counted from 1 as the epoch lines count
    them (Lightning's own says `Epoch 0/14` for the first of fifteen). Lightning has no
    public setting for the label, so this overrides the method that makes it; the trained
    run in tests/test_train_cli.py checks what the bar prints."""

    def _get_train_description(self, current_epoch: int) -> str:
        epochs = self.trainer.max_epochs if self.trainer.max_epochs not in (None, -1) else None
        width = len(self.validation_description)
        return bar_description(epoch_number(current_epoch), epochs, width)

    def get_metrics(self, trainer, pl_module) -> dict:
        """Only the running train loss (`loss`). The epoch lines give the validation
        metrics; Lightning's default (the logger's `v_num` and every logged metric) made
        the bar's last frame wrap over five lines on an 80-column console."""
        return bar_metrics(super().get_metrics(trainer, pl_module))


def bar_metrics(metrics: dict) -> dict:
    """What the bar shows of Lightning's progress-bar metrics: the running train loss."""
    return {"loss": metrics["train/loss"]} if "train/loss" in metrics else {}


class CompactModelSummary(ModelSummary):
    """One line at the start of every fit: parameters, how many train in this stage, size.
    (Lightning's table lists FLOPs that it cannot count here, and module modes.)"""

    @staticmethod
    def summarize(
        summary_data,
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict,
        total_flops: int = 0,
        **summarize_kwargs,
    ) -> None:
        print(
            f"model: {get_human_readable_count(int(total_parameters))} parameters, "
            f"{get_human_readable_count(int(trainable_parameters))} trainable, "
            f"{model_size:.1f} MB",
            flush=True,
        )
