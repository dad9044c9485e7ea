"""Multi-label scores as Planet's competition counts them: the F-beta score of each image's
predicted tag set against its true one, averaged over images (beta 2: recall weighs more)."""

from __future__ import annotations

import numpy as np

# Thresholds tried when one is chosen on validation (fastai's lesson swept 0.05..0.95).
THRESHOLD_GRID = tuple(round(t, 2) for t in np.arange(0.05, 0.96, 0.05))


def samples_fbeta(predicted: np.ndarray, actual: np.ndarray, beta: float = 2.0) -> np.ndarray:
    """Per-image F-beta of boolean N x C predictions against N x C truths. An image with
    neither predicted nor true tags scores 1 (nothing to find, nothing added)."""
    predicted, actual = np.asarray(predicted, bool), np.asarray(actual, bool)
    tp = (predicted & actual).sum(axis=1).astype(np.float64)
    fp = (predicted & ~actual).sum(axis=1)
    fn = (~predicted & actual).sum(axis=1)
    b2 = beta * beta
    denominator = (1 + b2) * tp + b2 * fn + fp
    return np.divide((1 + b2) * tp, denominator, out=np.ones_like(tp), where=denominator > 0)


def best_threshold(
    probs: np.ndarray,
    actual: np.ndarray,
    beta: float = 2.0,
    per_class: bool = False,
    grid=THRESHOLD_GRID,
) -> list[float]:
    """The threshold(s) from `grid` with the highest mean samples-F-beta on these labels:
    one for all classes, or (`per_class`) one per class, each tuned with the others at the
    global best. Ties go to the lower threshold. Returns one value per class."""
    probs, actual = np.asarray(probs, np.float64), np.asarray(actual, bool)
    num_classes = probs.shape[1]

    def score(thresholds) -> float:
        return float(samples_fbeta(probs >= np.asarray(thresholds), actual, beta).mean())

    best = max(grid, key=lambda t: (score([t] * num_classes), -t))
    chosen = [float(best)] * num_classes
    if per_class:
        for c in range(num_classes):
            trial = list(chosen)

            def with_c(t, trial=trial, c=c):
                trial[c] = t
                return score(trial)

            chosen[c] = float(max(grid, key=lambda t: (with_c(t), -t)))
    return chosen
