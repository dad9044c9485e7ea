"""The math of the learning-rate range test (Smith 2015, fastai's `lr_find`).

The LR grows exponentially each batch; the smoothed loss is recorded until it blows up; a rule
then turns the (lr, loss) curve into a suggested LR. The runner lives in `imgclf.training.lr_finder`.

Before any rule is applied the curve is trimmed: non-finite losses are dropped, so are the
first 10% of the points (the bias-corrected average is still close to single noisy batch
losses there, as fastai also skips them), and so is everything after the minimum loss: past
it the loss only rises towards the blow-up that stopped the run (`should_stop`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

SUGGESTIONS = ("valley", "steep", "minimum")


def exponential_lrs(start: float = 1e-7, end: float = 10.0, num: int = 100) -> list[float]:
    """`num` learning rates in geometric progression, exactly `start` first and `end` last."""
    if not 0 < start < end or num < 2:
        raise ValueError(f"need 0 < start < end and num >= 2, got {start}, {end}, {num}")
    return [float(lr) for lr in np.geomspace(start, end, num)]


def smooth_losses(losses: Sequence[float], beta: float = 0.98) -> list[float]:
    """Exponential moving average of the losses, bias-corrected so early values are not
    pulled towards the zero the average starts from."""
    avg, smoothed = 0.0, []
    for i, loss in enumerate(losses):
        avg = beta * avg + (1.0 - beta) * loss
        smoothed.append(avg / (1.0 - beta ** (i + 1)))
    return smoothed


def should_stop(smoothed_loss: float, best_smoothed: float, factor: float = 4.0) -> bool:
    """True once the smoothed loss is NaN/inf or above `factor` times its minimum so far."""
    return not math.isfinite(smoothed_loss) or smoothed_loss > factor * best_smoothed


def _trimmed(lrs: Sequence[float], losses: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Finite points, without the noisy first 10% and without what follows the minimum."""
    if len(lrs) != len(losses):
        raise ValueError(f"{len(lrs)} learning rates but {len(losses)} losses")
    lr_arr, loss_arr = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    keep = np.isfinite(loss_arr) & np.isfinite(lr_arr) & (lr_arr > 0)
    lr_arr, loss_arr = lr_arr[keep], loss_arr[keep]
    if len(loss_arr) == 0:
        raise ValueError("no finite losses to suggest a learning rate from")
    skip = len(loss_arr) // 10
    lr_arr, loss_arr = lr_arr[skip:], loss_arr[skip:]
    end = int(np.argmin(loss_arr)) + 1
    return lr_arr[:end], loss_arr[:end]


def _valley_index(losses: np.ndarray) -> int:
    """fastai's valley rule: a point half-way into the longest decreasing subsequence.

    The stretch is taken as its length counted back from where it ends, not from its first
    member: on a noisy plateau the subsequence picks up a few early points, and starting
    there would push the suggestion back into the plateau.
    """
    n = len(losses)
    length = [1] * n  # per end index: the longest decreasing subsequence ending there
    best_end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[j] > losses[i] and length[j] + 1 > length[i]:
                length[i] = length[j] + 1
        if length[i] > length[best_end]:
            best_end = i
    start = max(0, best_end - length[best_end])
    sections = (best_end - start) / 3
    return start + int(sections) + int(sections / 2)


def suggest_lr(lrs: Sequence[float], losses: Sequence[float], method: str = "valley") -> float:
    """Suggested LR from a range test's (lr, smoothed loss) curve.

    valley: fastai's default, half-way into the longest decreasing stretch of the loss.
    steep: the steepest descent, argmin of d(loss)/d(log10 lr) (numpy.gradient).
    minimum: the LR of the lowest loss divided by 10.
    """
    if method not in SUGGESTIONS:
        raise ValueError(f"unknown suggestion {method!r}; choose one of {', '.join(SUGGESTIONS)}")
    lr_arr, loss_arr = _trimmed(lrs, losses)
    if method == "minimum":
        return float(lr_arr[-1] / 10)  # the trimmed curve ends at its minimum
    if len(loss_arr) < 2:
        return float(lr_arr[0])
    if method == "steep":
        return float(lr_arr[int(np.argmin(np.gradient(loss_arr, np.log10(lr_arr))))])
    return float(lr_arr[_valley_index(loss_arr)])
