"""Thin Lightning callbacks that wire imgclf's pure functions to training events."""

from imgclf.callbacks.clip import ClipProbabilities
from imgclf.callbacks.history import MetricsHistory
from imgclf.callbacks.interrupt import SaveOnInterrupt
from imgclf.callbacks.misclassified import MisclassificationViews
from imgclf.callbacks.nonfinite import NonFiniteLoss, StopOnNonFiniteLoss
from imgclf.callbacks.predictions import CollectPredictions

__all__ = [
    "ClipProbabilities",
    "CollectPredictions",
    "MetricsHistory",
    "MisclassificationViews",
    "NonFiniteLoss",
    "SaveOnInterrupt",
    "StopOnNonFiniteLoss",
]
