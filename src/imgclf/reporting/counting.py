"""How a run counts its epochs and steps wherever a person reads them: from 1.

Epoch n is the n-th epoch of the run, counted on across the recipe's stages (the first
stage's first epoch is 1; `epoch 3/15` is the third of fifteen). Step s is the s-th optimizer
step, and a metric recorded at step s was measured after s steps: the Trainer's
`global_step`. So the last epoch's number is the run's epoch count and the last step's
number its step count. The console's epoch lines, the progress bar, summary.json and the
loggers (W&B, CSV, TensorBoard) all use these numbers.

Lightning counts both from 0: `trainer.current_epoch` is 0 while the first epoch runs, and
the step it hands its loggers is the index of the last optimizer step (0 after the first
one). These functions turn its counters into the numbers people read, and back.
"""

from __future__ import annotations


def epoch_number(current_epoch: int) -> int:
    """The number of the epoch Lightning calls `current_epoch` (0 while the first runs)."""
    return int(current_epoch) + 1


def step_number(lightning_step: int) -> int:
    """The number of the step Lightning hands its loggers (the last optimizer step's index,
    from 0): the optimizer steps done."""
    return int(lightning_step) + 1


def lightning_step(number: int) -> int:
    """The step to hand a Lightning logger for step number `number` (`step_number`'s
    inverse; -1 before the first step)."""
    return int(number) - 1
