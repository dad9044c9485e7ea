"""The numbers of a probability matrix: accuracy and log-loss (raw and clipped), the
confusion matrix, per-class precision and recall, the most confused pairs."""

from __future__ import annotations

import numpy as np

from imgclf.evaluation.clip_setting import parse_eps
from imgclf.evaluation.clipping import SINGLE, clipped_report


def confusion_matrix(labels: np.ndarray, preds: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[actual, predicted]."""
    flat = np.asarray(labels, dtype=np.int64) * num_classes + np.asarray(preds, dtype=np.int64)
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def most_confused(
    matrix: np.ndarray, classes: list[str], min_count: int = 1, limit: int | None = 20
) -> list[tuple[str, str, int]]:
    """(actual, predicted, count) off the diagonal, most frequent first (fastai's most_confused)."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    actual, predicted = np.nonzero(off >= max(min_count, 1))
    counts = off[actual, predicted]
    order = np.lexsort((predicted, actual, -counts))[:limit]
    return [(classes[actual[i]], classes[predicted[i]], int(counts[i])) for i in order]


def per_class_precision_recall(matrix: np.ndarray, classes: list[str]) -> dict[str, dict]:
    """Precision (of the predictions of a class, how many are right) and recall (of the
    images of a class, how many are found), with the class's image count. 0 when undefined."""
    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    precision = np.divide(
        true_positives, predicted, out=np.zeros_like(true_positives), where=predicted > 0
    )
    recall = np.divide(true_positives, actual, out=np.zeros_like(true_positives), where=actual > 0)
    return {
        name: {"precision": float(p), "recall": float(r), "images": int(n)}
        for name, p, r, n in zip(classes, precision, recall, actual, strict=True)
    }


def variant_metrics(probs: np.ndarray, labels: np.ndarray, clip, task=SINGLE) -> dict:
    """Accuracy (multi-label: exact tag sets), raw log-loss and (with clip) clipped
    log-loss with its eps."""
    eps = parse_eps(clip)
    report = clipped_report(probs, labels, eps if eps is not None else 0.0, task)
    metrics = {
        "accuracy": float(task.correct(probs, labels).mean()),
        "logloss": report["logloss"],
    }
    if eps is not None:
        metrics.update(logloss_clipped=report["logloss_clipped"], clip_eps=report["clip_eps"])
    return metrics


def class_metrics(matrix: np.ndarray, classes: list[str]) -> dict:
    """Per-class precision/recall, the confusion matrix and the most confused pairs."""
    return {
        "per_class": per_class_precision_recall(matrix, classes),
        "confusion_matrix": matrix.tolist(),
        "most_confused": [
            {"actual": a, "predicted": p, "count": n} for a, p, n in most_confused(matrix, classes)
        ],
    }
