"""What the model gets wrong: the course's five views, top losses and the confusion matrix.

Pure functions on a probability matrix (N x C) and the true labels (N). They return row
indices, so a caller loads only the few images it shows; nothing here touches pixels, and
everything is vectorised, so 100k images x 1,000 classes take well under a second.
"""

from __future__ import annotations

import numpy as np

# name -> the title shown on grids and tables, in the order the course shows them.
VIEWS = {
    "random_correct": "A few correct labels at random",
    "random_incorrect": "A few incorrect labels at random",
    "confident_correct": "Most confident correct, per class",
    "confident_incorrect": "Most confident incorrect, per class",
    "uncertain": "Most uncertain (top probability nearest 1/classes)",
    "top_losses": "Top losses (lowest probability of the true class)",
}


def true_class_probs(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return probs[np.arange(len(labels)), labels]


def losses(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-image cross-entropy: -log p(true class), floored like Kaggle's log-loss."""
    return -np.log(np.clip(true_class_probs(probs, labels), 1e-15, 1.0))


def _top(indices: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """The k entries of `indices` with the highest `score` (ties: lower index first)."""
    order = np.lexsort((indices, -score[indices]))
    return indices[order[:k]]


def _top_per_class(
    indices: np.ndarray, score: np.ndarray, labels: np.ndarray, per_class: int, k: int
) -> np.ndarray:
    """Up to `per_class` best-scoring entries of each true class, best first overall, at most k."""
    order = np.lexsort((indices, -score[indices], labels[indices]))  # by class, then best first
    ranked = indices[order]
    cls = labels[ranked]
    starts = np.searchsorted(cls, cls, side="left")  # first position of each entry's class
    rank_in_class = np.arange(len(ranked)) - starts
    chosen = ranked[rank_in_class < per_class]
    return _top(chosen, score, k)


def misclassification_views(
    probs: np.ndarray, labels: np.ndarray, k: int = 12, per_class: int | None = None, seed: int = 0
) -> dict[str, np.ndarray]:
    """Row indices for each view in `VIEWS`, at most k each.

    confident_correct: correct images with the highest probability of their (true) class.
    confident_incorrect: wrong images with the highest probability of the wrong class.
    Both take at most `per_class` images of each true class (default: k spread evenly,
    at least one), so one easy class cannot fill the grid. uncertain: top probability
    closest to 1/C, the model's "no idea". top_losses: lowest probability of the true class.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, num_classes = probs.shape
    per_class = per_class or max(1, -(-k // num_classes))
    preds = probs.argmax(axis=1)
    confidence = probs.max(axis=1)
    correct = np.flatnonzero(preds == labels)
    incorrect = np.flatnonzero(preds != labels)
    rng = np.random.default_rng(seed)

    def sample(indices: np.ndarray) -> np.ndarray:
        return np.sort(rng.choice(indices, size=min(k, len(indices)), replace=False))

    return {
        "random_correct": sample(correct),
        "random_incorrect": sample(incorrect),
        "confident_correct": _top_per_class(correct, confidence, labels, per_class, k),
        "confident_incorrect": _top_per_class(incorrect, confidence, labels, per_class, k),
        "uncertain": _top(np.arange(n), -np.abs(confidence - 1.0 / num_classes), k),
        "top_losses": _top(np.arange(n), losses(probs, labels), k),
    }


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
