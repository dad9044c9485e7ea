"""Multi-label error analysis: per-tag precision, recall and F-score, the tags most often
missed and most often added, and the images with the highest loss with their predicted and
true tag sets. Pure functions on N x C probabilities and N x C 0/1 labels."""

from __future__ import annotations

import numpy as np

from imgclf.task import MultiLabel, samples_fbeta


def tag_losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image binary cross-entropy, averaged over the tags (floored like log-loss)."""
    p = np.clip(np.asarray(probs, np.float64), 1e-15, 1 - 1e-15)
    y = np.asarray(labels, np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)


def per_tag_scores(predicted: np.ndarray, actual: np.ndarray, classes: list[str], beta: float):
    """name -> precision, recall, F-beta, images (true), missed (false negatives), added
    (false positives); 0 where undefined."""
    predicted, actual = np.asarray(predicted, bool), np.asarray(actual, bool)
    tp = (predicted & actual).sum(axis=0).astype(np.float64)
    added = (predicted & ~actual).sum(axis=0)
    missed = (~predicted & actual).sum(axis=0)
    precision = np.divide(tp, tp + added, out=np.zeros_like(tp), where=tp + added > 0)
    recall = np.divide(tp, tp + missed, out=np.zeros_like(tp), where=tp + missed > 0)
    b2 = beta * beta
    denominator = b2 * precision + recall
    fbeta = np.divide(
        (1 + b2) * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0
    )
    return {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "fbeta": float(fbeta[i]),
            "images": int(actual[:, i].sum()),
            "missed": int(missed[i]),
            "added": int(added[i]),
        }
        for i, name in enumerate(classes)
    }


def most_often(per_tag: dict, key: str, limit: int = 5) -> list[dict]:
    """The tags with the highest `key` count (missed or added), most first; none at 0."""
    ranked = sorted(per_tag.items(), key=lambda item: (-item[1][key], item[0]))
    return [{"tag": name, key: scores[key]} for name, scores in ranked[:limit] if scores[key]]


def tag_variant_metrics(probs: np.ndarray, labels: np.ndarray, thresholds, beta: float) -> dict:
    """One prediction pass: samples-F-beta, exact match and accuracy_multi at the
    thresholds, and the mean binary cross-entropy."""
    task = MultiLabel(beta)
    predicted = task.decode(probs, thresholds)
    actual = np.asarray(labels, bool)
    return {
        "fbeta": float(samples_fbeta(predicted, actual, beta).mean()),
        "exact_match": float(task.correct(probs, labels, thresholds).mean()),
        "accuracy_multi": float((predicted == actual).mean()),
        "logloss": float(tag_losses(probs, labels).mean()),
    }


def tag_set(row: np.ndarray, classes: list[str]) -> str:
    """A boolean row as Planet writes tags: names, space-separated."""
    return " ".join(name for name, on in zip(classes, row, strict=True) if on)


def top_loss_rows(
    probs: np.ndarray, labels: np.ndarray, paths: list, classes: list[str], thresholds, k: int
) -> list[dict]:
    """The k images with the highest loss: path, true and predicted tag sets, the image's
    F2 (in `probability`, the grid's second number) and its loss."""
    task = MultiLabel()
    losses = tag_losses(probs, labels)
    order = np.lexsort((np.arange(len(losses)), -losses))[:k]
    predicted = task.decode(probs, thresholds)
    scores = samples_fbeta(predicted, labels)
    return [
        {
            "index": int(i),
            "path": str(paths[i]),
            "true": tag_set(np.asarray(labels[i], bool), classes),
            "predicted": tag_set(predicted[i], classes),
            "probability": float(scores[i]),
            "loss": float(losses[i]),
        }
        for i in order
    ]
