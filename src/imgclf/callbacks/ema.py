"""An exponential moving average (EMA) of the weights, with Lightning's `WeightAveraging`.

Lightning's callback keeps a `torch.optim.swa_utils.AveragedModel` beside the model,
updates it after every optimizer step, swaps it in for each validation (so `valid/*`,
best.ckpt's choice and the misclassification views are the EMA's) and puts its weights in
every checkpoint's `state_dict` (the raw ones under `current_model_state`, which a resumed
run trains on). evaluate, predict and export read `state_dict`: the EMA weights.

With our recipe (each stage its own `trainer.fit` on the same Trainer) the callback's
`setup` starts a new average at every stage, from the weights the stage begins with; at a
stage's end the EMA weights become the model's, so the next stage starts from them.

Why not `EMAWeightAveraging` itself: its fixed decay (0.999) averages over about a thousand
steps, and a stage on a small folder has tens (120 images at batch 64: one step an epoch),
so its average would stay near the stage's first weights. Here the decay warms up as in
TensorFlow's and timm's EMA, min(decay, (1 + n) / (10 + n)) after n updates.
"""

from __future__ import annotations

from functools import partial

import torch
from lightning.pytorch.callbacks import WeightAveraging

from imgclf.errors import UserError


def ema_step(
    averaged: torch.Tensor, current: torch.Tensor, num_averaged: torch.Tensor, decay: float
) -> torch.Tensor:
    """The new average after `num_averaged` earlier updates, with the warmed-up decay.
    Integer buffers (BatchNorm's batch counter) take the current value."""
    if not averaged.is_floating_point():
        return current
    n = float(num_averaged)
    rate = min(decay, (1.0 + n) / (10.0 + n))
    return rate * averaged + (1.0 - rate) * current


class EMAWeights(WeightAveraging):
    """Lightning's `WeightAveraging` with an EMA of `decay` (warmed up, see the module doc);
    buffers (norm statistics) are averaged too."""

    def __init__(self, decay: float = 0.998) -> None:
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0 < decay < 1:
            raise UserError(f"callbacks.default.ema_decay={decay!r}: must be between 0 and 1")
        super().__init__(use_buffers=True, avg_fn=partial(ema_step, decay=float(decay)))
        self.decay = float(decay)
