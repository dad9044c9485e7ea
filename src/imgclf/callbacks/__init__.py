"""Thin Lightning callbacks that wire imgclf's pure functions to training events."""

from imgclf.callbacks.clip import ClipProbabilities
from imgclf.callbacks.history import MetricsHistory
from imgclf.callbacks.interrupt import SaveOnInterrupt
from imgclf.callbacks.misclassified import MisclassificationViews
from imgclf.callbacks.nonfinite import NonFiniteLoss, StopOnNonFiniteLoss
from imgclf.callbacks.predictions import CollectPredictions
from imgclf.callbacks.resume_state import ResumeState
from imgclf.callbacks.step_checkpoint import StepCheckpoint

__all__ = [
    "ClipProbabilities",
    "CollectPredictions",
    "MetricsHistory",
    "MisclassificationViews",
    "NonFiniteLoss",
    "ResumeState",
    "SaveOnInterrupt",
    "StepCheckpoint",
    "StopOnNonFiniteLoss",
]
