"""Catch a stage that diverges, put its weights back and go on at lower learning rates.

A stage diverges when its loss explodes: the training loss is NaN or infinite, the
training loss sits at chance level in a stage that started well below it (the weights
have lost what they knew), or the validation loss rises far above where the stage
started. The rules are pure functions (`train_divergence`, `valid_divergence`);
`DivergenceGuard` wires them to Lightning: it keeps the stage's start and best weights, and
on a divergence restores the best (or the start), multiplies every learning rate by
`lr_factor` (schedule included), clears the optimizer's moments (they hold the explosion)
and lets the stage go on. Each recovery is one console line and an entry of the stage's
summary record. A divergence after `max_recoveries` in one stage ends that stage on its
best weights (or its start); the next stage goes on from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import lightning as L
import torch

from imgclf.reporting.counting import epoch_number


@dataclass(frozen=True)
class DivergenceRules:
    # The validation loss diverged when above valid_rise x the stage's start and at least
    # valid_margin above it (a start near 0 must not make noise look like a divergence). An
    # order of magnitude: an unfrozen stage's valid loss can double for an epoch at its peak
    # LR while its accuracy climbs (glyphs: 2.2 -> 5.0 at 0.37 accuracy, then 0.87); cutting
    # the LRs there cost 9 points. A divergence goes far past that (12,361 from 0.5).
    valid_rise: float = 10.0
    valid_margin: float = 2.0
    # The training loss sits at chance when its running mean stays at chance_share x the
    # chance-level loss for chance_steps steps, in a stage that started below
    # start_share x chance (a head stage that starts at chance is not judged by it).
    chance_share: float = 0.95
    start_share: float = 0.7
    chance_steps: int = 20
    # What a recovery does to every learning rate, and how many one stage may use.
    lr_factor: float = 0.1
    max_recoveries: int = 3


def chance_loss(num_classes: int) -> float:
    """Cross-entropy of a uniform guess over `num_classes` classes: ln(num_classes)."""
    return math.log(max(2, int(num_classes)))


def train_divergence(
    loss: float,
    smoothed: float,
    steps_at_chance: int,
    start_loss: float | None,
    chance: float,
    rules: DivergenceRules,
) -> str | None:
    """Why the training loss says the stage diverged, or None. `smoothed`: its running
    mean; `steps_at_chance`: how many steps in a row that mean has been at chance level."""
    if not math.isfinite(loss):
        return f"the training loss is {loss}"
    started_below = start_loss is not None and start_loss < rules.start_share * chance
    if started_below and steps_at_chance >= rules.chance_steps:
        return (
            f"the training loss sat at chance level ({smoothed:.3g}, chance {chance:.3g}) for "
            f"{steps_at_chance} steps after the stage started at {start_loss:.3g}"
        )
    return None


def at_chance(smoothed: float, chance: float, rules: DivergenceRules) -> bool:
    return smoothed >= rules.chance_share * chance


def valid_divergence(valid_loss: float, start_loss: float, rules: DivergenceRules) -> str | None:
    """Why the validation loss says the stage diverged, or None."""
    if not math.isfinite(valid_loss):
        return f"the valid loss is {valid_loss}"
    if valid_loss > max(rules.valid_rise * start_loss, start_loss + rules.valid_margin):
        return f"the valid loss rose to {valid_loss:.4g} from {start_loss:.4g} at the stage's start"
    return None


def recovery_line(stage: str, entry: dict, rules: DivergenceRules) -> str:
    """The console line of one recovery (or of the stage's end after the last one)."""
    where = f"stage {stage!r} diverged at step {entry['step']} (epoch {entry['epoch']})"
    if entry.get("stopped_stage"):
        return (
            f"{where}: {entry['reason']}; {rules.max_recoveries} recoveries used, the stage "
            f"ends on {entry['restored']}"
        )
    return (
        f"{where}: {entry['reason']}; weights back to {entry['restored']}, learning rates "
        f"x{entry['lr_scale']:.3g} (recovery {entry['recovery']} of {rules.max_recoveries})"
    )


def metric_prefixes(module: torch.nn.Module) -> tuple[str, ...]:
    """The state-dict prefixes of the module's torchmetrics metrics."""
    from torchmetrics import Metric

    return tuple(f"{name}." for name, sub in module.named_modules() if isinstance(sub, Metric))


def _cpu_copy(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The weights and buffers to go back to, without the metrics' running state: putting
    back a stage's start must not also put back its empty epoch means (they then read
    0/0 = NaN as the epoch's training loss, though every step's loss was finite)."""
    skip = metric_prefixes(module)
    state = module.state_dict()
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items() if not k.startswith(skip)}


def restore_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """Load a `_cpu_copy`: every weight and buffer; the metrics keep their state."""
    missing, unexpected = module.load_state_dict(weights, strict=False)
    skip = metric_prefixes(module)
    if unexpected or any(not key.startswith(skip) for key in missing):
        raise RuntimeError(f"restoring weights: missing {missing}, unexpected {unexpected}")


def scale_learning_rates(trainer: L.Trainer, factor: float) -> None:
    """Every param group's LR times `factor`, for the rest of the fit: the schedules'
    base LRs too (they set each step's LR from them), and fresh optimizer moments."""
    for config in trainer.lr_scheduler_configs:
        scheduler = config.scheduler
        scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
    for optimizer in trainer.optimizers:
        for group in optimizer.param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor
        optimizer.state.clear()


class DivergenceGuard(L.Callback):
    """Watch every training step and validation of each stage (each `trainer.fit`) for a
    divergence (`DivergenceRules`), and recover from it; `stage_recoveries` lists what it
    did in the current stage, for the stage's summary record."""

    def __init__(self, rules: DivergenceRules | None = None, beta: float = 0.9) -> None:
        self.rules = rules or DivergenceRules()
        self.beta = beta
        self.last_valid_loss: float | None = None  # the run's latest validation loss
        self.stage_start_loss: float | None = None
        self.stage_recoveries: list[dict] = []
        self._reset_stage_state()

    @staticmethod
    def find(trainer: L.Trainer) -> DivergenceGuard | None:
        return next((c for c in trainer.callbacks if isinstance(c, DivergenceGuard)), None)

    @property
    def stopped_stage(self) -> bool:
        """Whether the current stage ended because it diverged once more than allowed."""
        return bool(self.stage_recoveries) and bool(self.stage_recoveries[-1].get("stopped_stage"))

    def _reset_stage_state(self) -> None:
        self._mean, self._weight, self._steps_at_chance = 0.0, 0.0, 0
        self._start_weights: dict | None = None
        self._best: tuple[float, int, dict] | None = None  # (valid acc, epoch, weights)

    def begin_stage(self) -> None:
        """A new stage: no recoveries yet, judged against the run's latest validation loss
        (None before the first: the first validation becomes the yardstick). Not called for
        a resumed stage, whose state comes back from the checkpoint."""
        self.stage_recoveries = []
        self.stage_start_loss = self.last_valid_loss

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """A fit begins: the weights to go back to before any validation of it."""
        self._reset_stage_state()
        self._start_weights = _cpu_copy(pl_module)

    def _chance(self, pl_module: L.LightningModule) -> float:
        # Multi-label BCE has no single chance level (it depends on how often each tag
        # appears): the rule is off there, the other two still hold.
        if getattr(getattr(pl_module, "task", None), "name", "single") == "multi":
            return math.inf
        return chance_loss(pl_module.hparams.get("num_classes", 2))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach())
        chance = self._chance(pl_module)
        if math.isfinite(value):
            self._weight = self.beta * self._weight + (1 - self.beta)
            self._mean = self.beta * self._mean + (1 - self.beta) * value
            smoothed = self._mean / self._weight
            at = at_chance(smoothed, chance, self.rules)
            self._steps_at_chance = self._steps_at_chance + 1 if at else 0
        else:
            smoothed = value
        reason = train_divergence(
            value, smoothed, self._steps_at_chance, self.stage_start_loss, chance, self.rules
        )
        # Under DDP every rank must take the same decision, or the others wait forever.
        if trainer.strategy.reduce_boolean_decision(reason is not None, all=False):
            self._recover(trainer, pl_module, reason or "another process diverged")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or "valid/logloss" not in trainer.callback_metrics:
            return
        valid_loss = float(trainer.callback_metrics["valid/logloss"])
        start = self.stage_start_loss
        reason = valid_divergence(valid_loss, start, self.rules) if start is not None else None
        if reason is None and not math.isfinite(valid_loss):
            reason = f"the valid loss is {valid_loss}"
        if reason is not None:
            self._recover(trainer, pl_module, reason)
            return
        self.last_valid_loss = valid_loss
        if self.stage_start_loss is None:  # the run's first validation: the stage's yardstick
            self.stage_start_loss = valid_loss
        accuracy = float(trainer.callback_metrics.get("valid/acc", -valid_loss))
        if self._best is None or accuracy > self._best[0]:
            self._best = (accuracy, epoch_number(trainer.current_epoch), _cpu_copy(pl_module))

    def _recover(self, trainer: L.Trainer, pl_module: L.LightningModule, reason: str) -> None:
        stage = getattr(getattr(pl_module, "plan", None), "name", "train")
        if self._best is not None:
            weights, restored = self._best[2], f"the stage's best (epoch {self._best[1]})"
        else:
            weights, restored = self._start_weights, "the stage's start"
        used = len(self.stage_recoveries)
        entry = {
            "step": int(trainer.global_step),
            "epoch": epoch_number(trainer.current_epoch),
            "reason": reason,
            "restored": restored,
        }
        if used >= self.rules.max_recoveries:
            entry["stopped_stage"] = True
            trainer.should_stop = True
        else:
            entry.update(recovery=used + 1, lr_scale=self.rules.lr_factor ** (used + 1))
            scale_learning_rates(trainer, self.rules.lr_factor)
        if weights is not None:
            restore_weights(pl_module, weights)
        self.stage_recoveries.append(entry)
        self._mean, self._weight, self._steps_at_chance = 0.0, 0.0, 0
        if trainer.is_global_zero:
            print(recovery_line(stage, entry, self.rules), flush=True)

    def state_dict(self) -> dict:
        return {
            "last_valid_loss": self.last_valid_loss,
            "stage_start_loss": self.stage_start_loss,
            "stage_recoveries": list(self.stage_recoveries),
        }

    def load_state_dict(self, state_dict: dict) -> None:
        self.last_valid_loss = state_dict.get("last_valid_loss")
        self.stage_start_loss = state_dict.get("stage_start_loss")
        self.stage_recoveries = list(state_dict.get("stage_recoveries", []))
