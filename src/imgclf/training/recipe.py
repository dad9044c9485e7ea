"""Training recipes: a list of stages (freeze, learning rates, schedule, size) run in order.

A stage in config, e.g. the course's "train the head, then unfreeze with SGDR":

    - {name: head, freeze_to: -1, epochs: 1, lr: auto, precompute: true}
    - {name: finetune, freeze_to: 0, lr: auto, lr_mult: 100, schedule: sgdr,
       n_cycles: 3, cycle_len: 1, cycle_mult: 2, image_size: 128}
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from imgclf.errors import UserError
from imgclf.model.groups import spread_lrs
from imgclf.model.plan import NORM_STATS, StagePlan
from imgclf.model.schedules import SCHEDULES, Schedule, sgdr_epochs
from imgclf.training.lr_suggest import SUGGESTIONS


@dataclass
class Stage:
    name: str
    # Number of epochs; for sgdr it defaults to the sum of the cycles' lengths.
    epochs: int | None = None
    # Train layer groups freeze_to.. only: 0 trains everything, -1 only the head.
    freeze_to: int = 0
    # Keep norm layers of frozen groups trainable (fastai v2's default).
    train_bn: bool = True
    # The body's norm statistics: "train" (batch statistics, running averages updated),
    # "frozen" (the running averages as they are, as in eval mode) or "adapt" (re-estimated
    # on the stage's training images before it starts, then frozen; see norm_adapt.py).
    norm_stats: str = "train"
    # A number (every group), a list (one per group), or "auto" (run the LR finder).
    lr: float | str | list[float] = 1e-3
    # With a number: spread geometrically from lr/lr_mult (first group) to lr (head).
    lr_mult: float | None = None
    schedule: str = "one_cycle"
    pct_start: float = 0.25
    # one_cycle starts at lr/div (fastai: 25; fine_tune's unfrozen stage: 5).
    div: float = 25.0
    n_cycles: int = 1
    cycle_len: float = 1.0
    cycle_mult: float = 1.0
    # Progressive resizing: this stage's input size (null: the data's size).
    image_size: int | None = None
    # Train the head on cached body features (body frozen), with K augmented views.
    precompute: bool = False
    precompute_aug: int = 0
    # LR finder suggestion used when lr is auto.
    suggestion: str = "valley"

    @property
    def num_epochs(self) -> int:
        if self.epochs is not None:
            return int(self.epochs)
        if self.schedule == "sgdr":
            return math.ceil(sgdr_epochs(self.n_cycles, self.cycle_len, self.cycle_mult))
        return 1

    def group_lrs(self, n_groups: int) -> list[float]:
        """The stage's own LRs per group (`lr` a number or list; not for `lr: auto`)."""
        return spread_lrs(self.lr, n_groups, self.lr_mult)

    def lr_ratios(self, n_groups: int) -> list[float]:
        """Each group's LR relative to the last group's (the head), as `lr_mult` spreads them."""
        return spread_lrs(1.0, n_groups, self.lr_mult)

    def plan(self, lrs, image_size: int | None) -> StagePlan:
        """This stage resolved: its learning rates and input size decided."""
        schedule = Schedule(
            self.schedule,
            self.num_epochs,
            self.cycle_len,
            self.cycle_mult,
            self.pct_start,
            self.div,
        )
        return StagePlan(
            name=self.name,
            lrs=tuple(float(lr) for lr in lrs),
            freeze_to=self.freeze_to,
            train_bn=self.train_bn,
            norm_stats=self.norm_stats,
            on_features=self.precompute,
            schedule=schedule,
            image_size=image_size,
        )


STAGE_KEYS = tuple(f.name for f in dataclasses.fields(Stage))


def _check_lr(stage: str, lr) -> None:
    if isinstance(lr, str):
        if lr != "auto":
            raise UserError(f"stage {stage!r}: lr must be a number, a list or auto, got {lr!r}")
        return
    values = list(lr) if isinstance(lr, Sequence) else [lr]
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise UserError(
                f"stage {stage!r}: learning rates must be positive numbers, got {value!r}"
            )


def parse_stage(entry: Mapping, index: int) -> Stage:
    """A config mapping -> Stage, with one-line errors for unknown keys and bad values."""
    entry = dict(entry)
    name = str(entry.get("name", f"stage{index}"))
    unknown = sorted(set(entry) - set(STAGE_KEYS))
    if unknown:
        raise UserError(
            f"stage {name!r}: unknown key(s) {', '.join(unknown)}; known: {', '.join(STAGE_KEYS)}"
        )
    entry["name"] = name
    if isinstance(entry.get("lr"), Sequence) and not isinstance(entry.get("lr"), str):
        entry["lr"] = [float(x) if isinstance(x, (int, float)) else x for x in entry["lr"]]
    stage = Stage(**entry)
    _check_lr(name, stage.lr)
    if stage.schedule not in SCHEDULES:
        raise UserError(
            f"stage {name!r}: unknown schedule {stage.schedule!r}; choose {', '.join(SCHEDULES)}"
        )
    if stage.suggestion not in SUGGESTIONS:
        raise UserError(
            f"stage {name!r}: unknown suggestion {stage.suggestion!r}; choose {', '.join(SUGGESTIONS)}"
        )
    if stage.norm_stats not in NORM_STATS:
        raise UserError(
            f"stage {name!r}: unknown norm_stats {stage.norm_stats!r}; choose {', '.join(NORM_STATS)}"
        )
    if stage.num_epochs < 1:
        raise UserError(f"stage {name!r}: needs at least one epoch")
    if stage.lr_mult is not None and not stage.lr_mult > 0:
        raise UserError(f"stage {name!r}: lr_mult must be positive, got {stage.lr_mult}")
    if stage.precompute_aug and not stage.precompute:
        raise UserError(f"stage {name!r}: precompute_aug needs precompute: true")
    return stage


def parse_recipe(stages: Sequence[Mapping]) -> list[Stage]:
    if not stages:
        raise UserError("the recipe has no stages")
    parsed = [parse_stage(entry, i) for i, entry in enumerate(stages)]
    names = [s.name for s in parsed]
    if len(set(names)) != len(names):
        raise UserError(f"stage names must be unique, got {names}")
    return parsed
