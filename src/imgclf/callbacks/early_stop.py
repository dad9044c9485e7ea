"""Early stopping per recipe stage, with Lightning's `EarlyStopping`.

Each recipe stage is its own `trainer.fit`; Lightning resets `trainer.should_stop` at every
fit, so a stage stopped early hands over to the next stage (the stage runner then counts
the epochs it really ran). The patience count and best score start afresh with each stage:
a new stage (new LRs, unfrozen layers) is judged against itself, not the stage before.
"""

from __future__ import annotations

from lightning.pytorch.callbacks import EarlyStopping

from imgclf.errors import UserError

# valid/fbeta: multi-label runs only (ChooseThreshold logs it).
MONITORS = {
    "valid/acc": "max",
    "valid/fbeta": "max",
    "valid/logloss": "min",
    "valid/logloss_clipped": "min",
}


def check_monitor(monitor: str) -> str:
    if monitor not in MONITORS:
        raise UserError(
            f"callbacks.default.early_stopping_monitor={monitor!r}: choose one of "
            f"{', '.join(MONITORS)}"
        )
    return monitor


class StageEarlyStopping(EarlyStopping):
    """`EarlyStopping` on `monitor` (valid/acc or valid/logloss) whose state restarts with
    every fit; `patience` validations without improvement of more than `min_delta`."""

    def __init__(self, monitor: str = "valid/logloss", patience: int = 3, min_delta: float = 0.0):
        check_monitor(monitor)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise UserError(
                f"callbacks.default.early_stopping_patience={patience!r}: must be a whole "
                "number >= 1 (null turns early stopping off)"
            )
        super().__init__(
            monitor=monitor, mode=MONITORS[monitor], patience=patience, min_delta=min_delta
        )

    def setup(self, trainer, pl_module, stage: str) -> None:
        # Before a resumed fit loads its checkpoint: the restored state then wins.
        if stage == "fit":
            fresh = StageEarlyStopping(self.monitor, self.patience, abs(self.min_delta))
            self.load_state_dict(fresh.state_dict())
        super().setup(trainer, pl_module, stage)
