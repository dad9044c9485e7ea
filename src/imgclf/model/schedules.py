"""Learning-rate schedules evaluated per optimizer step, as multipliers of each group's LR.

Every schedule returns a factor that scales all param groups alike, so the LR ratios between
layer groups (discriminative learning rates) stay constant for the whole fit.

- sgdr: fastai 0.7's `fit(lr, n_cycle, cycle_len, cycle_mult)`, cosine annealing with warm
  restarts (Loshchilov & Hutter), each cycle `cycle_mult` times longer than the one before.
- one_cycle: fastai v2's `fit_one_cycle`, a cosine warm-up from lr_max/div to lr_max over the
  first `pct_start` of the steps, then a cosine anneal down to lr_max/final_div (fastai's
  `div_final`: relative to lr_max, not to the starting LR).
- constant: the LR as given.

Why not torch's own: `OneCycleLR` ends at lr_max/(div*final_div) where fastai ends at
lr_max/final_div, and `CosineAnnealingWarmRestarts` takes whole-step cycle lengths where a
recipe gives cycles in (possibly fractional) epochs; both are a few lines here as pure
functions that the tests check point by point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch
from torch.optim.lr_scheduler import LambdaLR

SCHEDULES = ("sgdr", "one_cycle", "constant")


def sgdr_epochs(n_cycles: int, cycle_len: float, cycle_mult: float) -> float:
    """Total epochs of `n_cycles` SGDR cycles: cycle_len * (1 + mult + mult^2 + ...)."""
    if n_cycles < 1 or cycle_len <= 0 or cycle_mult <= 0:
        raise ValueError(
            f"sgdr needs n_cycles >= 1, cycle_len > 0 and cycle_mult > 0, "
            f"got {n_cycles}, {cycle_len}, {cycle_mult}"
        )
    return cycle_len * sum(cycle_mult**c for c in range(n_cycles))


def _cosine(t: float, span: float) -> float:
    """0.5 * (1 + cos(pi * t / span)): 1 at t=0, 0 at t=span."""
    return 0.5 * (1.0 + math.cos(math.pi * t / span))


def sgdr_factor(step: int, steps_per_epoch: int, cycle_len: float, cycle_mult: float) -> float:
    """SGDR multiplier in [0, 1]: cosine from 1 towards 0 within each cycle, back to 1 at restarts.

    Cycle c lasts round(cycle_len * cycle_mult**c * steps_per_epoch) steps (at least 1). Steps
    past the last planned cycle simply start further cycles, so a fit rounded up to whole
    epochs never fails.
    """
    if steps_per_epoch < 1 or cycle_len <= 0 or cycle_mult <= 0:
        raise ValueError(
            f"sgdr needs steps_per_epoch >= 1, cycle_len > 0 and cycle_mult > 0, "
            f"got {steps_per_epoch}, {cycle_len}, {cycle_mult}"
        )
    step = max(0, step)
    start, cycle = 0, 0
    while True:
        span = max(1, round(cycle_len * cycle_mult**cycle * steps_per_epoch))
        if step < start + span:
            return _cosine(step - start, span)
        if span == 1 or cycle_mult == 1:
            # Every later cycle has this same length: jump instead of looping over them.
            return _cosine((step - start) % span, span)
        start += span
        cycle += 1


def _cos_interp(start: float, end: float, pct: float) -> float:
    """Cosine interpolation from `start` (pct=0) to `end` (pct=1), fastai's SchedCos."""
    return start + (end - start) * (1.0 - math.cos(math.pi * pct)) / 2.0


def _one_cycle_phase(step: int, total_steps: int, pct_start: float) -> tuple[bool, float]:
    """(in warm-up?, position within the phase in [0, 1]) for a one-cycle step."""
    if total_steps < 1 or not 0.0 <= pct_start <= 1.0:
        raise ValueError(
            f"one_cycle needs total_steps >= 1 and 0 <= pct_start <= 1, "
            f"got {total_steps}, {pct_start}"
        )
    # step / (total - 1): the first and last steps hit the end values exactly; clamped so an
    # extra scheduler step at the end of a fit stays at the final value.
    pos = min(1.0, max(0.0, step / max(1, total_steps - 1)))
    if pct_start >= 1.0 or pos < pct_start:
        return True, pos / pct_start if pct_start > 0 else 1.0
    return False, (pos - pct_start) / (1.0 - pct_start)


def one_cycle_factor(
    step: int,
    total_steps: int,
    pct_start: float = 0.25,
    div: float = 25.0,
    final_div: float = 1e5,
) -> float:
    """fit_one_cycle multiplier: 1/div -> 1 (cosine, first pct_start), then 1 -> 1/final_div.

    As in fastai v2 (`combined_cos(pct_start, lr_max/div, lr_max, lr_max/div_final)`), the
    final LR is lr_max/final_div, not lr_max/(div*final_div).
    """
    if div <= 0 or final_div <= 0:
        raise ValueError(f"one_cycle needs div > 0 and final_div > 0, got {div}, {final_div}")
    warming, pct = _one_cycle_phase(step, total_steps, pct_start)
    if warming:
        return _cos_interp(1.0 / div, 1.0, pct)
    return _cos_interp(1.0, 1.0 / final_div, pct)


def constant_factor(step: int) -> float:
    """Constant multiplier 1.0."""
    return 1.0


@dataclass(frozen=True)
class Schedule:
    """One stage's LR schedule: `kind` (sgdr, one_cycle, constant) and its settings.

    `factor(steps_per_epoch)` gives the per-step multiplier that `build_scheduler` applies.
    """

    kind: str
    epochs: int
    # sgdr: cycle lengths in epochs, the first cycle_len, each next one cycle_mult longer.
    cycle_len: float = 1.0
    cycle_mult: float = 1.0
    # one_cycle: warm-up share of the steps, and the starting LR as lr / div.
    pct_start: float = 0.25
    div: float = 25.0

    def factor(self, steps_per_epoch: int) -> Callable[[int], float]:
        if self.kind == "sgdr":
            return partial(
                sgdr_factor,
                steps_per_epoch=steps_per_epoch,
                cycle_len=self.cycle_len,
                cycle_mult=self.cycle_mult,
            )
        if self.kind == "one_cycle":
            total = steps_per_epoch * self.epochs
            return partial(
                one_cycle_factor, total_steps=total, pct_start=self.pct_start, div=self.div
            )
        if self.kind == "constant":
            return constant_factor
        raise ValueError(f"unknown schedule {self.kind!r}; choose one of {', '.join(SCHEDULES)}")


def build_scheduler(optimizer: torch.optim.Optimizer, factor: Callable[[int], float]) -> LambdaLR:
    """A LambdaLR applying `factor` to every param group: group LR = its base LR * factor(k).

    After k calls of scheduler.step() the LR is base * factor(k), so it must be stepped once
    per optimizer step (Lightning: `"interval": "step"`).
    """
    return LambdaLR(optimizer, factor)
