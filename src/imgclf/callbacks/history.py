"""Keep every validation epoch's metrics, so the summary can report the best epoch's numbers."""

from __future__ import annotations

import lightning as L


class MetricsHistory(L.Callback):
    """Records `valid/*` metrics (and the epoch) after each real validation run."""

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        record = {"epoch": trainer.current_epoch, "step": trainer.global_step}
        for name, value in trainer.callback_metrics.items():
            if name.startswith("valid/"):
                record[name] = float(value)
        self.history.append(record)

    def state_dict(self) -> dict:
        return {"history": self.history}

    def load_state_dict(self, state_dict: dict) -> None:
        self.history = list(state_dict.get("history", []))
