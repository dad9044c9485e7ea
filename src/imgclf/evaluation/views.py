"""What the model gets wrong: the course's five views and top losses, and `ErrorAnalysis`,
which holds them with the confusion matrix, computed once per set of predictions.

Pure functions on a probability matrix (N x C) and the true labels (N). They return row
indices, so a caller loads only the few images it shows; nothing here touches pixels, and
everything is vectorised, so 100k images x 1,000 classes take well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.errors import UserError
from imgclf.evaluation.metrics import confusion_matrix, most_confused
from imgclf.task import SingleLabel

SINGLE = SingleLabel()

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
    probs: np.ndarray,
    labels: np.ndarray,
    k: int = 12,
    per_class: int | None = None,
    seed: int = 0,
    task=SINGLE,
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
    confidence = probs.max(axis=1)
    right = task.correct(probs, labels)  # the task's notion of wrong is its negation
    correct = np.flatnonzero(right)
    incorrect = np.flatnonzero(~right)
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


def view_rows(
    indices: np.ndarray, probs: np.ndarray, labels: np.ndarray, paths: list, classes: list[str]
) -> list[dict]:
    """One record per shown image: file, true and predicted class, p(predicted), loss."""
    row_loss = losses(probs[indices], labels[indices]) if len(indices) else []
    rows = []
    for index, loss in zip(indices, row_loss, strict=True):
        predicted = int(SINGLE.decode(probs[index : index + 1])[0])
        rows.append(
            {
                "index": int(index),
                "path": str(paths[index]),
                "true": classes[int(labels[index])],
                "predicted": classes[predicted],
                "probability": float(probs[index, predicted]),
                "loss": float(loss),
            }
        )
    return rows


@dataclass
class ErrorAnalysis:
    """Labelled predictions with their views and confusion matrix, computed once and handed
    to whatever draws, writes or logs them.

    probs: N x C probabilities; labels: the true class of each row; paths: each row's image
    file; views: row indices per view in `VIEWS`; confusion: counts[actual, predicted].
    """

    probs: np.ndarray
    labels: np.ndarray
    paths: list[Path]
    classes: list[str]
    views: dict[str, np.ndarray]
    confusion: np.ndarray

    def most_confused(self, min_count: int = 1, limit: int | None = 20) -> list:
        """(actual, predicted, count) pairs off the diagonal, most frequent first."""
        return most_confused(self.confusion, self.classes, min_count, limit)

    def rows(self, view: str) -> list[dict]:
        """The images of one view: index, path, true, predicted, probability, loss."""
        if view not in VIEWS:
            raise UserError(f"unknown view {view!r}: choose one of {', '.join(VIEWS)}")
        return view_rows(self.views[view], self.probs, self.labels, self.paths, self.classes)

    def plot_view(self, view: str, columns: int = 6):
        """A matplotlib Figure of one view's images, titled predicted / actual,
        p(predicted) / loss (green right, red wrong). A notebook cell shows it inline."""
        from imgclf.evaluation.pictures import view_grid_figure

        return view_grid_figure(self.rows(view), VIEWS[view], columns)

    def plot_confusion(self):
        """The confusion matrix as a matplotlib Figure (rows actual, columns predicted)."""
        from imgclf.evaluation.pictures import confusion_figure

        return confusion_figure(self.confusion, self.classes)


def analyse_errors(
    probs: np.ndarray,
    labels: np.ndarray,
    paths: list,
    classes: list[str],
    k: int = 12,
    seed: int = 0,
    confusion: np.ndarray | None = None,
) -> ErrorAnalysis:
    """The views (k images each, random ones drawn with `seed`) and the confusion matrix
    (unless given) of labelled predictions."""
    if confusion is None:
        confusion = confusion_matrix(labels, SINGLE.decode(probs), len(classes))
    views = misclassification_views(probs, labels, k=k, seed=seed)
    return ErrorAnalysis(probs, labels, list(paths), list(classes), views, confusion)
