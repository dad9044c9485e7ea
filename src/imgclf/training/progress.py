"""RecipeProgress: where a recipe run stands, kept in every checkpoint for `resume=`.

The stage runner tells it when a stage starts (its 1-based index, learning rates and the
summary record begun for it) and when it ends; after every validation it keeps the epoch's
metrics. Lightning saves its `state_dict` in each checkpoint, so a resumed run knows which
stages are done, the running stage's learning rates (its LR finder is not run again) and
the whole metrics history.

The history's epochs and steps are counted from 1, as people read them everywhere
(`imgclf.reporting.counting`): epoch n's record holds the metrics after n epochs and its
`step`, the optimizer steps done.
"""

from __future__ import annotations

import copy
import math

import lightning as L

from imgclf.errors import required_callback
from imgclf.reporting.counting import epoch_number


class RecipeProgress(L.Callback):
    def __init__(self) -> None:
        self.stage_index = 0  # 1-based index of the running stage; 0 before the first
        self.stages_total = 0  # how many stages the recipe has; 0 before the first begins
        self.stages_done = 0  # how many stages have finished (their last epoch validated)
        self.stage_lrs: list[float] | None = None
        self.records: list[dict] = []  # one summary record per stage begun
        # Every epoch's valid/* metrics, its mean train loss and accuracy, and its stage.
        self.history: list[dict[str, float]] = []

    @staticmethod
    def of(trainer: L.Trainer) -> RecipeProgress:
        """The Trainer's RecipeProgress, or a one-line error naming it."""
        return required_callback(trainer, RecipeProgress, "fitting a recipe")

    def start_stage(
        self, index: int, total: int, lrs: list[float], record: dict, done: list[dict]
    ) -> None:
        """Stage `index` of `total` begins with `lrs`; `done` are the records of the stages
        before it."""
        self.stage_index = index
        self.stages_total = total
        self.stage_lrs = [float(lr) for lr in lrs]
        self.records = [*done, record]

    def finish_stage(self, index: int) -> None:
        """Stage `index` has done all its epochs."""
        self.stages_done = index

    @property
    def in_last_stage(self) -> bool:
        """Whether the running stage is the recipe's last (true outside a recipe too)."""
        return self.stage_index >= self.stages_total

    @property
    def last_metrics(self) -> dict[str, float]:
        return self.history[-1] if self.history else {}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        record = {"epoch": epoch_number(trainer.current_epoch), "step": trainer.global_step}
        if self.records:
            record["stage"] = self.records[-1].get("name")
        for name, value in trainer.callback_metrics.items():
            if name.startswith("valid/"):
                record[name] = float(value)
        self.history.append(record)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The epoch's train metrics join its validation record (validation runs first)."""
        if not self.history or self.history[-1].get("epoch") != epoch_number(trainer.current_epoch):
            return
        for name in ("train/loss_epoch", "train/acc"):
            if name in trainer.callback_metrics:
                self.history[-1][name] = float(trainer.callback_metrics[name])

    def state_dict(self) -> dict:
        return {
            "stage_index": self.stage_index,
            "stages_done": self.stages_done,
            "stage_lrs": self.stage_lrs,
            "records": copy.deepcopy(self.records),
            "history": self.history,
            "epochs_from": 1,
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.stage_index = int(state_dict.get("stage_index", 0))
        self.stages_done = int(state_dict.get("stages_done", 0))
        self.stage_lrs = state_dict.get("stage_lrs")
        self.records = list(state_dict.get("records", []))
        self.history = list(state_dict.get("history", []))
        if state_dict.get("epochs_from", 0) != 1:  # an older checkpoint counted from 0
            self.history = [
                {**h, "epoch": h["epoch"] + 1} if "epoch" in h else h for h in self.history
            ]


# Among validations of equal `monitor`, best.ckpt keeps the one with the lowest of this.
TIE_BREAK = "valid/logloss"


def validation_rank(record: dict[str, float], monitor: str) -> tuple[float, float]:
    """How a validation ranks for best.ckpt: by `monitor` (higher is better), then by the
    lower valid log-loss (a missing or NaN loss ranks last).

    On a few hundred validation images accuracy ties often (an easy set sits at 1.000 for
    many epochs), and the first of the tied epochs is rarely the best calibrated one:
    fastai keeps the lowest valid loss, and a Kaggle log-loss is scored on calibration."""
    loss = record.get(TIE_BREAK, math.nan)
    return record[monitor], -math.inf if math.isnan(loss) else -loss


def best_record(history: list[dict[str, float]], monitor: str = "valid/acc") -> dict[str, float]:
    """The validation record best.ckpt holds: the highest `monitor`, on ties the lowest
    valid log-loss, then the first (`validation_rank`); {} if none."""
    scored = [h for h in history if monitor in h and not math.isnan(h[monitor])]
    return max(scored, key=lambda h: validation_rank(h, monitor)) if scored else {}


def stage_of_epoch(epoch: int, stage_records: list[dict]) -> dict:
    """The stage record epoch number `epoch` (from 1, counted on across stages) belongs to;
    {} if none."""
    end = 0
    for record in stage_records:
        end += int(record.get("epochs") or 0)
        if epoch <= end:
            return record
    return {}


def best_weights(
    history: list[dict[str, float]], stage_records: list[dict], monitor: str = "valid/acc"
) -> dict:
    """Where the best validated weights (what best.ckpt holds) come from: stage, epoch,
    the image size they were trained at (the input size evaluate, predict and export use)
    and score. Ranked as BestAndLastCheckpoint ranks them (`best_record`). {} without
    validations."""
    best = best_record(history, monitor)
    if not best:
        return {}
    stage = stage_of_epoch(int(best["epoch"]), stage_records)
    return {
        "stage": stage.get("name"),
        "epoch": int(best["epoch"]),
        "image_size": stage.get("image_size"),
        monitor: best[monitor],
    }


def stage_regression(records: list[dict], key: str = "valid_acc") -> str | None:
    """A warning when the last stage ended below the best end of the stages before it.

    A later stage of a recipe should build on the earlier ones; when it ends worse (the LR
    too high or too low, restarts, overfitting), the run must say so rather than hand over
    its last weights silently. None when it did not, or when the scores are missing.
    """
    if len(records) < 2 or records[-1].get(key) is None:
        return None
    earlier = [r for r in records[:-1] if r.get(key) is not None]
    if not earlier:
        return None
    best = max(earlier, key=lambda r: r[key])
    last = records[-1]
    if last[key] >= best[key]:
        return None
    return (
        f"stage {last['name']!r} ended at {key} {last[key]:.4f}, below the {best[key]:.4f} "
        f"that stage {best['name']!r} ended at; best.ckpt keeps the best validated weights"
    )
