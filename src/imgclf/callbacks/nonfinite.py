"""Stop a stage as soon as the training loss is NaN or infinite, before it spoils the weights."""

from __future__ import annotations

import lightning as L
import torch

from imgclf.errors import UserError


class NonFiniteLoss(UserError):
    """The training loss became NaN or infinite: the stage cannot go on."""


def non_finite_message(
    stage: str, step: int, loss: float, lrs: dict[str, float], last_checkpoint: str | None
) -> str:
    """The one-line explanation: where it happened, at which LRs, and what to do."""
    rates = ", ".join(f"{name} {lr:.2g}" for name, lr in lrs.items()) or "unknown"
    kept = f"; the last good checkpoint is {last_checkpoint}" if last_checkpoint else ""
    return (
        f"stage {stage!r} stopped: the training loss is {loss} at global step {step} "
        f"(learning rates: {rates}); try a lower learning rate (10x smaller, or lr: auto){kept}"
    )


class StopOnNonFiniteLoss(L.Callback):
    """Raise `NonFiniteLoss` (a one-line CLI error) when a training loss is not finite.

    It checks before the backward pass, so the bad step never reaches the weights and no
    checkpoint with NaN weights is written; checkpoints of earlier epochs stay as they are.
    """

    def on_before_backward(
        self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor
    ) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        # Under DDP every rank must stop together, or the others wait forever.
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        lrs = {
            group.get("name", str(i)): float(group["lr"])
            for optimizer in trainer.optimizers
            for i, group in enumerate(optimizer.param_groups)
        }
        checkpoint = trainer.checkpoint_callback
        last = getattr(checkpoint, "last_model_path", "") or None
        stage = getattr(getattr(pl_module, "plan", None), "name", "train")
        raise NonFiniteLoss(
            non_finite_message(stage, trainer.global_step, float(loss.detach()), lrs, last)
        )
