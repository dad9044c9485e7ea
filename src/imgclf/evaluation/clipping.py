"""Clipping predicted probabilities for log-loss, as the course does before submitting.

Log-loss punishes a confident mistake without limit: one image predicted at p=0.001 for
its true class costs as much as hundreds of right answers. Clipping bounds that cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from imgclf.task import SingleLabel

SINGLE = SingleLabel()

EPS_GRID = (0.0, 1e-4, 1e-3, 3e-3, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15)


def clip_probs(probs: torch.Tensor, eps: float, task=SINGLE) -> torch.Tensor:
    """The task's clipping rule (single-label: rows renormalised to sum to one; multi-label:
    each tag's probability clipped on its own)."""
    return task.clip(probs, eps)


def log_loss(probs: torch.Tensor, labels: torch.Tensor, task=SINGLE) -> float:
    """The task's log-loss: of the true class, or the mean binary one over tags."""
    return task.log_loss(probs, labels)


def best_eps(
    probs: torch.Tensor, labels: torch.Tensor, grid: Sequence[float] = EPS_GRID, task=SINGLE
) -> float:
    """`clip: auto`: the eps from `grid` that minimises log-loss on labelled predictions."""
    valid = [eps for eps in grid if task.eps_fits(eps, probs.shape[1])]
    return min(valid, key=lambda eps: (log_loss(clip_probs(probs, eps, task), labels, task), eps))


def clipped_report(probs: np.ndarray, labels: np.ndarray, eps, task=SINGLE) -> dict:
    """Log-loss raw and clipped; `eps="auto"` picks it from the grid on these labels."""
    p, y = torch.from_numpy(np.asarray(probs, dtype=np.float64)), torch.from_numpy(labels)
    chosen = best_eps(p, y, EPS_GRID, task) if eps == "auto" else float(eps or 0.0)
    return {
        "logloss": log_loss(p, y, task),
        "logloss_clipped": log_loss(clip_probs(p, chosen, task), y, task),
        "clip_eps": chosen,
    }
